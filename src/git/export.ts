/**
 * `mediagit export --git <dir>`: this repository's history as a Git
 * repository whose large files are Git LFS pointers, their content in
 * `.git/lfs/objects` (docs/migrate-from-git-lfs.md), so a team can leave
 * with its history. The reverse of import.ts: importing the export gives the
 * same MediaGit commit IDs, since trees, content, authors, dates and
 * messages all come back unchanged.
 *
 * Git writes the repository: the history is streamed into one `git
 * fast-import` (blobs by mark, each file once; commits with their parents,
 * authors, committers and exact messages; branches and tags), and file
 * content is streamed from the store a chunk at a time. Files at or above
 * the LFS threshold become pointers; their content is written to the LFS
 * store under its SHA-256, crash-safe. `.git/info/attributes` marks those
 * paths `filter=lfs` so that a checkout smudges them, without adding a
 * `.gitattributes` the history did not have.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { MediaGitError } from '../errors.ts';
import { decodeCommit, decodeTag, formatSignature, type Commit } from '../odb/commit.ts';
import { readManifest, streamFileContent } from '../odb/file-read.ts';
import { formatPointer } from '../odb/lfs-pointer.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { decodeTree } from '../odb/tree.ts';
import { Refs } from '../repo/refs.ts';
import type { Repository } from '../repo/repository.ts';
import { git } from './git-command.ts';

export interface ExportOptions {
  /** The Git repository to make (a new or empty folder). */
  readonly target: string;
  /** Files of this many bytes or more become Git LFS pointers; default 1 MiB. */
  readonly lfsThreshold?: number | undefined;
  readonly onProgress?: ((event: { done: number; total: number }) => void) | undefined;
}

export interface ExportResult {
  readonly commits: number;
  readonly lfsObjects: number;
  readonly refs: number;
}

export const DEFAULT_LFS_THRESHOLD = 1024 * 1024;

function exportError(message: string, data: Record<string, unknown> = {}): MediaGitError {
  return new MediaGitError('EXPORT_FAILED', message, {
    kind: 'user',
    data: { exitCode: 128, ...data },
  });
}

/** Writes to fast-import's stdin, waiting for it to drain. */
async function put(stream: Writable, data: string | Uint8Array): Promise<void> {
  if (!stream.write(data)) await new Promise<void>((resolve) => stream.once('drain', resolve));
}

