/**
 * `mediagit download`: one file of a remote repository without a clone
 * (docs/download.md). The commit's metadata arrives in one transfer pack
 * (`want` with depth 1: the commit, its trees and manifests, small files
 * whole); then only the chunks of the one file travel, through the same
 * located, coalesced, parallel ranged reads as fetch, each record verified
 * against its ID.
 *
 * To a file, chunks are written at their offsets into `<output>.mediagit-download`
 * as they arrive, and each one's ID is appended to a journal beside it. A
 * rerun of the same download (same file version) re-verifies the journalled
 * chunks by hashing their bytes in the partial file, fetches only the rest,
 * then fsyncs and renames the file into place and removes the journal. To a
 * stream (stdout), chunks go in order, a window of them at a time; a stream
 * is not resumable.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { decodeCommit } from '../odb/commit.ts';
import { decodeManifest, type Manifest } from '../odb/manifest.ts';
import { chunkIdOf, isObjectId, type ObjectId } from '../odb/object-id.ts';
import { decodeRecord, type DecodedRecord } from '../odb/record.ts';
import { decodeTree } from '../odb/tree.ts';
import { openTransport, type TransportOptions } from './open-transport.ts';
import { receiveFromPacks } from './pack-transfer.ts';
import { decodeTransferPack } from './transfer-pack.ts';
import type { Transport } from './transport.ts';

export interface DownloadOptions extends TransportOptions {
  /** Branch, tag or full commit ID on the remote; default its HEAD. */
  readonly rev?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface DownloadTarget {
  readonly commit: ObjectId;
  readonly path: string;
  readonly size: number;
  /** Bytes of metadata (the commit's transfer pack) and of chunk records received. */
  readonly metadataBytes: number;
}

export interface DownloadResult extends DownloadTarget {
  readonly chunks: number;
  /** Chunks already in a partial download from an earlier run. */
  readonly chunksResumed: number;
  readonly chunkBytes: number;
}

/** The suffixes of a download in progress, next to its output. */
export const PARTIAL_SUFFIX = '.mediagit-download';
const JOURNAL_SUFFIX = '.mediagit-download.journal';

/** Chunk bytes held in memory at once when streaming in order. */
const STREAM_WINDOW = 64 * 1024 * 1024;

interface Located {
  readonly target: DownloadTarget;
  /** A small file's bytes, or the manifest of a chunked one. */
  readonly content: { blob: Buffer } | { manifest: Manifest; manifestId: ObjectId };
}

async function locateFile(
  transport: Transport,
  url: string,
  filePath: string,
  rev: string | undefined,
): Promise<Located> {
  const info = await transport.infoRefs();
  if (info.encrypted === true) {
    throw new MediaGitError(
      'ENCRYPTED_REPOSITORY',
      `download: ${url} is an encrypted repository: downloading one file without a clone is not implemented for it (docs/encryption.md); clone it`,
      { kind: 'user', data: { exitCode: 128 } },
    );
  }
  const commit = resolveRemoteRev(info, url, rev);
  const pack = await transport.want({ wants: [commit], depth: 1 });
  const objects = new Map<ObjectId, DecodedRecord>();
  for (const { id, record } of decodeTransferPack(pack)) {
    objects.set(id, await decodeRecord(id, record));
  }
  const object = (id: ObjectId, type: string): Buffer => {
    const found = objects.get(id);
    if (found?.type !== type) {
      throw new MediaGitError(
        'PROTOCOL_ERROR',
        `the remote's metadata for ${commit} lacks ${type} ${id}`,
        { kind: 'user', data: { exitCode: 128 } },
      );
    }
    return found.data;
  };
  const label = rev ?? 'HEAD';
  const parts = filePath.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0 || parts.includes('..')) {
    throw new MediaGitError('BAD_PATH', `'${filePath}' is not a file path in a repository`, {
      kind: 'usage',
    });
  }
  let tree = decodeCommit(commit, object(commit, 'commit')).tree;
  for (const [i, name] of parts.entries()) {
    const entry = decodeTree(tree, object(tree, 'tree')).find((e) => e.name === name);
    const here = parts.slice(0, i + 1).join('/');
    if (!entry) {
      throw new MediaGitError(
        'PATH_NOT_IN_REV',
        `path '${parts.join('/')}' does not exist in '${label}'`,
        { kind: 'usage', data: { path: filePath } },
      );
    }
    if (i < parts.length - 1) {
      if (entry.kind !== 'tree') {
        throw new MediaGitError(
          'PATH_NOT_IN_REV',
          `path '${parts.join('/')}' does not exist in '${label}' ('${here}' is a file)`,
          { kind: 'usage', data: { path: filePath } },
        );
      }
      tree = entry.id;
      continue;
    }
    if (entry.kind === 'tree') {
      throw new MediaGitError(
        'PATH_IS_FOLDER',
        `'${here}' is a folder in '${label}'; download takes one file`,
        { kind: 'usage', data: { path: filePath } },
      );
    }
    const base = { commit, path: here, metadataBytes: pack.length };
    if (entry.kind === 'blob') {
      const blob = object(entry.id, 'blob');
      return { target: { ...base, size: blob.length }, content: { blob } };
    }
    const manifest = decodeManifest(entry.id, object(entry.id, 'manifest'));
    return {
      target: { ...base, size: manifest.size },
      content: { manifest, manifestId: entry.id },
    };
  }
  throw new Error('unreachable');
}

