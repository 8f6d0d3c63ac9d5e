/**
 * `mediagit import`: a Git repository's history, converted commit by commit
 * into this MediaGit repository (docs/migrate-from-git-lfs.md).
 *
 * Git is read only through its command line: `for-each-ref` for the tips,
 * `rev-list --topo-order --reverse` for the commits (parents first), and one
 * long-running `cat-file --batch-command` for the objects. Each Git blob is
 * stored once (by Git ID and file type, remembered across runs); with `lfs`,
 * a blob that is a Git LFS pointer is replaced by its content from the
 * repository's LFS store, checked against the pointer's SHA-256 and size.
 * Large content is streamed: a pointer's content is stored from its file in
 * `lfs/objects`, and a large ordinary blob from a temp file Git writes.
 *
 * The conversion is a function of the Git objects (names, modes, content,
 * authors, dates, messages), so the same commit always becomes the same
 * MediaGit commit: a rerun, an import killed and resumed, or an import of
 * an export (export.ts) gives the same IDs.
 *
 * Progress is kept in `.mediagit/import/`: `commits` maps each converted Git
 * commit to its MediaGit commit and `blobs` each stored Git blob, both
 * appended after the objects they name are durable. A killed import loses
 * at most the commit in progress; the next run skips what is mapped and
 * imports only new commits. Refs are set once all commits are converted.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { MediaGitError } from '../errors.ts';
import { encodeCommit, encodeTag, parseSignature, type Signature } from '../odb/commit.ts';
import { FileStore, type StoredFile } from '../odb/file-store.ts';
import { parsePointer } from '../odb/lfs-pointer.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { encodeTree, isSafeName, type FileMode, type TreeEntry } from '../odb/tree.ts';
import { Refs } from '../repo/refs.ts';
import type { Repository } from '../repo/repository.ts';
import { profileFor } from '../repo/stage.ts';
import { git, runGit } from './git-command.ts';
import { tempName } from '../storage/durable-file.ts';
import { removeStaleTemps } from '../storage/leftovers.ts';

export interface ImportOptions {
  /**
   * Path of the Git repository (a work tree or a bare repository), or a URL
   * Git can clone (https://, ssh://, file://, user@host:path): mirrored into
   * the import state, and fetched again by each later import.
   */
  readonly source: string;
  /** Replace Git LFS pointers by their content. */
  readonly lfs: boolean;
  /** Branch names (globs with `*`) to import; all branches when absent. Tags on imported commits follow. */
  readonly branches?: readonly string[] | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((event: ImportProgress) => void) | undefined;
  /** Lines about slow steps (cloning, fetching LFS objects), for stderr. */
  readonly report?: ((message: string) => void) | undefined;
}

export interface ImportProgress {
  readonly done: number;
  readonly total: number;
  readonly commit: string;
}

export interface ImportResult {
  /** Commits converted by this run. */
  readonly imported: number;
  /** Commits converted by earlier runs, skipped. */
  readonly skipped: number;
  /** Git LFS pointers replaced by their content (distinct objects). */
  readonly lfsObjects: number;
  /** Refs set: full name to MediaGit ID. */
  readonly refs: Readonly<Record<string, ObjectId>>;
  /** Paths left out: Git submodules (gitlinks), which MediaGit has no entry for. */
  readonly skippedSubmodules: number;
  /** The branch the Git repository's HEAD names, when it was imported. */
  readonly head: string | undefined;
  /** Where the Git history was read: the path given, or the mirror of a URL. */
  readonly gitRepo: string;
}

function importError(message: string, data: Record<string, unknown> = {}): MediaGitError {
  // Git's exit code for a fatal error.
  return new MediaGitError('IMPORT_FAILED', message, {
    kind: 'user',
    data: { exitCode: 128, ...data },
  });
}

const GIT_MODES: Record<string, FileMode | 'tree' | 'gitlink'> = {
  '100644': '100644',
  '100664': '100644',
  '100755': '100755',
  '120000': '120000',
  '40000': 'tree',
  '040000': 'tree',
  '160000': 'gitlink',
};

