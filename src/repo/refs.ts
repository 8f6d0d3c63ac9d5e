/**
 * References: HEAD, branches (refs/heads/*), tags (refs/tags/*), and their
 * reflogs (logs/<ref>).
 *
 * A ref file holds a hex object ID and a newline; HEAD holds either
 * "ref: refs/heads/<name>" or a detached commit ID. Every change goes through
 * compare-and-swap under a `<ref>.lock` file taken with O_EXCL, and is
 * appended to the ref's reflog (and HEAD's, when HEAD points at the ref).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { LockFile } from '../storage/durable-file.ts';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { isObjectId, type ObjectId } from '../odb/object-id.ts';
import { formatSignature, signatureAt, type Signature } from '../odb/commit.ts';
import { assertMayMove } from './protect.ts';
import type { Repository } from './repository.ts';

export const ZERO_ID = '0'.repeat(64);

export interface HeadState {
  /** The branch ref HEAD names (refs/heads/x), absent when detached. */
  readonly branch: string | undefined;
  /** The commit HEAD resolves to, absent on an unborn branch. */
  readonly id: ObjectId | undefined;
}

/** Git's check-ref-format rules for one full ref name such as refs/heads/x. */
export function isValidRefName(name: string): boolean {
  if (name.length === 0 || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock'))
    return false;
  if (name.includes('..') || name.includes('@{') || name.includes('//') || name === '@')
    return false;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20~^:?*[\\\x7f]/.test(name)) return false;
  return name.split('/').every((part) => part.length > 0 && !part.startsWith('.'));
}

export function assertBranchName(name: string): void {
  if (!isValidRefName(`refs/heads/${name}`) || name.startsWith('-') || name === 'HEAD') {
    throw new MediaGitError('BAD_REF_NAME', `'${name}' is not a valid branch name`, {
      kind: 'usage',
      data: { name },
    });
  }
}

export function assertTagName(name: string): void {
  if (!isValidRefName(`refs/tags/${name}`) || name.startsWith('-')) {
    throw new MediaGitError('BAD_REF_NAME', `'${name}' is not a valid tag name`, {
      kind: 'usage',
      data: { name },
    });
  }
}

export class Refs {
  readonly #repo: Repository;

  constructor(repo: Repository) {
    this.#repo = repo;
  }

  #file(name: string): string {
    return path.join(this.#repo.gitDir, name);
  }

