/**
 * `log --graph` against real Git: the same histories (branches, merges,
 * commit times) built in a MediaGit repository and a Git twin, then the
 * graphs compared character for character, commit IDs mapped to subjects.
 *
 * Commit times are pinned, one minute apart, so the order (committer date,
 * then topological) is the same on both sides and from run to run: the
 * MediaGit side commits and merges through the library with a fixed clock,
 * the Git side with GIT_AUTHOR_DATE/GIT_COMMITTER_DATE.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { add } from '../src/repo/add.ts';
import { commit } from '../src/repo/commit.ts';
import { merge } from '../src/repo/merge.ts';
import { Repository } from '../src/repo/repository.ts';
import { switchTo } from '../src/repo/switch.ts';
import { Pair, repoMaker } from './git-twin.ts';

const newRepo = repoMaker();

/** The same history made in both repositories, every commit at its own minute unless told. */
class TwinHistory {
  readonly pair: Pair;
  /** Seconds from one commit to the next: 0 for the same second, negative for a clock running back. */
  step = 60;
  #time = 1_767_225_600; // 2026-01-01
  #subjects: Map<string, string> | undefined;

  private constructor(pair: Pair) {
    this.pair = pair;
  }

  static async create(): Promise<TwinHistory> {
    return new TwinHistory(await Pair.create(newRepo));
  }