/** Blobs smaller than this are read from `cat-file` into memory; larger ones go through a temp file. */
const IN_MEMORY_BLOB = 16 * 1024 * 1024;

/** One Git object's header and, when asked for, its bytes. */
interface GitObject {
  readonly type: string;
  readonly size: number;
}

/**
 * `git cat-file --batch-command`: `info <id>` and `contents <id>` answered
 * in order on one process (no process per object).
 */
class CatFile {
  readonly #child: ChildProcessWithoutNullStreams;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: (() => void) | undefined;
  #ended = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(gitDir: string) {
    this.#child = spawn('git', ['--git-dir', gitDir, 'cat-file', '--batch-command'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stdout.on('data', (data: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? data : Buffer.concat([this.#buffer, data]);
      this.#waiting?.();
    });
    this.#child.stdout.on('end', () => {
      this.#ended = true;
      this.#waiting?.();
    });
    this.#child.stdin.on('error', () => undefined);
  }

  async #need(bytes: number): Promise<void> {
    while (this.#buffer.length < bytes) {
      if (this.#ended) throw importError('git cat-file ended early');
      await new Promise<void>((resolve) => (this.#waiting = resolve));
      this.#waiting = undefined;
    }
  }

  async #line(): Promise<string> {
    for (;;) {
      const at = this.#buffer.indexOf(10);
      if (at >= 0) {
        const line = this.#buffer.subarray(0, at).toString('utf8');
        this.#buffer = this.#buffer.subarray(at + 1);
        return line;
      }
      await this.#need(this.#buffer.length + 1);
    }
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work, work);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  #header(line: string, id: string): GitObject {
    const match = /^([0-9a-f]+) (\w+) (\d+)$/.exec(line);
    if (!match) throw importError(`git cannot read object ${id}: ${line}`, { id });
    return { type: match[2]!, size: Number(match[3]) };
  }

  info(id: string): Promise<GitObject> {
    return this.#serial(async () => {
      this.#child.stdin.write(`info ${id}\n`);
      return this.#header(await this.#line(), id);
    });
  }

  contents(id: string): Promise<GitObject & { data: Buffer }> {
    return this.#serial(async () => {
      this.#child.stdin.write(`contents ${id}\n`);
      const header = this.#header(await this.#line(), id);
      await this.#need(header.size + 1);
      const data = Buffer.from(this.#buffer.subarray(0, header.size));
      this.#buffer = this.#buffer.subarray(header.size + 1);
      return { ...header, data };
    });
  }

  close(): void {
    this.#child.stdin.end();
    this.#child.kill();
  }
}

interface GitCommit {
  readonly tree: string;
  readonly parents: readonly string[];
  readonly author: Signature;
  readonly committer: Signature;
  readonly message: string;
}

function parseGitCommit(id: string, data: Buffer): GitCommit {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  const head = split < 0 ? text : text.slice(0, split);
  const message = split < 0 ? '' : text.slice(split + 2);
  let tree = '';
  const parents: string[] = [];
  let author: Signature | undefined;
  let committer: Signature | undefined;
  for (const line of head.split('\n')) {
    if (line.startsWith(' ')) continue; // a continuation (gpgsig, mergetag)
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    const value = line.slice(space + 1);
    if (key === 'tree') tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author') author = parseSignature(value);
    else if (key === 'committer') committer = parseSignature(value);
  }
  if (!tree || !author || !committer) throw importError(`git commit ${id} does not parse`, { id });
  return { tree, parents, author, committer, message };
}

/** An append-only `key value...` map file, read whole at start. */
class MapFile {
  readonly file: string;
  readonly entries = new Map<string, string>();
  readonly #valid: RegExp;
  #pending: string[] = [];

  /** `valid`: what a whole line is; a line torn by a kill is not, and is ignored. */
  constructor(file: string, valid: RegExp) {
    this.file = file;
    this.#valid = valid;
  }