  /** The ID a full ref name holds, or undefined when it does not exist. */
  async read(name: string): Promise<ObjectId | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.#file(name), 'utf8');
    } catch (error) {
      if (hasErrnoCode(error, 'ENOENT') || hasErrnoCode(error, 'EISDIR')) return undefined;
      throw error;
    }
    const id = text.trim();
    if (!isObjectId(id)) {
      throw new MediaGitError(
        'REF_CORRUPT',
        `ref ${name} is corrupt: it does not hold an object ID`,
        {
          kind: 'corrupt',
          data: { ref: name },
        },
      );
    }
    return id;
  }

  async head(): Promise<HeadState> {
    const text = (await fs.readFile(this.#file('HEAD'), 'utf8')).trim();
    if (text.startsWith('ref: ')) {
      const branch = text.slice(5);
      return { branch, id: await this.read(branch) };
    }
    if (!isObjectId(text)) {
      throw new MediaGitError('REF_CORRUPT', 'HEAD is corrupt', { kind: 'corrupt' });
    }
    return { branch: undefined, id: text };
  }

  /** Lists full ref names under a prefix such as "refs/heads/", sorted. */
  async list(prefix: string): Promise<{ name: string; id: ObjectId }[]> {
    const out: { name: string; id: ObjectId }[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(this.#file(rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const name = `${rel}${entry.name}`;
        if (entry.isDirectory()) await walk(`${name}/`);
        else if (!entry.name.endsWith('.lock')) {
          const id = await this.read(name);
          if (id) out.push({ name, id });
        }
      }
    };
    await walk(prefix);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Sets `name` to `newId` (or deletes it when null) if it still holds
   * `expected` (undefined: any value; null: must not exist). Appends to the
   * reflog; also to HEAD's when HEAD points at `name` and `logHead` is set.
   */
  async update(
    name: string,
    newId: ObjectId | null,
    options: { expected?: ObjectId | null; message: string; logHead?: boolean },
  ): Promise<void> {
    if (!isValidRefName(name) || !name.startsWith('refs/')) {
      throw new MediaGitError('BAD_REF_NAME', `invalid ref name ${name}`, { kind: 'usage' });
    }
    const file = this.#file(name);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const lock = await acquire(file, name);
    try {
      const current = await this.read(name);
      if (options.expected !== undefined && (current ?? null) !== options.expected) {
        throw new MediaGitError(
          'REF_CHANGED',
          `cannot update ref '${name}': expected ${options.expected ?? 'no ref'} but found ${current ?? 'no ref'}`,
          { kind: 'conflict', data: { ref: name, expected: options.expected, actual: current } },
        );
      }
      // A protected branch only moves forward (protect.ts), whoever moves it.
      await assertMayMove(this.#repo, name, current, newId);
      if (newId === null) {
        await fs.rm(file, { force: true });
        await lock.release();
        await fs.rm(this.#file(`logs/${name}`), { force: true });
        return;
      }
      await lock.commit(Buffer.from(`${newId}\n`));
      await this.appendLog(name, current, newId, options.message);
      if (options.logHead) {
        const head = await this.head();
        if (head.branch === name) await this.appendLog('HEAD', current, newId, options.message);
      }
    } finally {
      await lock.release();
    }
  }

  /** Points HEAD at a branch (it need not exist yet: an unborn branch). */
  async setHeadBranch(branch: string, message: string, fromId?: ObjectId): Promise<void> {
    const head = this.#file('HEAD');
    const lock = await acquire(head, 'HEAD');
    try {
      const target = await this.read(branch);
      await lock.commit(Buffer.from(`ref: ${branch}\n`));
      if (target) await this.appendLog('HEAD', fromId, target, message);
    } finally {
      await lock.release();
    }
  }

  /** Detaches HEAD at a commit, or moves a detached HEAD (compare-and-swap on the old ID). */
  async setHeadDetached(id: ObjectId, message: string, expected?: ObjectId): Promise<void> {
    const head = this.#file('HEAD');
    const lock = await acquire(head, 'HEAD');
    try {
      const before = await this.head();
      if (expected !== undefined && before.id !== expected) {
        throw new MediaGitError('REF_CHANGED', 'HEAD moved during the operation', {
          kind: 'conflict',
        });
      }
      await lock.commit(Buffer.from(`${id}\n`));
      await this.appendLog('HEAD', before.id, id, message);
    } finally {
      await lock.release();
    }
  }

  /** Moves whatever HEAD points at (its branch, or HEAD itself when detached). */
  async updateHead(newId: ObjectId, message: string, expected: ObjectId | null): Promise<void> {
    const head = await this.head();
    if (head.branch) await this.update(head.branch, newId, { expected, message, logHead: true });
    else await this.setHeadDetached(newId, message, expected ?? undefined);
  }

  /**
   * Moves the reflog of ref `from` to ref `to` (replacing any stale log
   * there), for renaming a branch with its history. No-op when `from` has none.
   */
  async renameLog(from: string, to: string): Promise<void> {
    const target = this.#file(`logs/${to}`);
    await fs.mkdir(path.dirname(target), { recursive: true });
    try {
      await fs.rename(this.#file(`logs/${from}`), target);
    } catch (error) {
      if (!hasErrnoCode(error, 'ENOENT')) throw error;
    }
  }

  async appendLog(
    name: string,
    oldId: ObjectId | undefined,
    newId: ObjectId,
    message: string,
  ): Promise<void> {
    const file = this.#file(`logs/${name}`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const who = this.#identity();
    const line = `${oldId ?? ZERO_ID} ${newId} ${formatSignature(who)}\t${message.split('\n')[0]}\n`;
    await fs.appendFile(file, line);
  }

  /** Reflog entries, newest first. */
  async log(
    name: string,
  ): Promise<{ oldId: ObjectId; newId: ObjectId; message: string; who: string }[]> {
    let text: string;
    try {
      text = await fs.readFile(this.#file(`logs/${name}`), 'utf8');
    } catch {
      return [];
    }
    const entries = [];
    for (const line of text.split('\n')) {
      const match = /^([0-9a-f]{64}) ([0-9a-f]{64}) ([^\t]*)\t(.*)$/.exec(line);
      if (match)
        entries.push({ oldId: match[1]!, newId: match[2]!, who: match[3]!, message: match[4]! });
    }
    return entries.reverse();
  }

  #identity(): Signature {
    const repo = this.#repo;
    const name = repo.context.authorName ?? String(repo.config('user.name') ?? 'unknown');
    const email = repo.context.authorEmail ?? String(repo.config('user.email') ?? 'unknown');
    return signatureAt(name, email, repo.now());
  }
}

async function acquire(file: string, name: string): Promise<LockFile> {
  try {
    return await LockFile.acquire(file);
  } catch (error) {
    if (hasErrnoCode(error, 'EEXIST')) {
      throw new MediaGitError(
        'REF_LOCKED',
        `cannot lock ref '${name}': ${file}.lock exists; another mediagit process may be running (remove the file if it crashed)`,
        { kind: 'conflict', data: { ref: name } },
      );
    }
    throw error;
  }
}