  /** A commit adding a file of its own, so merges never conflict. */
  async commit(subject: string, message = subject): Promise<void> {
    await this.pair.writeFile(`${subject.replace(/\W+/g, '-')}.txt`, `${subject}\n`);
    await this.#timed(
      async (repo) => {
        await add(repo, { paths: [], all: true, cwd: this.pair.m.dir });
        await commit(repo, { message, cwd: this.pair.m.dir });
      },
      [
        ['add', '-A'],
        ['commit', '-q', '-m', message],
      ],
    );
  }

  /** A merge commit (never a fast-forward) of one or more revisions into the current branch. */
  async merge(message: string, ...revs: string[]): Promise<void> {
    const [rev, ...more] = revs;
    await this.#timed(
      (repo) => merge(repo, { rev: rev!, more, noFastForward: true, message }),
      [['merge', '-q', '--no-ff', '-m', message, ...revs]],
    );
  }

  async branch(name: string): Promise<void> {
    await switchTo(await this.#repo(), { kind: 'create', name });
    this.#git(['switch', '-q', '-c', name]);
  }

  async switch(name: string): Promise<void> {
    await switchTo(await this.#repo(), { kind: 'branch', name });
    this.#git(['switch', '-q', name]);
  }

  /**
   * Runs each command in both (at the same time: they only read); asserts
   * the outputs match once commit IDs are named by subject; returns ours.
   */
  async same(...commands: (readonly string[])[]): Promise<string[]> {
    const subjects = (this.#subjects ??= await this.#subjectsByIds());
    return Promise.all(
      commands.map(async (args) => {
        const { m, g } = await this.pair.both(args, 0);
        const mine = this.#named(m.out, subjects);
        const git = this.#named(g.out, subjects);
        assert.equal(mine, git, `${args.join(' ')}\nmediagit:\n${m.out}\ngit:\n${g.out}`);
        return mine;
      }),
    );
  }

  /** Every commit's subject by its ID, MediaGit's and Git's. */
  async #subjectsByIds(): Promise<Map<string, string>> {
    const args = ['log', '--all', '--format=%H %s'];
    const { m, g } = await this.pair.both(args, 0);
    const ids = new Map<string, string>();
    for (const line of `${m.out}${g.out}`.split('\n').filter((l) => l !== '')) {
      const space = line.indexOf(' ');
      ids.set(line.slice(0, space), line.slice(space + 1));
    }
    return ids;
  }

  /** Full and abbreviated commit IDs replaced by `<subject>`. */
  #named(text: string, ids: Map<string, string>): string {
    return text.replace(/\b[0-9a-f]{7,64}\b/g, (hex) => {
      for (const [id, subject] of ids) if (id.startsWith(hex)) return `<${subject}>`;
      return hex;
    });
  }

  /** One step on both sides, `step` seconds after the last. */
  async #timed(
    mediagit: (repo: Repository) => Promise<unknown>,
    git: readonly string[][],
  ): Promise<void> {
    this.#time += this.step;
    this.#subjects = undefined;
    await mediagit(await this.#repo());
    const date = new Date(this.#time * 1000);
    // The zone MediaGit records: this process's, as `signatureAt` takes it.
    const offset = -date.getTimezoneOffset();
    const zone = `${offset < 0 ? '-' : '+'}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}${String(Math.abs(offset) % 60).padStart(2, '0')}`;
    const at = `@${this.#time} ${zone}`;
    for (const args of git) this.#git(args, { GIT_AUTHOR_DATE: at, GIT_COMMITTER_DATE: at });
  }

  #repo(): Promise<Repository> {
    const { m } = this.pair;
    return Repository.discover(m.dir, {
      authorName: 'Test Author',
      authorEmail: 'test@example.com',
      now: () => new Date(this.#time * 1000),
    });
  }

  #git(args: readonly string[], env: NodeJS.ProcessEnv = {}): void {
    const result = spawnSync('git', args, {
      cwd: this.pair.g.dir,
      env: { ...this.pair.g.env, ...env },
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, `git ${args.join(' ')}: ${result.stderr}`);
  }
}

/** The four views every history is checked in, plus `more`; returns the `--oneline` graph. */
async function sameGraphs(history: TwinHistory, ...more: (readonly string[])[]): Promise<string> {
  const [oneline] = await history.same(
    ['log', '--graph', '--oneline'],
    ['log', '--graph'],
    ['log', '--graph', '--format=%s'],
    ['log', '--graph', '--all', '--oneline', '--decorate'],
    ...more,
  );
  return oneline!;
}

test('log --graph on a linear history: one column, continuation lines padded as Git pads them', async () => {
  const history = await TwinHistory.create();
  await history.commit('first');
  await history.commit('second', 'second\n\nwith a body\nof two lines');
  await history.commit('third');
  const oneline = await sameGraphs(
    history,
    ['log', '--graph', '--format=format:%h%n%s'],
    ['log', '--graph', '-n', '2'],
  );
  assert.equal(oneline, '* <third> third\n* <second> second\n* <first> first\n');
});

test('log --graph with one merge: the merged branch in its own column, |\\ and |/', async () => {
  const history = await TwinHistory.create();
  await history.commit('base');
  await history.branch('side');
  await history.commit('side one');
  await history.commit('side two');
  await history.switch('main');
  await history.commit('main one');
  await history.merge('merge side', 'side');
  const oneline = await sameGraphs(
    history,
    // -n stops part way down, lines still open; a range leaves out what main had.
    ['log', '--graph', '--oneline', '-n', '3'],
    ['log', '--graph', '--oneline', 'main~1..main'],
  );
  assert.equal(
    oneline,
    [
      '*   <merge side> merge side',
      '|\\  ',
      '| * <side two> side two',
      '| * <side one> side one',
      '* | <main one> main one',
      '|/  ',
      '* <base> base',
      '',
    ].join('\n'),
  );
});

test('log --graph with two interleaved branches merged in turn, and branches not merged yet (--all, several starting points, paths)', async () => {
  const history = await TwinHistory.create();
  await history.commit('base');
  await history.branch('a');
  await history.commit('a one');
  await history.switch('main');
  await history.branch('b');
  await history.commit('b one');
  await history.switch('a');
  await history.commit('a two');
  await history.switch('b');
  await history.commit('b two');
  await history.switch('main');
  await history.commit('main one');
  await history.merge('merge a', 'a');
  await history.merge('merge b', 'b');
  // Two more lines of history that nothing has merged: --all shows them beside main.
  await history.branch('c');
  await history.commit('c one');
  await history.switch('a');
  await history.commit('a three');
  await history.switch('main');
  await history.commit('main two');
  await sameGraphs(
    history,
    ['log', '--graph', '--oneline', 'a', 'c'],
    ['log', '--graph', '--all', '--format=%s', '-n', '4'],
    ['log', '--graph', '--all', '--decorate'],
    ['log', '--all', '--oneline'],
    // Only the commits that touched these files, lines rewritten past the others.
    ['log', '--graph', '--oneline', '--', 'a-one.txt', 'b-two.txt'],
    ['log', '--graph', '--all', '--oneline', '--', 'a-three.txt', 'c-one.txt'],
  );
});

test('log --graph with a criss-cross, a merge of a merge and an octopus', async () => {
  const history = await TwinHistory.create();
  await history.commit('base');
  await history.branch('x');
  await history.commit('x one');
  await history.switch('main');
  await history.branch('y');
  await history.commit('y one');
  // Criss-cross: y takes x one, then x takes y one (not y's merge).
  await history.merge('y takes x', 'x');
  await history.switch('x');
  await history.merge('x takes y one', 'y~1');
  await history.switch('main');
  await history.merge('main takes x', 'x');
  await history.merge('main takes y', 'y');
  // A merge of a merge: topic merges feature, main merges topic.
  await history.branch('feature');
  await history.commit('feature one');
  await history.switch('main');
  await history.branch('topic');
  await history.commit('topic one');
  await history.merge('topic takes feature', 'feature');
  await history.switch('main');
  await history.commit('main one');
  await history.merge('main takes topic', 'topic');
  // An octopus of three branches.
  for (const name of ['o1', 'o2', 'o3']) {
    await history.switch('main');
    await history.branch(name);
    await history.commit(`${name} work`);
  }
  await history.switch('main');
  await history.commit('main two');
  await history.merge('octopus', 'o1', 'o2', 'o3');
  await sameGraphs(history, ['log', '--graph', '--oneline', '--', 'x-one.txt', 'feature-one.txt']);
});

test('log --graph with a branch merged back twice, commits in the same second and a clock that ran back', async () => {
  const history = await TwinHistory.create();
  await history.commit('base');
  await history.branch('topic');
  await history.commit('topic one');
  await history.switch('main');
  await history.commit('main one');
  await history.merge('first merge', 'topic');
  await history.switch('topic');
  await history.commit('topic two');
  history.step = 0; // the same second as topic two
  await history.commit('topic three');
  await history.switch('main');
  history.step = -300; // before its parent
  await history.commit('main two');
  history.step = 600;
  await history.merge('second merge', 'topic');
  await history.commit('main three');
  await sameGraphs(
    history,
    ['log', '--graph', '--oneline', 'topic..main'],
    ['log', '--graph', '--oneline', '--', 'topic-two.txt'],
    // main two is older than --since, so it and all it reaches go; the merge's topic side stays.
    ['log', '--graph', '--oneline', '--since=2026-01-01 00:04:30 +0000'],
    ['log', '--graph', '--oneline', '--grep=two'],
  );
});

test('log --graph refuses what it cannot draw beside, in one line', async () => {
  const history = await TwinHistory.create();
  await history.commit('base');
  for (const option of ['--stat', '--json', '-p']) {
    const refused = await history.pair.m.fails(['log', '--graph', option], 128);
    assert.match(
      refused.stderr,
      /^fatal: options '--graph' and '--(stat|json|patch)' cannot be used together\n$/,
    );
  }
});
