/**
 * `bisect`: binary search through history for the commit that introduced a
 * change, as Git does. The state lives in the repository folder:
 *
 *   BISECT_START   where HEAD was (a branch name or a commit), for `reset`
 *   BISECT_TERMS   "bad\ngood\n" (custom terms are not supported)
 *   BISECT_BAD     the bad commit; BISECT_GOOD and BISECT_SKIP, one per line
 *   BISECT_LOG     every command, replayable with `bisect replay`
 *
 * The candidates are the commits reachable from the bad one and from no good
 * one. The next commit to test is the candidate that best halves them: the
 * one whose count of candidate ancestors (itself included) is nearest half,
 * as Git's bisection weighs commits; skipped commits are never chosen.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError } from '../errors.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { writeFileAtomic } from '../storage/durable-file.ts';
import { Refs } from './refs.ts';
import type { Repository } from './repository.ts';
import { resolveCommit } from './revision.ts';
import { switchTo } from './switch.ts';
import { readCommit } from './tree-ops.ts';

export type BisectStep =
  | { readonly kind: 'waiting'; readonly needs: 'good' | 'bad' | 'both' }
  | {
      readonly kind: 'testing';
      readonly id: ObjectId;
      readonly left: number;
      readonly steps: number;
    }
  | { readonly kind: 'found'; readonly id: ObjectId }
  | { readonly kind: 'only-skipped'; readonly ids: readonly ObjectId[] };

interface State {
  readonly start: string;
  readonly bad: ObjectId | undefined;
  readonly good: readonly ObjectId[];
  readonly skip: readonly ObjectId[];
}

const file = (repo: Repository, name: string): string => path.join(repo.gitDir, name);

async function readText(repo: Repository, name: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file(repo, name), 'utf8');
  } catch {
    return undefined;
  }
}

async function writeText(repo: Repository, name: string, text: string): Promise<void> {
  await writeFileAtomic(file(repo, name), [Buffer.from(text)], { tmpDir: repo.objects.tmpDir });
}

const lines = (text: string | undefined): string[] =>
  (text ?? '').split('\n').filter((line) => line !== '');

async function readState(repo: Repository): Promise<State | undefined> {
  const start = (await readText(repo, 'BISECT_START'))?.trim();
  if (start === undefined) return undefined;
  return {
    start,
    bad: lines(await readText(repo, 'BISECT_BAD'))[0],
    good: lines(await readText(repo, 'BISECT_GOOD')),
    skip: lines(await readText(repo, 'BISECT_SKIP')),
  };
}

async function requireState(repo: Repository): Promise<State> {
  const state = await readState(repo);
  if (!state) {
    throw new MediaGitError('NOT_BISECTING', 'You need to start by "mediagit bisect start"', {
      kind: 'conflict',
    });
  }
  return state;
}

async function log(repo: Repository, line: string): Promise<void> {
  await writeText(repo, 'BISECT_LOG', `${(await readText(repo, 'BISECT_LOG')) ?? ''}${line}\n`);
}

/** `bisect start [<bad> [<good>...]]`. */
export async function bisectStart(
  repo: Repository,
  bad: string | undefined,
  good: readonly string[],
): Promise<BisectStep> {
  repo.requireWorkTree('bisect');
  if (await readState(repo)) await bisectReset(repo);
  const head = await new Refs(repo).head();
  const start = head.branch?.replace(/^refs\/heads\//, '') ?? head.id;
  if (start === undefined) {
    throw new MediaGitError('UNBORN_HEAD', 'bisect needs at least one commit', {
      kind: 'conflict',
    });
  }
  const badId = bad === undefined ? undefined : await resolveCommit(repo, bad);
  const goodIds = await Promise.all(good.map((rev) => resolveCommit(repo, rev)));
  await writeText(repo, 'BISECT_TERMS', 'bad\ngood\n');
  await writeText(repo, 'BISECT_LOG', '');
  await writeText(repo, 'BISECT_START', `${start}\n`);
  await log(
    repo,
    `mediagit bisect start${bad ? ` ${badId}` : ''}${goodIds.map((g) => ` ${g}`).join('')}`,
  );
  if (badId) await writeText(repo, 'BISECT_BAD', `${badId}\n`);
  if (goodIds.length > 0)
    await writeText(repo, 'BISECT_GOOD', goodIds.map((g) => `${g}\n`).join(''));
  return next(repo);
}

/** `bisect good|bad|skip [<rev>...]` (HEAD when no revision is given). */
export async function bisectMark(
  repo: Repository,
  term: 'good' | 'bad' | 'skip',
  revs: readonly string[],
): Promise<BisectStep> {
  const state = await requireState(repo);
  const ids = await Promise.all(
    (revs.length > 0 ? revs : ['HEAD']).map((rev) => resolveCommit(repo, rev)),
  );
  if (term === 'bad') {
    if (ids.length > 1)
      throw new MediaGitError('BISECT_USAGE', "'bisect bad' takes one revision", { kind: 'usage' });
    await writeText(repo, 'BISECT_BAD', `${ids[0]}\n`);
  } else {
    const listed = term === 'good' ? state.good : state.skip;
    const merged = [...new Set([...listed, ...ids])];
    await writeText(
      repo,
      term === 'good' ? 'BISECT_GOOD' : 'BISECT_SKIP',
      merged.map((id) => `${id}\n`).join(''),
    );
  }
  for (const id of ids) await log(repo, `mediagit bisect ${term} ${id}`);
  return next(repo);
}

/** `bisect reset`: back to where `start` found HEAD; the state is removed. */
export async function bisectReset(repo: Repository): Promise<void> {
  const state = await readState(repo);
  if (!state) return;
  const isBranch = (await new Refs(repo).read(`refs/heads/${state.start}`)) !== undefined;
  await switchTo(
    repo,
    isBranch ? { kind: 'branch', name: state.start } : { kind: 'detach', rev: state.start },
    {
      reportLocalChanges: false,
    },
  );
  for (const name of [
    'BISECT_START',
    'BISECT_TERMS',
    'BISECT_BAD',
    'BISECT_GOOD',
    'BISECT_SKIP',
    'BISECT_LOG',
  ]) {
    await fs.rm(file(repo, name), { force: true });
  }
}

export async function bisectLog(repo: Repository): Promise<string> {
  await requireState(repo);
  return (await readText(repo, 'BISECT_LOG')) ?? '';
}

/** Picks the next commit to test and checks it out, or reports the result. */
async function next(repo: Repository): Promise<BisectStep> {
  const state = await requireState(repo);
  if (state.bad === undefined || state.good.length === 0) {
    return {
      kind: 'waiting',
      needs:
        state.bad === undefined && state.good.length === 0
          ? 'both'
          : state.bad === undefined
            ? 'bad'
            : 'good',
    };
  }
  const parentsOf = new Map<ObjectId, readonly ObjectId[]>();
  const parents = async (id: ObjectId): Promise<readonly ObjectId[]> => {
    let known = parentsOf.get(id);
    if (!known) {
      known = (await readCommit(repo.objects, id)).parents;
      parentsOf.set(id, known);
    }
    return known;
  };
  const reach = async (
    from: readonly ObjectId[],
    stop: ReadonlySet<ObjectId>,
  ): Promise<Set<ObjectId>> => {
    const seen = new Set<ObjectId>();
    const stack = from.filter((id) => !stop.has(id));
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      for (const parent of await parents(id))
        if (!seen.has(parent) && !stop.has(parent)) stack.push(parent);
    }
    return seen;
  };
  const goodAncestors = await reach(state.good, new Set());
  const candidates = await reach([state.bad], goodAncestors);
  const skipped = new Set(state.skip);
  const testable = [...candidates].filter((id) => id !== state.bad && !skipped.has(id));
  if (testable.length === 0) {
    const unknown = [...candidates].filter((id) => id !== state.bad);
    if (unknown.length === 0) return { kind: 'found', id: state.bad };
    return { kind: 'only-skipped', ids: [state.bad, ...unknown] };
  }
  // Weight: how many candidates each commit contains (itself included).
  const total = candidates.size;
  let best: { id: ObjectId; score: number } | undefined;
  for (const id of testable.sort()) {
    const weight = (await reach([id], goodAncestors)).size;
    const score = Math.min(weight, total - weight);
    if (!best || score > best.score) best = { id, score };
  }
  const chosen = best!.id;
  await switchTo(repo, { kind: 'detach', rev: chosen }, { reportLocalChanges: false });
  const left = Math.floor((total - 1) / 2);
  return { kind: 'testing', id: chosen, left, steps: Math.max(0, Math.ceil(Math.log2(left + 1))) };
}

/** Reads a `bisect log` and replays its marks from a fresh start. */
export async function bisectReplay(repo: Repository, text: string): Promise<BisectStep> {
  let step: BisectStep | undefined;
  for (const line of lines(text)) {
    const match = /^(?:mediagit|git) bisect (start|good|bad|skip)((?: [0-9a-f]+)*)\s*$/.exec(
      line.trim(),
    );
    if (!match) continue;
    const args = match[2]!
      .trim()
      .split(' ')
      .filter((a) => a !== '');
    if (match[1] === 'start') step = await bisectStart(repo, args[0], args.slice(1));
    else step = await bisectMark(repo, match[1] as 'good' | 'bad' | 'skip', args);
  }
  if (!step)
    throw new MediaGitError('BISECT_REPLAY', 'no bisect commands in the log', { kind: 'usage' });
  return step;
}
