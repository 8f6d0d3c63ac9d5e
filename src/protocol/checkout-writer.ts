/**
 * Files to check out, written at their offsets as each verified chunk
 * arrives from a remote, so the checkout moves them into place instead of
 * reading the content back from the repository and writing it again (around
 * the page cache where the device allows: AssembledFile). A clone writes the
 * files of the commit it checks out this way; a partial clone's checkout the
 * files whose content it fetches. A file missing a chunk (one already
 * stored, say) is dropped and checked out the ordinary way.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { decodeCommit } from '../odb/commit.ts';
import { decodeManifest, type Manifest } from '../odb/manifest.ts';
import type { ObjectId } from '../odb/object-id.ts';
import type { DecodedRecord } from '../odb/record.ts';
import { decodeTree } from '../odb/tree.ts';
import { AssembledFile, BlockBudget } from '../storage/assembled-file.ts';
import { eachLimited } from '../storage/concurrency.ts';
import { trackTempDir } from '../storage/leftovers.ts';
import type { ChunkSink } from './fetch.ts';

/** Largest number of files written during the download (one open handle each). */
export const MAX_PRESTAGED = 256;
/** Files created at once before a download starts. */
const FILES_CREATED_AT_ONCE = 8;

export class CheckoutWriter implements ChunkSink {
  readonly #targets = new Map<ObjectId, { file: PrestagedFile; offset: number }[]>();
  readonly #files = new Map<ObjectId, PrestagedFile>();
  /** Staging memory for blocks still missing bytes, all files together. */
  readonly #budget = new BlockBudget();
  /** The files' creation, under way while the download starts. */
  #ready: Promise<void> = Promise.resolve();

  /** For the files of commit `tip`, from the metadata a clone received. */
  static async forCommit(
    tmpDir: string,
    tip: ObjectId,
    metadata: ReadonlyMap<ObjectId, DecodedRecord>,
  ): Promise<CheckoutWriter | undefined> {
    const commit = metadata.get(tip);
    if (commit?.type !== 'commit') return undefined;
    const ids: ObjectId[] = [];
    const trees = [decodeCommit(tip, commit.data).tree];
    while (trees.length > 0 && ids.length < MAX_PRESTAGED) {
      const treeId = trees.pop()!;
      const tree = metadata.get(treeId);
      if (tree?.type !== 'tree') continue;
      for (const entry of decodeTree(treeId, tree.data)) {
        if (entry.kind === 'tree') trees.push(entry.id);
        else if (entry.kind === 'manifest' && entry.mode !== '120000') ids.push(entry.id);
      }
    }
    const manifests: { id: ObjectId; manifest: Manifest }[] = [];
    for (const id of ids) {
      const object = metadata.get(id);
      if (object?.type === 'manifest')
        manifests.push({ id, manifest: decodeManifest(id, object.data) });
    }
    return CheckoutWriter.forManifests(tmpDir, manifests);
  }

  /**
   * For the given files (the first MAX_PRESTAGED distinct ones). Returns at
   * once: the files are created while the download asks where the chunks
   * are, and the first chunk waits for them (a failure to create them fails
   * the first `chunk` or `finish`).
   */
  static async forManifests(
    tmpDir: string,
    manifests: readonly { readonly id: ObjectId; readonly manifest: Manifest }[],
  ): Promise<CheckoutWriter> {
    const writer = new CheckoutWriter();
    const chosen: { id: ObjectId; manifest: Manifest }[] = [];
    const seen = new Set<ObjectId>();
    for (const { id, manifest } of manifests) {
      if (chosen.length >= MAX_PRESTAGED) break;
      if (seen.has(id)) continue;
      seen.add(id);
      chosen.push({ id, manifest });
    }
    trackTempDir(tmpDir);
    writer.#ready = writer.#create(tmpDir, chosen);
    // Awaited by chunk, finish and abort; marked handled here so that a
    // failure no one has reached yet is not an unhandled rejection.
    writer.#ready.catch(() => undefined);
    return writer;
  }

  async #create(tmpDir: string, chosen: readonly { id: ObjectId; manifest: Manifest }[]) {
    // Several at a time: each file is three file-system calls (create, set
    // its length, open for direct writes), and a sparse checkout creates
    // dozens before its first chunk can be written.
    await eachLimited(chosen, FILES_CREATED_AT_ONCE, async ({ id, manifest }) => {
      const file = path.join(tmpDir, `clone-${process.pid}-${randomBytes(6).toString('hex')}`);
      const size = manifest.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      const handle = await AssembledFile.create(file, size, 0o644, this.#budget);
      this.#files.set(id, { path: file, handle, remaining: manifest.chunks.length });
    });
    for (const { id, manifest } of chosen) {
      const state = this.#files.get(id)!;
      let offset = 0;
      for (const chunk of manifest.chunks) {
        const list = this.#targets.get(chunk.id) ?? [];
        list.push({ file: state, offset });
        this.#targets.set(chunk.id, list);
        offset += chunk.length;
      }
    }
  }

  async chunk(id: ObjectId, data: Buffer): Promise<void> {
    await this.#ready;
    for (const { file, offset } of this.#targets.get(id) ?? []) {
      await file.handle.write(data, offset);
      file.remaining--;
    }
  }

  /** Closes every file; returns the complete ones by manifest ID and deletes the rest. */
  async finish(): Promise<Map<ObjectId, string>> {
    await this.#ready;
    const complete = new Map<ObjectId, string>();
    for (const [id, file] of this.#files) {
      if (file.remaining === 0) {
        await file.handle.close();
        complete.set(id, file.path);
      } else await file.handle.abort();
    }
    this.#files.clear();
    return complete;
  }

  async abort(): Promise<void> {
    await this.#ready.catch(() => undefined);
    for (const file of this.#files.values()) await file.handle.abort();
    this.#files.clear();
  }
}

interface PrestagedFile {
  readonly path: string;
  readonly handle: AssembledFile;
  remaining: number;
}
