/**
 * Git LFS pointer files, spec v1 (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md):
 * what `mediagit filter clean` will emit in place of a tracked file's content,
 * and what smudge and the LFS endpoints will recognise. A MediaGit file ID is
 * the content's SHA-256, so it is the pointer's OID as it stands.
 *
 * Format, byte for byte: `version https://git-lfs.github.com/spec/v1\n`, then
 * `key value\n` lines with keys sorted (`oid sha256:<64 lowercase hex>`,
 * `size <decimal>`, and any others, which are kept), at most 1024 bytes in
 * all. Reading also takes what git-lfs takes that is not canonical: CRLF
 * line ends, no final newline, leading zeros in the size; and keeps keys
 * git-lfs does not know (its `pointer --check` refuses them). Anything else
 * is not a pointer: parsing says why, and the caller treats the bytes as
 * ordinary content.
 */
import type { ObjectId } from './object-id.ts';

export const LFS_SPEC_URL = 'https://git-lfs.github.com/spec/v1';
/** Older pointers name the spec by its pre-release URL; git-lfs still reads them. */
const LEGACY_SPEC_URL = 'https://hawser.github.com/spec/v1';
/** Larger blobs are never pointers (git-lfs's own cut-off). */
export const MAX_POINTER_BYTES = 1024;

/**
 * Where a repository (a server's, or a Git repository's MediaGit store)
 * records the manifest of a chunked file by the file's OID.
 */
export function lfsObjectKey(oid: ObjectId): string {
  return `lfs/${oid.slice(0, 2)}/${oid.slice(2)}`;
}

export interface LfsPointer {
  /** The content's SHA-256, lowercase hex. */
  readonly oid: ObjectId;
  readonly size: number;
  /** Keys other than version, oid and size, in file order (sorted), kept as they were. */
  readonly extra: readonly (readonly [key: string, value: string])[];
}

export type PointerParse =
  | { readonly ok: true; readonly pointer: LfsPointer }
  | { readonly ok: false; readonly reason: string };

const KEY = /^[a-z0-9.-]+$/;
const OID = /^sha256:([0-9a-f]{64})$/;
const SIZE = /^[0-9]{1,16}$/;

/** SHA-256 of no bytes: an empty file's OID. */
const EMPTY_OID = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * The pointer text for `pointer`, as git-lfs writes it; an empty file's
 * pointer is empty (the spec keeps empty files empty).
 */
export function formatPointer(pointer: LfsPointer): string {
  if (pointer.size === 0 && pointer.oid === EMPTY_OID && pointer.extra.length === 0) return '';
  if (!/^[0-9a-f]{64}$/.test(pointer.oid)) throw new RangeError(`not a SHA-256: ${pointer.oid}`);
  if (!Number.isSafeInteger(pointer.size) || pointer.size < 0) {
    throw new RangeError(`invalid size ${pointer.size}`);
  }
  const lines: [string, string][] = [
    ['oid', `sha256:${pointer.oid}`],
    ['size', String(pointer.size)],
  ];
  for (const [key, value] of pointer.extra) {
    if (!KEY.test(key) || key === 'version' || key === 'oid' || key === 'size') {
      throw new RangeError(`invalid pointer key ${JSON.stringify(key)}`);
    }
    if (/[\r\n]/.test(value)) throw new RangeError(`pointer value for ${key} has a line break`);
    lines.push([key, value]);
  }
  lines.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const text = `version ${LFS_SPEC_URL}\n${lines.map(([k, v]) => `${k} ${v}\n`).join('')}`;
  if (Buffer.byteLength(text) > MAX_POINTER_BYTES) {
    throw new RangeError(`pointer would be over ${MAX_POINTER_BYTES} bytes`);
  }
  return text;
}

/** Parses `bytes` as a pointer; never throws. */
export function parsePointer(bytes: Uint8Array): PointerParse {
  if (bytes.length === 0) return { ok: true, pointer: { oid: EMPTY_OID, size: 0, extra: [] } };
  if (bytes.length > MAX_POINTER_BYTES) {
    return { ok: false, reason: `larger than ${MAX_POINTER_BYTES} bytes` };
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(Buffer.from(bytes))) {
    return { ok: false, reason: 'not UTF-8 text' };
  }
  // Like git-lfs, tolerate CRLF line ends and a missing final newline (the
  // pointer is then not canonical; formatPointer writes the canonical form).
  const body = text.replaceAll('\r\n', '\n');
  const lines = (body.endsWith('\n') ? body.slice(0, -1) : body).split('\n');
  const [first, ...rest] = lines;
  const version = /^version (\S+)$/.exec(first ?? '');
  if (!version) return { ok: false, reason: 'the first line is not `version <url>`' };
  if (version[1] !== LFS_SPEC_URL && version[1] !== LEGACY_SPEC_URL) {
    return { ok: false, reason: `unknown pointer version ${JSON.stringify(version[1])}` };
  }
  let oid: ObjectId | undefined;
  let size: number | undefined;
  const extra: [string, string][] = [];
  let previous = '';
  for (const line of rest) {
    const space = line.indexOf(' ');
    const key = space < 0 ? line : line.slice(0, space);
    const value = space < 0 ? '' : line.slice(space + 1);
    if (space < 0 || !KEY.test(key)) {
      return { ok: false, reason: `malformed line ${JSON.stringify(line)}` };
    }
    if (key <= previous) return { ok: false, reason: `keys are not sorted at ${key}` };
    previous = key;
    if (key === 'version') return { ok: false, reason: 'version appears twice' };
    if (key === 'oid') {
      const match = OID.exec(value);
      if (!match) return { ok: false, reason: `bad oid ${JSON.stringify(value)}` };
      oid = match[1]!;
    } else if (key === 'size') {
      const n = SIZE.test(value) ? Number(value) : NaN;
      if (!Number.isSafeInteger(n))
        return { ok: false, reason: `bad size ${JSON.stringify(value)}` };
      size = n;
    } else {
      extra.push([key, value]);
    }
  }
  if (oid === undefined) return { ok: false, reason: 'no oid line' };
  if (size === undefined) return { ok: false, reason: 'no size line' };
  return { ok: true, pointer: { oid, size, extra } };
}
