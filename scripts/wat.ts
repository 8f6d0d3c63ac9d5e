// The WebAssembly text compiler (wabt, a dev dependency) as used by
// scripts/build-wasm.ts and the test that checks its output.
import wabtInit from 'wabt';

export async function compileGearScan(text: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat('gear-scan.wat', text, { threads: true });
  try {
    return module.toBinary({}).buffer;
  } finally {
    module.destroy();
  }
}
