// Node provides the WebAssembly global, but TypeScript declares it only in
// its DOM and web-worker libraries, which this project does not load. These
// are the parts MediaGit uses (src/chunking/fastcdc.ts).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number; shared?: boolean });
    /** A SharedArrayBuffer when the memory was created shared. */
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
  }
}
