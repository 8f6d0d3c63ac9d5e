/**
 * A ~200 MB PSD for the merge benchmarks: 4096×4096 RGB, three full-canvas
 * layers of raw (uncompressed) pseudo-random pixels, no image resources, an
 * RLE composite of zeros. Layer i's pixels come from seeds[i], so two files
 * with one seed changed differ in exactly one layer's channel data.
 */
import fs from 'node:fs/promises';

export const SIDE = 4096;
export const LAYERS = ['Background paint', 'Actor', 'Sky'];
export const CHANNELS = [-1, 0, 1, 2];
export const PLANE = SIDE * SIDE;

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

/** A layer record: full canvas, four raw channels, a Pascal name. */
function record(name: string, id: number): Buffer {
  const head = Buffer.alloc(18);
  head.writeInt32BE(0, 0);
  head.writeInt32BE(0, 4);
  head.writeInt32BE(SIDE, 8);
  head.writeInt32BE(SIDE, 12);
  head.writeUInt16BE(CHANNELS.length, 16);
  const channels = Buffer.alloc(CHANNELS.length * 6);
  CHANNELS.forEach((c, i) => {
    channels.writeInt16BE(c, i * 6);
    channels.writeUInt32BE(PLANE + 2, i * 6 + 2);
  });
  const blend = Buffer.from('8BIMnorm\xff\x00\x08\x00', 'latin1');
  const nameBytes = Buffer.from(name, 'latin1');
  const pascal = Buffer.alloc((nameBytes.length + 1 + 3) & ~3);
  pascal[0] = nameBytes.length;
  nameBytes.copy(pascal, 1);
  const lyid = Buffer.concat([Buffer.from('8BIMlyid', 'latin1'), u32(4), u32(id)]);
  const extra = Buffer.concat([u32(0), u32(0), pascal, lyid]);
  return Buffer.concat([head, channels, blend, u32(extra.length), extra]);
}

/** Pseudo-random plane bytes from a seed (xorshift32). */
function plane(seed: number): Buffer {
  const words = new Uint32Array(PLANE / 4);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer);
}

/** Writes a PSD whose layer i has pixels from seeds[i]. */
export async function writePsd(file: string, seeds: readonly number[]): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    const header = Buffer.alloc(26);
    header.write('8BPS', 0, 'latin1');
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(3, 12);
    header.writeUInt32BE(SIDE, 14);
    header.writeUInt32BE(SIDE, 18);
    header.writeUInt16BE(8, 22);
    header.writeUInt16BE(3, 24);
    const records = Buffer.concat(LAYERS.map((name, i) => record(name, i + 1)));
    const dataLength = LAYERS.length * CHANNELS.length * (PLANE + 2);
    let infoLength = 2 + records.length + dataLength;
    infoLength += (4 - (infoLength % 4)) % 4;
    const count = Buffer.alloc(2);
    count.writeInt16BE(LAYERS.length);
    await handle.write(
      Buffer.concat([
        header,
        u32(0),
        u32(0),
        u32(4 + infoLength + 4),
        u32(infoLength),
        count,
        records,
      ]),
    );
    for (const seed of seeds) {
      for (const c of CHANNELS) {
        await handle.write(Buffer.from([0, 0]));
        await handle.write(plane(seed * 16 + c + 2));
      }
    }
    await handle.write(Buffer.alloc(infoLength - (2 + records.length + dataLength)));
    await handle.write(u32(0)); // global layer mask info
    // The composite: RLE rows of zeros, 32 runs of 128 bytes per row.
    const row = Buffer.from(Array.from({ length: 32 }, () => [0x81, 0]).flat());
    const counts = Buffer.alloc(3 * SIDE * 2);
    for (let i = 0; i < 3 * SIDE; i++) counts.writeUInt16BE(row.length, i * 2);
    await handle.write(
      Buffer.concat([Buffer.from([0, 1]), counts, Buffer.concat(Array(3 * SIDE).fill(row))]),
    );
  } finally {
    await handle.close();
  }
}