/** A branch, tag, `refs/...` name or full commit ID, as the remote's refs know it. */
function resolveRemoteRev(
  info: { head: string | null; refs: Record<string, ObjectId> },
  url: string,
  rev: string | undefined,
): ObjectId {
  if (rev === undefined) {
    const id = info.head === null ? undefined : info.refs[info.head];
    if (id === undefined) {
      throw new MediaGitError('EMPTY_REMOTE', `the remote ${url} has no commits`, {
        kind: 'usage',
      });
    }
    return id;
  }
  for (const name of [rev, `refs/heads/${rev}`, `refs/tags/${rev}`]) {
    const id = info.refs[name];
    if (id !== undefined) return id;
  }
  if (isObjectId(rev)) return rev;
  throw new MediaGitError(
    'UNKNOWN_REMOTE_REV',
    `invalid revision '${rev}': not a branch, tag or full commit ID of ${url}`,
    { kind: 'usage', data: { rev } },
  );
}

/** Downloads to `output` (a file path), resuming a partial download of the same version. */
export async function downloadToFile(
  url: string,
  filePath: string,
  output: string,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const transport = await openTransport(url, options);
  try {
    const located = await locateFile(transport, url, filePath, options.rev);
    const partial = `${output}${PARTIAL_SUFFIX}`;
    const journal = `${output}${JOURNAL_SUFFIX}`;
    if ('blob' in located.content) {
      await writeWhole(partial, located.content.blob);
      await fs.rename(partial, output);
      await fs.rm(journal, { force: true });
      return { ...located.target, chunks: 0, chunksResumed: 0, chunkBytes: 0 };
    }
    const { manifest, manifestId } = located.content;
    const offsets = new Map<ObjectId, number[]>();
    let offset = 0;
    for (const chunk of manifest.chunks) {
      const list = offsets.get(chunk.id) ?? [];
      list.push(offset);
      offsets.set(chunk.id, list);
      offset += chunk.length;
    }
    const lengths = new Map(manifest.chunks.map((c) => [c.id, c.length]));
    const done = await resumable(partial, journal, manifestId, manifest.size, offsets, lengths);
    const resumed = done.size;
    const handle = await fs.open(partial, 'r+');
    let received = 0;
    let progress = [...done].reduce(
      (sum, id) => sum + lengths.get(id)! * offsets.get(id)!.length,
      0,
    );
    try {
      const wanted = [...offsets.keys()].filter((id) => !done.has(id));
      /** Writes a verified chunk at each of its offsets, then journals it. */
      const place = async (id: ObjectId, object: DecodedRecord, size: number): Promise<void> => {
        const places = offsets.get(id);
        if (object.type !== 'chunk' || places === undefined) {
          throw new MediaGitError('PROTOCOL_ERROR', `the remote sent an unasked-for ${id}`, {
            kind: 'user',
            data: { exitCode: 128 },
          });
        }
        for (const at of places) await handle.write(object.data, 0, object.data.length, at);
        received += size;
        progress += object.data.length * places.length;
        await fs.appendFile(journal, `${id}\n`);
        options.onProgress?.(progress, manifest.size);
      };
      await receiveFromPacks(transport, wanted, {
        signal: options.signal,
        onObject: (id, record, object) => place(id, object, record.length),
        fetchLoose: async (id) => {
          const record = await transport.getChunk(id, lengths.get(id));
          try {
            await place(id, await decodeRecord(id, record, lengths.get(id)), record.length);
          } finally {
            transport.release(record);
          }
        },
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(partial, output);
    await fs.rm(journal, { force: true });
    return {
      ...located.target,
      chunks: offsets.size,
      chunksResumed: resumed,
      chunkBytes: received,
    };
  } finally {
    await transport.close();
  }
}

/**
 * The chunks a partial download of the same manifest already holds (each
 * re-hashed from the partial file); a partial file of another version, or
 * none, starts afresh.
 */
async function resumable(
  partial: string,
  journal: string,
  manifestId: ObjectId,
  size: number,
  offsets: ReadonlyMap<ObjectId, number[]>,
  lengths: ReadonlyMap<ObjectId, number>,
): Promise<Set<ObjectId>> {
  const done = new Set<ObjectId>();
  let lines: string[] = [];
  try {
    lines = (await fs.readFile(journal, 'utf8')).split('\n');
  } catch (error) {
    if (!hasErrnoCode(error, 'ENOENT')) throw error;
  }
  const partialSize = await fs.stat(partial).then(
    (s) => s.size,
    () => -1,
  );
  if (lines[0] !== `manifest ${manifestId}` || partialSize !== size) {
    const handle = await fs.open(partial, 'w');
    try {
      await handle.truncate(size);
    } finally {
      await handle.close();
    }
    await fs.writeFile(journal, `manifest ${manifestId}\n`);
    return done;
  }
  const handle = await fs.open(partial, 'r');
  try {
    for (const id of lines.slice(1)) {
      const places = offsets.get(id);
      if (!places || done.has(id)) continue;
      const length = lengths.get(id)!;
      const data = Buffer.alloc(length);
      let intact = true;
      for (const at of places) {
        await handle.read(data, 0, length, at);
        if (chunkIdOf(data) !== id) intact = false;
      }
      if (intact) done.add(id);
    }
  } finally {
    await handle.close();
  }
  return done;
}

async function writeWhole(file: string, data: Buffer): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Downloads to a stream, in order (a window of chunks at a time); not resumable. */
export async function downloadToStream(
  url: string,
  filePath: string,
  out: Writable,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const transport = await openTransport(url, options);
  try {
    const located = await locateFile(transport, url, filePath, options.rev);
    if ('blob' in located.content) {
      await write(out, located.content.blob);
      return { ...located.target, chunks: 0, chunksResumed: 0, chunkBytes: 0 };
    }
    const { manifest } = located.content;
    let received = 0;
    let progress = 0;
    const distinct = new Set<ObjectId>();
    for (let start = 0; start < manifest.chunks.length;) {
      let end = start;
      let bytes = 0;
      while (end < manifest.chunks.length && (end === start || bytes < STREAM_WINDOW)) {
        bytes += manifest.chunks[end]!.length;
        end++;
      }
      const window = manifest.chunks.slice(start, end);
      const data = new Map<ObjectId, Buffer>();
      const keep = (id: ObjectId, object: DecodedRecord, size: number): void => {
        data.set(id, Buffer.from(object.data));
        received += size;
      };
      await receiveFromPacks(transport, [...new Set(window.map((c) => c.id))], {
        signal: options.signal,
        onObject: async (id, record, object) => keep(id, object, record.length),
        fetchLoose: async (id) => {
          const size = window.find((c) => c.id === id)?.length;
          const record = await transport.getChunk(id, size);
          try {
            keep(id, await decodeRecord(id, record, size), record.length);
          } finally {
            transport.release(record);
          }
        },
      });
      for (const chunk of window) {
        const bytesOf = data.get(chunk.id);
        if (!bytesOf) {
          throw new MediaGitError('PROTOCOL_ERROR', `the remote did not send chunk ${chunk.id}`, {
            kind: 'user',
            data: { exitCode: 128 },
          });
        }
        distinct.add(chunk.id);
        await write(out, bytesOf);
        progress += bytesOf.length;
        options.onProgress?.(progress, manifest.size);
      }
      start = end;
    }
    return { ...located.target, chunks: distinct.size, chunksResumed: 0, chunkBytes: received };
  } finally {
    await transport.close();
  }
}

function write(out: Writable, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(data, (error) => (error ? reject(error) : resolve()));
  });
}

/** Whether `output` is a download this command may resume (its partial file exists). */
export async function partialExists(output: string): Promise<boolean> {
  return fs.stat(`${output}${PARTIAL_SUFFIX}`).then(
    () => true,
    () => false,
  );
}

/** The default output: the file's name, in `cwd`. */
export function defaultOutput(cwd: string, filePath: string): string {
  return path.join(cwd, path.posix.basename(filePath));
}