  async load(): Promise<void> {
    const text = await fs.readFile(this.file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!this.#valid.test(line)) continue; // torn by a kill mid-append
      const at = line.indexOf(' ');
      this.entries.set(line.slice(0, at), line.slice(at + 1));
    }
    // A torn last line is cut off so that the next append starts a line of its own.
    if (text.length > 0 && !text.endsWith('\n')) await fs.appendFile(this.file, '\n');
  }

  set(key: string, value: string): void {
    this.entries.set(key, value);
    this.#pending.push(`${key} ${value}\n`);
  }

  /** Appends what was set since the last flush and fsyncs it. */
  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const text = this.#pending.join('');
    this.#pending = [];
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const handle = await fs.open(this.file, 'a');
    try {
      await handle.write(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

function matchesAny(name: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => {
    const regex = new RegExp(
      `^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`,
    );
    return regex.test(name);
  });
}

/** `<git commit> <mediagit commit>` (SHA-1 or SHA-256 Git). */
const COMMIT_LINE = /^(?:[0-9a-f]{40}|[0-9a-f]{64}) [0-9a-f]{64}$/;
/** `<git blob>:<lfs|raw>:<extension> <kind> <id> <size> <sha256>`. */
const BLOB_LINE =
  /^(?:[0-9a-f]{40}|[0-9a-f]{64}):(?:lfs|raw):\S* (?:blob|manifest) [0-9a-f]{64} \d+ [0-9a-f]{64}$/;

/** Where the import's progress is kept in a repository. */
export function importStateDir(repo: Repository): string {
  return path.join(repo.gitDir, 'import');
}

/** The Git commit a MediaGit commit was imported from, by the import maps (undefined when none). */
export async function importedFrom(repo: Repository): Promise<Map<ObjectId, string>> {
  const map = new MapFile(path.join(importStateDir(repo), 'commits'), COMMIT_LINE);
  await map.load().catch(() => undefined);
  const reverse = new Map<ObjectId, string>();
  for (const [gitId, id] of map.entries) reverse.set(id, gitId);
  return reverse;
}

/** Whether `source` names a remote repository (a URL or scp-like `host:path`), not a path. */
export function isGitUrl(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || /^[^/:]+@[^/:]+:/.test(source);
}

/**
 * The mirror of `url` in the import state (`import/source.git`), made by
 * `git clone --mirror` into a temp directory and renamed into place, or
 * brought up to date by `git fetch`; with `lfs`, `git lfs fetch --all`
 * downloads the LFS objects of every ref from the repository's LFS server.
 */
async function mirrorOf(
  repo: Repository,
  url: string,
  lfs: boolean,
  report: ((message: string) => void) | undefined,
): Promise<{ mirror: string; lfsFailure: string | undefined }> {
  const state = importStateDir(repo);
  const mirror = path.join(state, 'source.git');
  await fs.mkdir(state, { recursive: true });
  // A mirror a killed import was cloning (see below), once 10 minutes old.
  removeStaleTemps(state);
  if (!(await fs.stat(mirror).catch(() => undefined))?.isDirectory()) {
    // Named with this PID: an interruption removes it (leftovers.ts).
    const tmp = tempName(state, 'source.git');
    report?.(`cloning ${url}`);
    try {
      await git(['clone', '--mirror', '--quiet', url, tmp], { cwd: state });
      await fs.rename(tmp, mirror);
    } catch (error) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw importError(`could not clone ${url}: ${(error as Error).message}`, { source: url });
    }
  } else {
    report?.(`fetching ${url}`);
    await git(['remote', 'set-url', 'origin', url], { cwd: mirror });
    await git(['fetch', '--prune', '--quiet', 'origin'], { cwd: mirror });
  }
  const lfsFailure = lfs ? await fetchLfs(mirror, url, report) : undefined;
  return { mirror, lfsFailure };
}

/**
 * Downloads every ref's Git LFS objects into `gitRepo`'s LFS store from its
 * LFS server; returns why it failed, if it did (an object still missing
 * is then reported with that reason).
 */
async function fetchLfs(
  gitRepo: string,
  name: string,
  report: ((message: string) => void) | undefined,
): Promise<string | undefined> {
  report?.(`fetching the Git LFS objects of every ref from ${name}'s LFS server`);
  const result = await runGit(['lfs', 'fetch', '--all'], { cwd: gitRepo });
  if (result.code === 0) return undefined;
  const why = result.stderr.trim().split('\n').slice(-3).join('; ') || `exit ${result.code}`;
  report?.(`git lfs fetch --all failed: ${why}`);
  return why;
}

export async function importGit(repo: Repository, options: ImportOptions): Promise<ImportResult> {
  const mirrored = isGitUrl(options.source)
    ? await mirrorOf(repo, options.source, options.lfs, options.report)
    : undefined;
  const source = mirrored?.mirror ?? path.resolve(options.source);
  const gitDir = path.resolve(
    source,
    (
      await git(['rev-parse', '--git-dir'], { cwd: source }).catch(() => {
        throw importError(`${options.source} is not a Git repository`, { source });
      })
    ).trim(),
  );
  const refLines = (
    await git(
      [
        'for-each-ref',
        '--format=%(refname) %(objecttype) %(objectname) %(*objectname)',
        'refs/heads',
        'refs/tags',
      ],
      { cwd: source },
    )
  )
    .split('\n')
    .filter((line) => line !== '');
  const branches = refLines
    .map((line) => line.split(' '))
    .filter(([name]) => name!.startsWith('refs/heads/'))
    .filter(
      ([name]) =>
        !options.branches || matchesAny(name!.slice('refs/heads/'.length), options.branches),
    );
  if (branches.length === 0)
    throw importError(`no branch of ${options.source} to import`, { source });
  const tips = branches.map(([, , id]) => id!);
  const commits = (await git(['rev-list', '--topo-order', '--reverse', ...tips], { cwd: source }))
    .split('\n')
    .filter((line) => line !== '');

  const state = importStateDir(repo);
  const commitMap = new MapFile(path.join(state, 'commits'), COMMIT_LINE);
  const blobMap = new MapFile(path.join(state, 'blobs'), BLOB_LINE);
  await commitMap.load();
  await blobMap.load();
  const cat = new CatFile(gitDir);
  const store = new FileStore(repo.objects);
  const scratch = path.join(state, 'tmp');
  await fs.rm(scratch, { recursive: true, force: true });
  await fs.mkdir(scratch, { recursive: true });
  const trees = new Map<string, TreeEntry>();
  const lfsSeen = new Set<string>();
  /** Whether `git lfs fetch --all` ran (at most once, when an object is missing). */
  let lfsFetched = mirrored !== undefined;
  let lfsFailure = mirrored?.lfsFailure;
  let skippedSubmodules = 0;
  let imported = 0;
  let skipped = 0;

  /** Stores a Git blob (or the LFS content it points to) as it would be added at `filePath`. */
  const storeBlob = async (
    blobId: string,
    filePath: string,
    mode: FileMode,
  ): Promise<StoredFile> => {
    const ext = mode === '120000' ? 'symlink' : path.extname(filePath).toLowerCase();
    const key = `${blobId}:${options.lfs ? 'lfs' : 'raw'}:${ext}`;
    const known = blobMap.entries.get(key);
    if (known) {
      const [kind, id, size, sha256] = known.split(' ');
      return { kind: kind as StoredFile['kind'], id: id!, size: Number(size), sha256: sha256! };
    }
    const profile = (head: Uint8Array, size: number) => profileFor(head, filePath, size, false);
    const info = await cat.info(blobId);
    let stored: StoredFile;
    if (info.size <= IN_MEMORY_BLOB) {
      const { data } = await cat.contents(blobId);
      const pointer = options.lfs && mode !== '120000' ? parsePointer(data) : undefined;
      if (pointer?.ok === true) {
        const { oid, size } = pointer.pointer;
        const file = path.join(gitDir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
        let stat = await fs.stat(file).catch(() => undefined);
        if (!stat && !lfsFetched) {
          // Not downloaded yet (a clone fetches only its checkout's objects):
          // every ref's objects from the repository's LFS server, once.
          lfsFetched = true;
          lfsFailure = await fetchLfs(source, options.source, options.report);
          stat = await fs.stat(file).catch(() => undefined);
        }
        if (!stat) {
          throw importError(
            `the Git LFS object ${oid} of ${filePath} is not in ${path.join(gitDir, 'lfs', 'objects')}, and \`git lfs fetch --all\` in ${options.source} did not bring it (${lfsFailure ?? 'the LFS server does not have it'})`,
            { oid, path: filePath },
          );
        }
        stored = await store.storeFile(file, {
          chunkThreshold: repo.chunkThreshold,
          profile,
          signal: options.signal,
        });
        if (stored.sha256 !== oid || stored.size !== size) {
          throw importError(
            `the Git LFS object ${oid} of ${filePath} does not hash to its ID (corrupt LFS store)`,
            {
              oid,
              path: filePath,
            },
          );
        }
        lfsSeen.add(oid);
      } else if (data.length < repo.chunkThreshold) {
        stored = await store.storeBlob(
          data,
          profile(data.subarray(0, 65536), data.length).compression,
        );
      } else {
        const file = path.join(scratch, blobId);
        await fs.writeFile(file, data);
        stored = await store.storeFile(file, {
          chunkThreshold: repo.chunkThreshold,
          profile,
          signal: options.signal,
        });
        await fs.rm(file, { force: true });
      }
    } else {
      // A large ordinary blob: Git writes it to a temp file, which is stored like an added file.
      const file = path.join(scratch, blobId);
      const child = spawn('git', ['--git-dir', gitDir, 'cat-file', 'blob', blobId], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      await pipeline(child.stdout, createWriteStream(file));
      if ((await exited) !== 0)
        throw importError(`git cat-file blob ${blobId} failed`, { id: blobId });
      stored = await store.storeFile(file, {
        chunkThreshold: repo.chunkThreshold,
        profile,
        signal: options.signal,
      });
      await fs.rm(file, { force: true });
    }
    blobMap.set(key, `${stored.kind} ${stored.id} ${stored.size} ${stored.sha256}`);
    return stored;
  };

  // A Git tree converts the same wherever it is (a blob is stored by its name's type, not its folder).
  const convertTree = async (treeId: string, prefix: string): Promise<TreeEntry> => {
    const cached = trees.get(treeId);
    if (cached) return cached;
    const { data } = await cat.contents(treeId);
    const entries: TreeEntry[] = [];
    for (let at = 0; at < data.length;) {
      const space = data.indexOf(32, at);
      const nul = data.indexOf(0, space);
      const mode = GIT_MODES[data.toString('latin1', at, space)];
      const name = data.toString('utf8', space + 1, nul);
      const id = data.subarray(nul + 1, nul + 21).toString('hex');
      at = nul + 21;
      const filePath = prefix + name;
      if (mode === undefined)
        throw importError(`unknown Git mode in tree ${treeId} at ${filePath}`, { path: filePath });
      if (mode === 'gitlink') {
        skippedSubmodules++;
        continue;
      }
      if (!isSafeName(name)) {
        throw importError(
          `the Git path ${filePath} cannot be a MediaGit path (a reserved or unsafe name)`,
          { path: filePath },
        );
      }
      if (mode === 'tree') {
        const sub = await convertTree(id, `${filePath}/`);
        entries.push({ ...sub, name });
      } else {
        const stored = await storeBlob(id, filePath, mode);
        entries.push({ name, mode, kind: stored.kind, id: stored.id, size: stored.size });
      }
    }
    const tree = (await repo.objects.write('tree', encodeTree(entries), 'text')).id;
    const entry: TreeEntry = { name: '', mode: '40000', kind: 'tree', id: tree, size: 0 };
    trees.set(treeId, entry);
    return entry;
  };

  try {
    for (const [index, gitId] of commits.entries()) {
      options.signal?.throwIfAborted();
      if (commitMap.entries.has(gitId)) {
        skipped++;
        continue;
      }
      const parsed = parseGitCommit(gitId, (await cat.contents(gitId)).data);
      const parents = parsed.parents.map((parent) => {
        const mapped = commitMap.entries.get(parent);
        if (!mapped)
          throw importError(
            `commit ${gitId}'s parent ${parent} was not imported (a shallow Git repository?)`,
            { id: gitId },
          );
        return mapped;
      });
      const tree = await convertTree(parsed.tree, '');
      const body = encodeCommit({
        tree: tree.id,
        parents,
        author: parsed.author,
        committer: parsed.committer,
        message: parsed.message,
      });
      const id = (await repo.objects.write('commit', body, 'text')).id;
      // The commit's objects are durable before the maps name them.
      await repo.objects.flush();
      await blobMap.flush();
      commitMap.set(gitId, id);
      await commitMap.flush();
      imported++;
      options.onProgress?.({ done: index + 1, total: commits.length, commit: gitId });
    }
  } finally {
    cat.close();
    await store.close();
    await fs.rm(scratch, { recursive: true, force: true });
  }

  // Refs, once every commit is in: branches, and tags on imported commits.
  const refs = new Refs(repo);
  const set: Record<string, ObjectId> = {};
  const importedIds = new Set(commitMap.entries.values());
  const tagCat = new CatFile(gitDir);
  try {
    for (const [name, type, id, peeled] of refLines.map((line) => line.split(' '))) {
      let target: ObjectId | undefined;
      if (name!.startsWith('refs/heads/')) {
        if (!branches.some(([branch]) => branch === name)) continue;
        target = commitMap.entries.get(id!);
      } else if (type === 'commit') {
        target = commitMap.entries.get(id!);
      } else if (type === 'tag' && peeled && commitMap.entries.get(peeled)) {
        const text = (await tagCat.contents(id!)).data.toString('utf8');
        const split = text.indexOf('\n\n');
        const tagger = parseSignature(/^tagger (.*)$/m.exec(text.slice(0, split))?.[1] ?? '');
        if (tagger) {
          const body = encodeTag({
            object: commitMap.entries.get(peeled)!,
            type: 'commit',
            tag: name!.slice('refs/tags/'.length),
            tagger,
            message:
              split < 0
                ? ''
                : text.slice(split + 2).replace(/-----BEGIN PGP SIGNATURE-----[\s\S]*$/, ''),
          });
          target = (await repo.objects.write('tag', body, 'text')).id;
        } else target = commitMap.entries.get(peeled);
      }
      if (target === undefined) continue;
      const current = await refs.read(name!);
      if (
        current !== undefined &&
        current !== target &&
        !importedIds.has(current) &&
        name!.startsWith('refs/heads/')
      ) {
        // A branch of this repository's own: never moved by an import.
        throw importError(
          `${name} exists here and was not imported from Git; import into a new repository, or rename the branch first`,
          { ref: name },
        );
      }
      if (current !== target) {
        await refs.update(name!, target, { message: `import: from ${options.source}` });
      }
      set[name!] = target;
    }
    await repo.objects.flush();
  } finally {
    tagCat.close();
  }
  const sourceHead = (
    await git(['symbolic-ref', '-q', 'HEAD'], { cwd: source }).catch(() => '')
  ).trim();
  const head = set[sourceHead] !== undefined ? sourceHead : undefined;
  return {
    imported,
    skipped,
    lfsObjects: lfsSeen.size,
    refs: set,
    skippedSubmodules,
    head,
    gitRepo: source,
  };
}
