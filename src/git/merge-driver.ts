/**
 * Git's merge driver for MediaGit-tracked files (gitattributes(5), "Defining
 * a custom merge driver"): `merge=mediagit` in `.gitattributes`, with
 * `merge.mediagit.driver = mediagit merge-driver %O %A %B %P` set by
 * `mediagit install`. Git hands the driver the three versions as it stores
 * them, which for tracked files are Git LFS pointers; the driver finds the
 * content behind each (this repository's store, git-lfs's, or the MediaGit
 * remote), runs the same media-aware strategy `mediagit merge` runs, stores
 * the result and leaves its pointer in %A. Git then checks the merged file
 * out through the smudge filter.
 *
 * Exit 0: merged, %A holds the result. Exit 1: a conflict, %A is left as
 * ours (a binary file cannot hold conflict markers), and one line on stderr
 * names the part both sides changed. Content that is not a pointer (below
 * `track --min-size`) and is text is merged line by line with markers, as
 * Git's own driver would.
 */
import fs from 'node:fs/promises';
import { detectFormat, DETECT_HEAD_BYTES } from '../media/detect.ts';
import { handleAccess, type RandomAccess } from '../media/info/random-access.ts';
import { mergeStrategyFor, writeMerged, type MergeInput } from '../media/merge-strategy.ts';
import { StoredFileReader } from '../odb/file-read.ts';
import { formatPointer, MAX_POINTER_BYTES, parsePointer } from '../odb/lfs-pointer.ts';
import { looksBinary } from '../repo/text-diff.ts';
import { mergeText } from '../repo/text-merge.ts';
import { tempName, writeFileAtomic } from '../storage/durable-file.ts';
import type { ContentFetcher, GitMediaStore } from './media-store.ts';

export interface MergeDriverFiles {
  /** %O, %A (ours, and where the result goes), %B: temp files Git wrote. */
  readonly base: string;
  readonly ours: string;
  readonly theirs: string;
  /** %P: the path in the repository (for the format and for messages). */
  readonly path: string;
}

export interface MergeDriverOptions {
  readonly fetch?: ContentFetcher | undefined;
  /** `mediagit.mergeMedia=false` in Git's config: no media-aware strategies. */
  readonly media?: boolean | undefined;
}

export type MergeDriverOutcome =
  | { readonly merged: true; readonly summary: string }
  | { readonly merged: false; readonly reason: string };

interface Opened {
  readonly access: RandomAccess;
  readonly pointer: boolean;
  close(): Promise<void>;
}

/** One of Git's three files: the content behind its pointer, or the file itself. */
async function open(store: GitMediaStore, file: string, fetch?: ContentFetcher): Promise<Opened> {
  const handle = await fs.open(file, 'r');
  const { size } = await handle.stat();
  if (size <= MAX_POINTER_BYTES) {
    const parsed = parsePointer(await handle.readFile());
    if (parsed.ok) {
      await handle.close();
      const found = await store.ensure(parsed.pointer, fetch);
      const reader = await StoredFileReader.open(store.objects, found.kind, found.id, found.size);
      return { access: reader, pointer: true, close: async () => {} };
    }
  }
  return { access: handleAccess(handle, size), pointer: false, close: () => handle.close() };
}

export async function runMergeDriver(
  store: GitMediaStore,
  files: MergeDriverFiles,
  options: MergeDriverOptions = {},
): Promise<MergeDriverOutcome> {
  const opened: Opened[] = [];
  try {
    for (const file of [files.base, files.ours, files.theirs]) {
      opened.push(await open(store, file, options.fetch));
    }
    const [base, ours, theirs] = opened as [Opened, Opened, Opened];
    const sides: Pick<MergeInput, 'base' | 'ours' | 'theirs'> = {
      base: base.access,
      ours: ours.access,
      theirs: theirs.access,
    };
    const head = await ours.access.read(0, DETECT_HEAD_BYTES);
    const format = detectFormat(head, files.path);
    const strategy = options.media === false ? undefined : await mergeStrategyFor(format);
    let reason = 'no media-aware merge for this format';
    if (
      strategy &&
      Math.max(base.access.size, ours.access.size, theirs.access.size) > strategy.maxBytes
    ) {
      reason = `${strategy.name}: too large to merge in memory`;
    } else if (strategy) {
      const result = await strategy.merge({ path: files.path, format, ...sides });
      if ('merged' in result) {
        await writeResult(store, files, result.merged, sides, ours.pointer);
        return { merged: true, summary: `${strategy.name}: ${result.summary}` };
      }
      if ('conflict' in result)
        return { merged: false, reason: `${strategy.name}: ${result.conflict}` };
      reason = `${strategy.name}: ${result.declined}`;
    }
    if (!base.pointer && !ours.pointer && !theirs.pointer) {
      const text = await textMerge(sides, files);
      if (text) return text;
    }
    return { merged: false, reason };
  } finally {
    for (const side of opened) await side.close();
  }
}

/** Stores the merged content and puts its pointer (or, for plain content, the bytes) in %A. */
async function writeResult(
  store: GitMediaStore,
  files: MergeDriverFiles,
  merged: Parameters<typeof writeMerged>[0],
  sides: Pick<MergeInput, 'base' | 'ours' | 'theirs'>,
  asPointer: boolean,
): Promise<void> {
  const tmp = tempName(store.objects.tmpDir, 'merge');
  try {
    const handle = await fs.open(tmp, 'wx');
    try {
      let at = 0;
      await writeMerged(merged, sides, async (data) => {
        await handle.write(data, 0, data.length, at);
        at += data.length;
      });
    } finally {
      await handle.close();
    }
    if (asPointer) {
      const stored = await store.storeFile(tmp, files.path);
      const pointer = formatPointer({ oid: stored.oid, size: stored.size, extra: [] });
      await writeFileAtomic(files.ours, [Buffer.from(pointer, 'utf8')], {
        tmpDir: store.objects.tmpDir,
      });
    } else {
      await fs.copyFile(tmp, files.ours);
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** Plain text content (not behind pointers): a line merge with markers, as Git's own driver. */
async function textMerge(
  sides: Pick<MergeInput, 'base' | 'ours' | 'theirs'>,
  files: MergeDriverFiles,
): Promise<MergeDriverOutcome | undefined> {
  const texts: string[] = [];
  for (const access of [sides.base, sides.ours, sides.theirs]) {
    if (access.size > 32 * 1024 * 1024) return undefined;
    const bytes = await access.read(0, access.size);
    if (looksBinary(bytes)) return undefined;
    texts.push(bytes.toString('utf8'));
  }
  const result = mergeText(texts[0]!, texts[1]!, texts[2]!, { ours: 'ours', theirs: 'theirs' });
  await fs.writeFile(files.ours, result.text);
  return result.conflicts === 0
    ? { merged: true, summary: 'merged line by line' }
    : { merged: false, reason: `${result.conflicts} conflicting hunk(s)` };
}
