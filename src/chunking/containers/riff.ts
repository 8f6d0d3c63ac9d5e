/**
 * Cut points for RIFF files (WAV, AVI, and RF64/BW64 for WAV beyond 4 GiB) and for AIFF /
 * AIFF-C (the same chunk grammar, big-endian, in a `FORM`). A form is
 * `ID | u32 size | form type` followed by chunks `ID | u32 size | payload | pad to even`.
 *
 * Cuts: the start of every form (OpenDML AVI continues in `RIFF AVIX` forms); the start of
 * every chunk in a form; the start of the sample data (`data` payload in WAV, the sound data
 * after the offset and block size fields of `SSND` in AIFF); in AVI the start of the
 * `LIST movi` payload; and the end of the last form when bytes follow it (an ID3 tag
 * appended to a WAV file), so edits to either side stay apart.
 *
 * Tolerated, because real writers do it: a form size past the end of the file or below 4
 * (streaming writers leave 0 or 0xffffffff; the form then runs to the end of the file); a
 * missing pad byte after an odd-sized chunk (taken when the header at the padded offset
 * does not parse and the one at the unpadded offset does); and in RF64 the 0xffffffff
 * sizes replaced by the `ds64` chunk's. Stops, keeping the cuts so far, at a chunk ID that
 * is not printable ASCII and at a chunk that ends past its form (truncation: a data chunk
 * whose size runs past the end of the file still gets its payload cut).
 */
import { fourcc, isPrintableCode, u32be, u32le, u64le, type ContainerScan } from './scan.ts';

interface Dialect {
  /** Form IDs at the start of the file; `continuation` IDs may follow a complete form. */
  readonly first: ReadonlySet<number>;
  readonly continuation: ReadonlySet<number>;
  readonly u32: (b: Uint8Array, at: number) => number;
  /** Where the chunk at `at` with `size` payload bytes needs its own inner cuts. */
  readonly innerCut: (scan: ContainerScan, id: number, at: number, size: number) => Promise<void>;
}

const RIFF = fourcc('RIFF');
const RF64 = fourcc('RF64');
const BW64 = fourcc('BW64');
const FORM = fourcc('FORM');
const DS64 = fourcc('ds64');
const DATA = fourcc('data');
const LIST = fourcc('LIST');
const MOVI = fourcc('movi');
const SSND = fourcc('SSND');
const SIZE_IN_DS64 = 0xffffffff;

export const riffDialect: Dialect = {
  first: new Set([RIFF, RF64, BW64]),
  continuation: new Set([RIFF]),
  u32: u32le,
  async innerCut(scan, id, at) {
    if (id === DATA) scan.cut(at + 8);
    if (id === LIST) {
      const b = await scan.bytes(at + 8, 4);
      if (b.length === 4 && u32be(b, 0) === MOVI) scan.cut(at + 12);
    }
  },
};

export const aiffDialect: Dialect = {
  first: new Set([FORM]),
  continuation: new Set(),
  u32: u32be,
  async innerCut(scan, id, at, size) {
    if (id !== SSND || size < 8) return;
    const b = await scan.bytes(at + 8, 4);
    if (b.length === 4 && u32be(b, 0) <= size - 8) scan.cut(at + 16 + u32be(b, 0));
  },
};

export async function riffCuts(scan: ContainerScan, dialect: Dialect): Promise<void> {
  let at = 0;
  while (at < scan.size) {
    scan.step();
    scan.cut(at);
    const b = await scan.bytes(at, 12);
    const forms = at === 0 ? dialect.first : dialect.continuation;
    if (b.length < 12 || !forms.has(u32be(b, 0)) || !isPrintableCode(b, 8)) scan.stop();
    const id = u32be(b, 0);
    const declared = dialect.u32(b, 4);
    const sizes = id === RF64 || id === BW64 ? await ds64Sizes(scan, at + 12) : undefined;
    const formSize = declared === SIZE_IN_DS64 && sizes ? sizes.form : declared;
    const complete = formSize >= 4 && at + 8 + formSize <= scan.size;
    const end = complete ? at + 8 + formSize : scan.size;
    await chunkCuts(scan, dialect, at + 12, end, sizes?.data);
    if (!complete) return;
    at = end;
  }
}

/** The form and data sizes of an RF64 file's `ds64` chunk, which must come first. */
async function ds64Sizes(
  scan: ContainerScan,
  at: number,
): Promise<{ form: number; data: number } | undefined> {
  const b = await scan.bytes(at, 24);
  if (b.length < 24 || u32be(b, 0) !== DS64) return undefined;
  return { form: u64le(b, 8), data: u64le(b, 16) };
}

async function chunkCuts(
  scan: ContainerScan,
  dialect: Dialect,
  from: number,
  end: number,
  ds64DataSize: number | undefined,
): Promise<void> {
  let at = from;
  while (at + 8 <= end) {
    scan.step();
    const b = await scan.bytes(at, 8);
    if (b.length < 8 || !isPrintableCode(b, 0)) scan.stop();
    const id = u32be(b, 0);
    let size = dialect.u32(b, 4);
    if (id === DATA && size === SIZE_IN_DS64 && ds64DataSize !== undefined) size = ds64DataSize;
    scan.cut(at);
    await dialect.innerCut(scan, id, at, size);
    const payloadEnd = at + 8 + size;
    if (payloadEnd > end) scan.stop();
    at = size % 2 === 1 && payloadEnd < end ? await afterPad(scan, payloadEnd) : payloadEnd;
  }
}

/** Offset of the next chunk after an odd payload ending at `payloadEnd` (see the header). */
async function afterPad(scan: ContainerScan, payloadEnd: number): Promise<number> {
  const b = await scan.bytes(payloadEnd, 5);
  if (b.length === 5 && !isPrintableCode(b, 1) && isPrintableCode(b, 0)) return payloadEnd;
  return payloadEnd + 1;
}
