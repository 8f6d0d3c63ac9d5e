/**
 * `media info`: a file's media properties (format, dimensions, duration,
 * codecs, rates, channels, depth, colour space, layers, glTF counts, tags),
 * read from the working tree or from stored content without checking it out.
 *
 *   <path>          the working-tree file (no repository needed)
 *   <rev>:<path>    the file as committed in <rev> (show.ts resolves it)
 *   :<path>         the file as staged in the index
 *
 * Stored content is read through `StoredFileReader`: only the chunks that
 * cover the byte ranges a parser asks for are fetched and verified, and the
 * report's `bytesRead` says how many stored bytes that was.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { hasErrnoCode, MediaGitError } from '../errors.ts';
import { readMediaInfo, type MediaProperties } from '../media/info/index.ts';
import { handleAccess } from '../media/info/random-access.ts';
import { StoredFileReader } from '../odb/file-read.ts';
import type { Repository } from './repository.ts';
import { show } from './show.ts';

export interface MediaInfoOptions {
  /** Directory relative paths (and `./` in `<rev>:./<path>`) start from. */
  readonly cwd: string;
  readonly signal?: AbortSignal | undefined;
}

export interface MediaInfoReport extends MediaProperties {
  /** The file as named: the working-tree path as given, or the repository path. */
  readonly path: string;
  readonly source: 'worktree' | 'index' | 'revision';
  /** The revision read, for `source: 'revision'`. */
  readonly revision?: string;
  readonly size: number;
  /** Format id (src/media/formats.ts), `unknown` when not recognised. */
  readonly format: string;
  readonly mime: string;
  readonly category: string;
  /** Whether a parser read the file's structure (false: only its type is known). */
  readonly parsed: boolean;
  /** Bytes read to answer: stored object bytes (manifest and chunks) or working-file bytes. */
  readonly bytesRead: number;
}

/** Whether a `media info` operand names stored content (`<rev>:<path>`, `:<path>`). */
export function isStoredSpec(spec: string): boolean {
  return spec.includes(':');
}

export async function workingFileMediaInfo(
  spec: string,
  options: MediaInfoOptions,
): Promise<MediaInfoReport> {
  const filePath = path.resolve(options.cwd, spec);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, 'r');
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT'))
      throw new MediaGitError('PATH_NOT_FOUND', `path '${spec}' does not exist`, {
        kind: 'usage',
        data: { path: spec },
      });
    throw error;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw notAFile(spec);
    let bytesRead = 0;
    const access = handleAccess(handle, stat.size, (n) => (bytesRead += n));
    const info = await named(spec, readMediaInfo(access, path.basename(filePath), options.signal));
    return report(spec, { source: 'worktree' }, stat.size, info, () => bytesRead);
  } finally {
    await handle.close();
  }
}

export async function storedMediaInfo(
  repo: Repository,
  spec: string,
  options: MediaInfoOptions,
): Promise<MediaInfoReport> {
  const shown = await show(repo, spec, { cwd: options.cwd, files: 'none', signal: options.signal });
  if (shown.type !== 'file') throw notAFile(spec);
  const rev = spec.slice(0, spec.indexOf(':'));
  const where: Pick<MediaInfoReport, 'source' | 'revision'> =
    rev === '' || /^[0-3]$/.test(rev) ? { source: 'index' } : { source: 'revision', revision: rev };
  const reader = await StoredFileReader.open(
    repo.objects,
    shown.file.kind,
    shown.file.id,
    shown.file.size,
  );
  const info = await named(
    spec,
    readMediaInfo(reader, path.posix.basename(shown.path), options.signal),
  );
  return report(shown.path, where, reader.size, info, () => reader.bytesRead);
}

function report(
  name: string,
  where: Pick<MediaInfoReport, 'source' | 'revision'>,
  size: number,
  info: Awaited<ReturnType<typeof readMediaInfo>>,
  bytesRead: () => number,
): MediaInfoReport {
  return {
    path: name,
    ...where,
    size,
    format: info.format.format,
    mime: info.format.mime,
    category: info.format.category,
    parsed: info.parsed,
    ...info.properties,
    bytesRead: bytesRead(),
  };
}

/** A corrupt-media error names the file it is about. */
async function named<T>(spec: string, pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (error) {
    if (error instanceof MediaGitError && error.code === 'MEDIA_CORRUPT')
      throw new MediaGitError(error.code, `${spec}: ${error.message}`, {
        kind: error.kind,
        data: { ...error.data, path: spec },
      });
    throw error;
  }
}

function notAFile(spec: string): MediaGitError {
  return new MediaGitError('NOT_A_FILE', `'${spec}' is not a file`, {
    kind: 'usage',
    data: { path: spec },
  });
}
