/**
 * `commit`: record the index as a new commit on the current branch (or
 * detached HEAD). The ref moves by compare-and-swap after every object is
 * durable, so a crash at any instant leaves either the old or the new commit.
 */
import { MediaGitError } from '../errors.ts';
import { encodeCommit, signatureAt, type Signature } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { add } from './add.ts';
import { StagingIndex } from './index-file.ts';
import {
  clearMergeState,
  operationInProgress,
  readMergeState,
  refuseIfUnmerged,
} from './merge-state.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { flattenTree, readCommit, writeTreeFromFiles } from './tree-ops.ts';
import type { StageOptions } from './stage.ts';

export interface CommitOptions extends StageOptions {
  readonly message?: string | undefined;
  /** Stage modified and deleted tracked files first (`-a`). */
  readonly all?: boolean;
  readonly amend?: boolean;
  readonly allowEmpty?: boolean;
  readonly cwd: string;
  /**
   * Opens the user's editor on the message (the default one, if any, plus
   * Git's comment lines) and returns what was saved; called once the commit
   * is known to have something to record.
   */
  readonly editMessage?: ((template: string) => Promise<string>) | undefined;
}

/** Git's `commit.cleanup=strip`: comment lines and trailing blank lines go. */
export function cleanupMessage(text: string): string {
  const lines = text
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.trimEnd());
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  const collapsed: string[] = [];
  for (const line of lines) {
    if (line === '' && collapsed.at(-1) === '') continue;
    collapsed.push(line);
  }
  return collapsed.length === 0 ? '' : `${collapsed.join('\n')}\n`;
}

export interface CommitResult {
  readonly id: ObjectId;
  readonly branch: string | undefined;
  readonly root: boolean;
  readonly subject: string;
  readonly filesChanged: number;
}

export function signatureFor(repo: Repository): Signature {
  const name = repo.context.authorName ?? repo.config('user.name');
  const email = repo.context.authorEmail ?? repo.config('user.email');
  if (typeof name !== 'string' || name === '' || typeof email !== 'string' || email === '') {
    throw new MediaGitError(
      'NO_IDENTITY',
      'Author identity unknown: run `mediagit config --global user.name "Your Name"` and `mediagit config --global user.email you@example.com` (or set MEDIAGIT_AUTHOR_NAME and MEDIAGIT_AUTHOR_EMAIL)',
      { kind: 'config' },
    );
  }
  return signatureAt(name, email, repo.now());
}

/**
 * Writes a commit object of `tree` with `parents` (the committer is the
 * current identity; the author too unless given) and makes it durable.
 */
export async function writeCommit(
  repo: Repository,
  tree: ObjectId,
  parents: readonly ObjectId[],
  message: string,
  author?: Signature,
  committer: Signature = signatureFor(repo),
): Promise<ObjectId> {
  const body = encodeCommit({
    tree,
    parents: [...parents],
    author: author ?? committer,
    committer,
    message,
  });
  const id = (await repo.objects.write('commit', body, 'text')).id;
  await repo.objects.flush();
  return id;
}

export async function commit(repo: Repository, options: CommitOptions): Promise<CommitResult> {
  const refs = new Refs(repo);
  const head = await refs.head();
  const merging = await readMergeState(repo);
  if (merging && options.amend) {
    // Git's words; a stopped step of a rebase is a rebase's. (Git lets a
    // revert be amended away; MediaGit refuses it like the others.)
    const operation = (await operationInProgress(repo)) ?? merging.operation;
    throw new MediaGitError(
      'MERGE_IN_PROGRESS',
      `You are in the middle of a ${operation} -- cannot amend.`,
      { kind: 'conflict', data: { operation } },
    );
  }
  // `-a` stages every tracked file first, which resolves the conflicted
  // ones (markers and all), as Git's does.
  if (options.all) await add(repo, { ...options, paths: [], update: true });
  await refuseIfUnmerged(repo, 'commit');
  const signature = signatureFor(repo);
  const index = await StagingIndex.load(repo.gitDir);
  const lock = await StagingIndex.lock(repo.gitDir);
  try {
    const tree = await writeTreeFromFiles(repo.objects, index.entries.values());
    let parents: ObjectId[] = head.id ? [head.id] : [];
    let message = options.message;
    let author = signature;
    if (merging && head.id) {
      // Concluding a merge (both parents) or a cherry-pick or revert (one),
      // by default with its message; a cherry-pick keeps its author.
      if (merging.operation === 'merge') parents = [head.id, merging.theirs];
      message ??= merging.message;
      author = merging.author ?? author;
    }
    let parentTree: ObjectId | undefined;
    if (options.amend) {
      if (!head.id)
        throw new MediaGitError('NOTHING_TO_AMEND', 'You have nothing to amend.', {
          kind: 'usage',
        });
      const previous = await readCommit(repo.objects, head.id);
      parents = [...previous.parents];
      message ??= previous.message;
      author = previous.author;
    } else if (head.id && !merging) {
      parentTree = (await readCommit(repo.objects, head.id)).tree;
    }
    if ((message === undefined || message.trim() === '') && !options.editMessage) {
      throw new MediaGitError(
        'EMPTY_MESSAGE',
        'Aborting commit due to empty commit message (use -m <msg>).',
        {
          kind: 'usage',
        },
      );
    }
    if (message !== undefined && !message.endsWith('\n')) message += '\n';
    if (
      !options.amend &&
      !options.allowEmpty &&
      (parentTree === tree || (!head.id && index.entries.size === 0))
    ) {
      throw new MediaGitError('NOTHING_TO_COMMIT', 'nothing to commit, working tree clean', {
        kind: 'user',
        data: { exitCode: 1 },
      });
    }
    if (options.editMessage) {
      const branch = head.branch?.replace(/^refs\/heads\//, '');
      const template =
        `${message ?? '\n'}\n` +
        '# Please enter the commit message for your changes. Lines starting\n' +
        "# with '#' will be ignored, and an empty message aborts the commit.\n" +
        '#\n' +
        `# ${branch ? `On branch ${branch}` : 'HEAD detached'}\n`;
      message = cleanupMessage(await options.editMessage(template));
    }
    if (message === undefined || message.trim() === '') {
      throw new MediaGitError(
        'EMPTY_MESSAGE',
        'Aborting commit due to empty commit message (use -m <msg>, or set an editor).',
        { kind: 'usage' },
      );
    }
    const id = await writeCommit(repo, tree, parents, message, author, signature);
    const subject = message.split('\n')[0] ?? '';
    const kind = options.amend
      ? 'commit (amend)'
      : parents.length === 0
        ? 'commit (initial)'
        : 'commit';
    await refs.updateHead(
      id,
      `${merging ? `commit (${merging.operation})` : kind}: ${subject}`,
      head.id ?? null,
    );
    if (merging) await clearMergeState(repo);
    const before = parents[0]
      ? await flattenTree(repo.objects, (await readCommit(repo.objects, parents[0])).tree)
      : new Map();
    const after = await flattenTree(repo.objects, tree);
    let filesChanged = 0;
    for (const [p, file] of after)
      if (before.get(p)?.id !== file.id || before.get(p)?.mode !== file.mode) filesChanged++;
    for (const p of before.keys()) if (!after.has(p)) filesChanged++;
    return { id, branch: head.branch, root: parents.length === 0, subject, filesChanged };
  } finally {
    await lock.release();
  }
}
