/**
 * Staging working files into the index: the shared core of `add`, `commit -a`
 * and `add -u`.
 */
import fs from 'node:fs/promises';
import { FileStore, type FileProfile, type StoreStats } from '../odb/file-store.ts';
import { detectFormat } from '../media/detect.ts';
import { storageProfileFor } from '../media/storage-profile.ts';
import { entryFromStats, statMatches, type StagingIndex } from './index-file.ts';
import { absolutePath, type WorkFile } from './worktree.ts';
import type { Repository } from './repository.ts';

export interface StageOptions {
  readonly noChunking?: boolean | undefined;
  /** Never store new objects as deltas (`add --no-delta`). */
  readonly noDelta?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((event: StageProgress) => void) | undefined;
}

export interface StageProgress {
  readonly path: string;
  readonly bytes: number;
  readonly total: number;
}

/**
 * Stores each file that differs from its index entry and records it in the
 * index; returns the paths it changed. Objects are durable on return.
 */
export async function stageFiles(
  repo: Repository,
  index: StagingIndex,
  files: readonly WorkFile[],
  options: StageOptions,
): Promise<{ staged: string[]; stats: StoreStats }> {
  const workTree = repo.requireWorkTree('add');
  const fileStore = new FileStore(repo.objects);
  const staged: string[] = [];
  const todo = files.filter((file) => {
    const entry = index.entries.get(file.path);
    return !entry || !statMatches(entry, file.stats, index.fileMtimeMs);
  });
  const total = todo.reduce((sum, file) => sum + file.stats.size, 0);
  let done = 0;
  const stageOne = async (file: WorkFile): Promise<void> => {
    options.signal?.throwIfAborted();
    const full = absolutePath(workTree, file.path);
    const stored = file.stats.isSymbolicLink()
      ? await fileStore.storeBlob(Buffer.from(await fs.readlink(full, { encoding: 'buffer' })))
      : await fileStore.storeFile(full, {
          chunkThreshold: repo.chunkThreshold,
          profile: (head, size) => profileFor(head, file.path, size, options.noDelta === true),
          // The staged version: an edited large file's new chunks may be deltas against it.
          previous: options.noDelta ? undefined : index.entries.get(file.path),
          noChunking: options.noChunking === true,
          signal: options.signal,
          onBytes: (bytes) => options.onProgress?.({ path: file.path, bytes: done + bytes, total }),
        });
    done += file.stats.size;
    const previous = index.entries.get(file.path);
    index.entries.set(file.path, entryFromStats(file.path, stored, file.stats));
    if (
      !previous ||
      previous.id !== stored.id ||
      previous.mode !== index.entries.get(file.path)?.mode
    ) {
      staged.push(file.path);
    }
  };
  try {
    const small = todo.filter(
      (file) => file.stats.size < repo.chunkThreshold || options.noChunking,
    );
    const large = todo.filter((file) => !small.includes(file));
    // Large files use both cores each; small ones overlap their I/O.
    for (const file of large) await stageOne(file);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(8, small.length) }, async () => {
        for (let i = next++; i < small.length; i = next++) await stageOne(small[i]!);
      }),
    );
    await repo.objects.flush();
  } finally {
    await fileStore.close();
  }
  return { staged: staged.sort(), stats: fileStore.stats };
}

/** How a file is cut and compressed, from its detected format (src/media). */
export function profileFor(
  head: Uint8Array,
  repoPath: string,
  size: number,
  noDelta: boolean,
): FileProfile {
  const profile = storageProfileFor(detectFormat(head, repoPath), size);
  return {
    chunking: profile.chunking,
    compression: profile.compression,
    delta: profile.delta.enabled && !noDelta ? profile.delta : undefined,
  };
}