export async function exportGit(repo: Repository, options: ExportOptions): Promise<ExportResult> {
  const target = path.resolve(options.target);
  const threshold = options.lfsThreshold ?? DEFAULT_LFS_THRESHOLD;
  const existing = await fs.readdir(target).catch(() => []);
  if (existing.length > 0)
    throw exportError(`${options.target} is not empty; export into a new folder`, { target });
  const refs = new Refs(repo);
  const heads = await refs.list('refs/heads/');
  const tags = await refs.list('refs/tags/');
  if (heads.length === 0) throw exportError('this repository has no branch to export');
  const head = await refs.head();

  // Commits reachable from every branch and tag, parents first.
  const commits = new Map<ObjectId, Commit>();
  const order: ObjectId[] = [];
  const ordered = new Set<ObjectId>();
  const tagObjects = new Map<
    string,
    { id: ObjectId; commit: ObjectId; tag?: ReturnType<typeof decodeTag> }
  >();
  const visit = async (start: ObjectId): Promise<void> => {
    const stack: { id: ObjectId; expanded: boolean }[] = [{ id: start, expanded: false }];
    while (stack.length > 0) {
      const top = stack.pop()!;
      if (top.expanded) {
        // A set, not order.includes: a history of 100,000 commits is not 10^10 steps.
        if (!ordered.has(top.id)) {
          ordered.add(top.id);
          order.push(top.id);
        }
        continue;
      }
      if (commits.has(top.id)) continue;
      const commit = decodeCommit(top.id, await repo.objects.readTyped(top.id, 'commit'));
      commits.set(top.id, commit);
      stack.push({ id: top.id, expanded: true });
      for (const parent of [...commit.parents].reverse()) {
        if (!commits.has(parent)) stack.push({ id: parent, expanded: false });
      }
    }
  };
  for (const ref of heads) await visit(ref.id);
  for (const ref of tags) {
    const object = await repo.objects.read(ref.id);
    if (object.type === 'tag') {
      const tag = decodeTag(ref.id, object.data);
      if (tag.type !== 'commit') continue;
      await visit(tag.object);
      tagObjects.set(ref.name, { id: ref.id, commit: tag.object, tag });
    } else if (object.type === 'commit') {
      await visit(ref.id);
      tagObjects.set(ref.name, { id: ref.id, commit: ref.id });
    }
  }

  await fs.mkdir(target, { recursive: true });
  await git(
    ['init', '-q', '-b', head.branch ? head.branch.replace(/^refs\/heads\//, '') : 'main'],
    { cwd: target },
  );
  const gitDir = path.join(target, '.git');
  const child = spawn('git', ['fast-import', '--quiet', '--done'], {
    cwd: target,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const input = child.stdin;
  input.on('error', () => undefined);

  let mark = 0;
  const blobMarks = new Map<string, number>();
  const commitMarks = new Map<ObjectId, number>();
  const lfsPaths = new Set<string>();
  const lfsObjects = new Set<string>();

  /** A file's blob mark: its bytes, or a pointer to its content in the LFS store. */
  const blobMark = async (
    kind: 'blob' | 'manifest',
    id: ObjectId,
    size: number,
    filePath: string,
    symlink: boolean,
  ) => {
    const lfs = !symlink && size >= threshold && size > 0;
    if (lfs) lfsPaths.add(filePath);
    const key = `${id}:${lfs ? 'lfs' : 'raw'}`;
    const known = blobMarks.get(key);
    if (known !== undefined) return known;
    const next = ++mark;
    if (lfs) {
      const oid =
        kind === 'blob'
          ? await repo.objects.blobSha256(id)
          : (await readManifest(repo.objects, id)).sha256;
      if (!lfsObjects.has(oid)) {
        const dir = path.join(gitDir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4));
        await fs.mkdir(dir, { recursive: true });
        const final = path.join(dir, oid);
        const temp = `${final}.tmp`;
        const handle = await fs.open(temp, 'w');
        try {
          await streamFileContent(repo.objects, kind, id, async (chunk) => {
            await handle.write(chunk);
          });
          await handle.sync();
        } finally {
          await handle.close();
        }
        await fs.rename(temp, final);
        lfsObjects.add(oid);
      }
      const pointer = Buffer.from(formatPointer({ oid, size, extra: [] }));
      await put(input, `blob\nmark :${next}\ndata ${pointer.length}\n`);
      await put(input, pointer);
      await put(input, '\n');
    } else {
      await put(input, `blob\nmark :${next}\ndata ${size}\n`);
      await streamFileContent(repo.objects, kind, id, async (chunk) => {
        await put(input, Buffer.from(chunk));
      });
      await put(input, '\n');
    }
    blobMarks.set(key, next);
    return next;
  };

  /** `M` lines for every file of a tree. */
  const fileLines = async (tree: ObjectId, prefix: string, out: string[]): Promise<void> => {
    for (const entry of decodeTree(tree, await repo.objects.readTyped(tree, 'tree'))) {
      const filePath = `${prefix}${entry.name}`;
      if (entry.kind === 'tree') {
        await fileLines(entry.id, `${filePath}/`, out);
        continue;
      }
      const blob = await blobMark(
        entry.kind,
        entry.id,
        entry.size,
        filePath,
        entry.mode === '120000',
      );
      out.push(`M ${entry.mode} :${blob} ${quotePath(filePath)}\n`);
    }
  };

  try {
    for (const [index, id] of order.entries()) {
      const commit = commits.get(id)!;
      const lines: string[] = [];
      await fileLines(commit.tree, '', lines);
      const message = Buffer.from(commit.message, 'utf8');
      const self = ++mark;
      commitMarks.set(id, self);
      let text = `commit refs/mediagit-export/commits\nmark :${self}\n`;
      text += `author ${formatSignature(commit.author)}\ncommitter ${formatSignature(commit.committer)}\n`;
      text += `data ${message.length}\n`;
      await put(input, text);
      await put(input, message);
      let rest = '\n';
      const [first, ...others] = commit.parents;
      // Each commit starts from its first parent (or from nothing), whatever the previous one was.
      rest +=
        first !== undefined
          ? `from :${commitMarks.get(first)}\n`
          : `from 0000000000000000000000000000000000000000\n`;
      for (const parent of others) rest += `merge :${commitMarks.get(parent)}\n`;
      rest += 'deleteall\n' + lines.join('') + '\n';
      await put(input, rest);
      options.onProgress?.({ done: index + 1, total: order.length });
    }
    for (const ref of heads)
      await put(input, `reset ${ref.name}\nfrom :${commitMarks.get(ref.id)}\n\n`);
    for (const [name, tag] of tagObjects) {
      if (tag.tag) {
        const message = Buffer.from(tag.tag.message, 'utf8');
        await put(
          input,
          `tag ${name.slice('refs/tags/'.length)}\nfrom :${commitMarks.get(tag.commit)}\ntagger ${formatSignature(tag.tag.tagger)}\ndata ${message.length}\n`,
        );
        await put(input, message);
        await put(input, '\n');
      } else {
        await put(input, `reset ${name}\nfrom :${commitMarks.get(tag.commit)}\n\n`);
      }
    }
    await put(
      input,
      'reset refs/mediagit-export/commits\nfrom 0000000000000000000000000000000000000000\n\ndone\n',
    );
  } finally {
    input.end();
  }
  if ((await exited) !== 0) throw exportError(`git fast-import failed: ${stderr.trim()}`);
  await git(['update-ref', '-d', 'refs/mediagit-export/commits'], { cwd: target }).catch(
    () => undefined,
  );
  // Checkouts smudge the pointers: Git LFS set up in the new repository, its paths marked locally.
  if (lfsPaths.size > 0) {
    await git(['lfs', 'install', '--local'], { cwd: target });
    const patterns = [...lfsPaths]
      .sort()
      .map((p) => `/${p.replace(/([ *?[\\#!])/g, '\\$1')} filter=lfs diff=lfs merge=lfs -text\n`);
    await fs.mkdir(path.join(gitDir, 'info'), { recursive: true });
    await fs.writeFile(path.join(gitDir, 'info', 'attributes'), patterns.join(''));
  }
  await git(['reset', '-q', '--hard'], { cwd: target });
  return {
    commits: order.length,
    lfsObjects: lfsObjects.size,
    refs: heads.length + tagObjects.size,
  };
}

/** A path as fast-import reads it: C-quoted when it holds a quote, a backslash, a newline or starts with a quote. */
function quotePath(filePath: string): string {
  if (!/["\\\n]/.test(filePath) && !filePath.startsWith('"')) return filePath;
  return `"${filePath.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}
