// Foundation benchmark: what MediaGit costs on one large incompressible file and on a tree of
// small files, each figure put next to a baseline measured in the same run on the same machine.
// See bench/README.md for what each figure means and how to read it.
//
// Run with `npm run bench` (builds first), or `node bench/foundation.ts [--quick] [--size N]`
// with Node >= 24. Progress goes to stderr; stdout carries the table and, as its last line, one
// JSON object with every number.
//
// Contracts:
// - Every writer whose output should be durable is timed up to a trailing `sync`, and a `sync`
//   runs untimed before each timed step, so no step pays for the previous step's dirty pages.
//   MediaGit fsyncs its own writes; the trailing sync after it is reported on its own line so a
//   near-zero figure confirms that it left nothing behind.
// - The random source file is cached in bench-work/ (git-ignored) and reused when its size
//   matches; everything else lives in bench-work/run/ and is removed at the end.
// - A MediaGit failure does not stop the run: the baselines are still measured, the failure is
//   printed and recorded, and the process exits 1.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CommandFailed,
  GiB,
  MiB,
  cliPath,
  configureRunner,
  ensureSource,
  formatBytes,
  formatRatio,
  formatSeconds,
  freshDir,
  installMissing,
  killRunning,
  makeSecondVersion,
  mediagit,
  median,
  must,
  onPath,
  probeMediaGit,
  progress,
  run,
  sync,
  toolVersion,
  treeBytes,
  workRoot,
  type RunResult,
  type SecondVersion,
  fail,
  deviceLimits,
  formatDeviceLimits,
  sha256OfFile,
  projectRoot,
} from './lib.ts';

const runRoot = path.join(workRoot, 'run');

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  /** Size of the incompressible file for items 1-3. */
  fileBytes: number;
  /** `--size`: run only item 1 (to record peak RSS on a big file). */
  onlyItem1: boolean;
  quick: boolean;
  /** Item 4 tree shape: `smallDirs` directories of `smallFilesPerDir` files. */
  smallDirs: number;
  smallFilesPerDir: number;
  /** Keep bench-work/run/ for inspection instead of removing it. */
  keep: boolean;
  /** `--status`: run only item 4 (status, --version). */
  onlyStatus: boolean;
}

const usage = `usage: node bench/foundation.ts [--quick] [--size <bytes>] [--status] [--keep]
  --quick         smoke run: 64 MiB file, 1,000 small files
  --size <bytes>  only item 1 (add + commit, peak RSS) on a file of this size, e.g. --size 6e9
  --status        only item 4 (status on small files, --version)
  --keep          keep bench-work/run/ afterwards`;

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    fileBytes: GiB,
    onlyItem1: false,
    quick: false,
    smallDirs: 100,
    smallFilesPerDir: 100,
    keep: false,
    onlyStatus: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split('=', 2) : [arg];
    if (flag === '--quick') {
      options.quick = true;
      if (!options.onlyItem1) options.fileBytes = 64 * MiB;
      options.smallDirs = 10;
    } else if (flag === '--size') {
      const text = inline ?? argv[++i];
      const bytes = Math.round(Number(text));
      if (text === undefined || !Number.isFinite(bytes) || bytes < 16 * MiB) {
        fail(`--size needs a byte count of at least 16 MiB (got ${String(text)})\n${usage}`);
      }
      options.fileBytes = bytes;
      options.onlyItem1 = true;
    } else if (flag === '--status') {
      options.onlyStatus = true;
    } else if (flag === '--keep') {
      options.keep = true;
    } else if (flag === '--help' || flag === '-h') {
      console.log(usage);
      process.exit(0);
    } else {
      fail(`unknown argument ${arg}\n${usage}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Tools

interface Tools {
  git: boolean;
  gitLfs: boolean;
  borg: boolean;
  /** GNU time, for peak RSS; null means RSS is polled from /proc instead. */
  gnuTime: string | null;
  versions: Record<string, string>;
}

/** Finds the baseline tools and, as root, installs the missing ones from Debian's packages. */
function ensureTools(): Tools {
  installMissing([
    { command: 'git', pkg: 'git' },
    { command: 'git-lfs', pkg: 'git-lfs' },
    { command: 'borg', pkg: 'borgbackup' },
    { command: '/usr/bin/time', pkg: 'time' },
  ]);
  const tools: Tools = {
    git: onPath('git') !== null,
    gitLfs: onPath('git') !== null && onPath('git-lfs') !== null,
    borg: onPath('borg') !== null,
    gnuTime: onPath('/usr/bin/time'),
    versions: {},
  };
  if (tools.git) tools.versions['git'] = toolVersion('git', ['--version']);
  if (tools.gitLfs) tools.versions['gitLfs'] = toolVersion('git-lfs', ['version']);
  if (tools.borg) tools.versions['borg'] = toolVersion('borg', ['--version']);
  return tools;
}

// ---------------------------------------------------------------------------------------------
// Running commands

let tools: Tools;

const gitConfig = [
  '-c',
  'user.name=bench',
  '-c',
  'user.email=bench@example.com',
  '-c',
  'commit.gpgsign=false',
  '-c',
  'tag.gpgsign=false',
];

function git(args: readonly string[], cwd: string, timeoutSeconds?: number): Promise<RunResult> {
  return must(`git ${args[0] ?? ''}`, 'git', [...gitConfig, ...args], cwd, timeoutSeconds);
}

function borg(args: readonly string[], cwd: string, timeoutSeconds?: number): Promise<RunResult> {
  return must(`borg ${args[0] ?? ''}`, 'borg', args, cwd, timeoutSeconds);
}

// ---------------------------------------------------------------------------------------------
// Files

/** Writes `dirs` x `perDir` files of about 100 bytes each; the same content every call. */
function writeSmallTree(root: string, dirs: number, perDir: number): number {
  let count = 0;
  for (let d = 0; d < dirs; d++) {
    const dir = path.join(root, `dir-${String(d).padStart(3, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir; f++) {
      const name = `file-${String(f).padStart(3, '0')}.txt`;
      const line = `dir ${d} file ${f} `;
      const body = `${line}${createHash('sha256').update(line).digest('hex')}`.slice(0, 99);
      fs.writeFileSync(path.join(dir, name), `${body}\n`);
      count++;
    }
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// Report

type Figure = number | null;

interface Row {
  item: number;
  label: string;
  value: string;
  note: string;
}

/** Collects figures for the table (grouped by item) and the closing JSON line. */
class Report {
  readonly figures: Record<string, Figure> = {};
  readonly errors: string[] = [];
  readonly notes: string[] = [];
  private readonly rows: Row[] = [];
  private readonly titles = new Map<number, string>();

  title(item: number, text: string): void {
    this.titles.set(item, text);
  }

  seconds(item: number, key: string, label: string, value: Figure, note = ''): void {
    this.add(item, key, label, value, value === null ? 'n/a' : formatSeconds(value), note);
  }

  bytes(item: number, key: string, label: string, value: Figure, note = ''): void {
    this.add(item, key, label, value, value === null ? 'n/a' : formatBytes(value), note);
  }

  percent(item: number, key: string, label: string, value: Figure, note = ''): void {
    this.add(item, key, label, value, value === null ? 'n/a' : `${value.toFixed(2)} %`, note);
  }

  /** Records numerator / denominator; "> 1x" means MediaGit is slower or bigger. */
  ratio(item: number, key: string, label: string, numerator: Figure, denominator: Figure): void {
    const value =
      numerator === null || denominator === null || denominator === 0
        ? null
        : numerator / denominator;
    this.add(item, key, `  ${label}`, value, value === null ? 'n/a' : formatRatio(value), '');
  }

  skipped(item: number, label: string, reason: string): void {
    this.rows.push({ item, label, value: 'skipped', note: reason });
  }

  error(message: string): void {
    progress(`ERROR ${message}`);
    this.errors.push(message);
  }

  private add(item: number, key: string, label: string, value: Figure, text: string, note: string) {
    this.figures[key] = value === null ? null : Number(value.toPrecision(6));
    this.rows.push({ item, label, value: text, note });
  }

  table(): string {
    const labelWidth = Math.max(...this.rows.map((row) => row.label.length), 20) + 2;
    const valueWidth = Math.max(...this.rows.map((row) => row.value.length), 8) + 2;
    const lines: string[] = [];
    for (const item of [...this.titles.keys()].sort((a, b) => a - b)) {
      const rows = this.rows.filter((row) => row.item === item);
      if (rows.length === 0) continue;
      lines.push('', `${item}. ${this.titles.get(item) ?? ''}`);
      for (const row of rows) {
        lines.push(
          `   ${row.label.padEnd(labelWidth)}${row.value.padStart(valueWidth)}  ${row.note}`.trimEnd(),
        );
      }
    }
    return lines.join('\n');
  }
}

/** Runs one tool's part of an item; a failure is recorded and the run goes on. */
async function attempt(report: Report, what: string, body: () => Promise<void>): Promise<boolean> {
  try {
    await body();
    return true;
  } catch (error) {
    report.error(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}

/** Items 1-3: add + commit, second version and checkout of one big file, against cp, borg and git-lfs. */
async function measureBigFile(
  report: Report,
  options: Options,
  mediagitProblem: string | null,
): Promise<{ source: string; second: SecondVersion | null }> {
  const fileBytes = options.fileBytes;
  const size = formatBytes(fileBytes);
  report.title(1, `add + commit of a ${size} incompressible file (time up to a trailing sync)`);
  const source = ensureSource(fileBytes);
  let second: SecondVersion | null = null;
  if (!options.onlyItem1) {
    report.title(
      2,
      `second version (+4 KiB inserted at 300/1024, 64 KiB overwritten at 700/1024): add + commit`,
    );
    report.title(3, `checkout of the second version into a tree without it`);
    progress('writing the second version');
    second = makeSecondVersion(source, path.join(runRoot, 'second.bin'), fileBytes);
  }
  // Scale timeouts with the file: ~60 s per GiB is far beyond any tool measured here.
  const ctx: BigFileContext = {
    report,
    options,
    source,
    second,
    timeout: Math.max(300, Math.ceil((fileBytes / GiB) * 60)),
  };

  progress('item 1: cp + sync');
  const copy = await measureCopy(ctx, source, 'item1.copy.seconds', 1);
  let copySecond: Figure = null;
  if (second !== null) {
    progress('item 3: cp + sync of the second version');
    copySecond = await measureCopy(ctx, second.file, 'item3.copy.seconds', 3);
  }
  progress('items 1-2: borg');
  const borgFigures = await measureBorg(ctx);
  progress('items 1-3: git-lfs');
  const gitLfsFigures = await measureGitLfs(ctx);
  if (mediagitProblem === null) {
    progress('items 1-3: mediagit');
    await measureMediaGit(ctx, { copy, borg: borgFigures, gitLfs: gitLfsFigures, copySecond });
  } else {
    report.skipped(1, 'mediagit add + commit', 'MediaGit CLI unusable, see errors');
  }
  return { source, second };
}

// ---------------------------------------------------------------------------------------------
// The measurements

interface BigFileContext {
  report: Report;
  options: Options;
  source: string;
  second: SecondVersion | null;
  timeout: number;
}

/** Item 1 and 3 floor: copying the bytes once, durably. */
async function measureCopy(ctx: BigFileContext, file: string, key: string, item: number) {
  const target = path.join(runRoot, 'cp-target.bin');
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    fs.rmSync(target, { force: true });
    await sync();
    const copy = await must('cp', 'cp', [file, target], runRoot, ctx.timeout);
    times.push(copy.seconds + (await sync()));
  }
  fs.rmSync(target, { force: true });
  const value = median(times);
  ctx.report.seconds(
    item,
    key,
    'cp + sync',
    value,
    'median of 3; the floor for writing the bytes once',
  );
  return value;
}

interface BaselineFigures {
  commitSeconds: Figure;
  secondCommitSeconds: Figure;
  growthBytes: Figure;
  checkoutSeconds: Figure;
}

async function measureBorg(ctx: BigFileContext): Promise<BaselineFigures> {
  const figures: BaselineFigures = {
    commitSeconds: null,
    secondCommitSeconds: null,
    growthBytes: null,
    checkoutSeconds: null,
  };
  const { report } = ctx;
  if (!tools.borg) {
    report.skipped(1, 'borg create --compression none + sync', 'borg is not installed');
    return figures;
  }
  const repo = path.join(runRoot, 'borg-repo');
  const tree = freshDir(path.join(runRoot, 'borg-tree'));
  const working = path.join(tree, 'big.bin');
  await attempt(report, 'borg baseline', async () => {
    await borg(['init', '--encryption=none', repo], runRoot);
    // borg only reads its input, so a hard link spares a copy of the file.
    fs.linkSync(ctx.source, working);
    const create = async (archive: string): Promise<number> => {
      await sync();
      const args = ['create', '--compression', 'none', `${repo}::${archive}`, 'big.bin'];
      const result = await borg(args, tree, ctx.timeout);
      return result.seconds + (await sync());
    };
    figures.commitSeconds = await create('v1');
    report.seconds(
      1,
      'item1.borg.seconds',
      'borg create --compression none + sync',
      figures.commitSeconds,
    );
    const before = treeBytes(repo);
    report.bytes(1, 'item1.borg.repoBytes', 'borg repository size after v1', before);
    if (ctx.second !== null) {
      fs.rmSync(working);
      fs.linkSync(ctx.second.file, working);
      figures.secondCommitSeconds = await create('v2');
      figures.growthBytes = treeBytes(repo) - before;
      report.seconds(
        2,
        'item2.borg.seconds',
        'borg create of v2 + sync',
        figures.secondCommitSeconds,
      );
      reportGrowth(ctx, 'borg', 'borg repository', figures.growthBytes);
    }
  });
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(tree, { recursive: true, force: true });
  return figures;
}

async function measureGitLfs(ctx: BigFileContext): Promise<BaselineFigures> {
  const figures: BaselineFigures = {
    commitSeconds: null,
    secondCommitSeconds: null,
    growthBytes: null,
    checkoutSeconds: null,
  };
  const { report } = ctx;
  if (!tools.gitLfs) {
    report.skipped(1, 'git-lfs: git add + git commit + sync', 'git or git-lfs is not installed');
    return figures;
  }
  const repo = freshDir(path.join(runRoot, 'git-lfs'));
  const working = path.join(repo, 'big.bin');
  const gitDir = path.join(repo, '.git');
  await attempt(report, 'git-lfs baseline', async () => {
    await git(['init', '-q'], repo);
    await git(['lfs', 'install', '--local'], repo);
    await git(['lfs', 'track', '*.bin'], repo);
    await git(['add', '.gitattributes'], repo);
    await git(['commit', '-q', '-m', 'track *.bin with lfs'], repo);
    const commit = async (file: string, message: string): Promise<[number, RunResult]> => {
      await must('cp', 'cp', [file, working], repo, ctx.timeout);
      await sync();
      const add = await git(['add', 'big.bin'], repo, ctx.timeout);
      const done = await git(['commit', '-q', '-m', message], repo, ctx.timeout);
      return [add.seconds + done.seconds + (await sync()), add];
    };
    const [seconds, add] = await commit(ctx.source, 'v1');
    figures.commitSeconds = seconds;
    report.seconds(1, 'item1.gitLfs.seconds', 'git-lfs: git add + git commit + sync', seconds);
    report.bytes(1, 'item1.gitLfs.addPeakRssBytes', '  git-lfs add peak RSS', add.peakRssBytes);
    const before = treeBytes(gitDir);
    report.bytes(1, 'item1.gitLfs.repoBytes', 'git-lfs .git size after v1', before);
    if (ctx.second === null) return;
    const [secondSeconds] = await commit(ctx.second.file, 'v2');
    figures.secondCommitSeconds = secondSeconds;
    figures.growthBytes = treeBytes(gitDir) - before;
    report.seconds(2, 'item2.gitLfs.seconds', 'git-lfs: add + commit of v2 + sync', secondSeconds);
    reportGrowth(ctx, 'gitLfs', 'git-lfs .git', figures.growthBytes);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      fs.rmSync(working);
      await sync();
      const checkout = await git(['checkout', 'HEAD', '--', 'big.bin'], repo, ctx.timeout);
      times.push(checkout.seconds + (await sync()));
      if (fs.statSync(working).size !== ctx.second.bytes) {
        throw new Error('git checkout wrote a file of the wrong size');
      }
    }
    figures.checkoutSeconds = median(times);
    report.seconds(
      3,
      'item3.gitLfs.seconds',
      'git-lfs: git checkout HEAD -- big.bin + sync',
      figures.checkoutSeconds,
      'median of 3',
    );
  });
  fs.rmSync(repo, { recursive: true, force: true });
  return figures;
}

function reportGrowth(ctx: BigFileContext, key: string, label: string, growth: number): void {
  const fileBytes = ctx.second?.bytes ?? ctx.options.fileBytes;
  ctx.report.bytes(2, `item2.${key}.growthBytes`, `${label} grew by`, growth);
  ctx.report.percent(
    2,
    `item2.${key}.growthPercent`,
    `${label} growth, % of file size`,
    (100 * growth) / fileBytes,
  );
}

async function measureMediaGit(
  ctx: BigFileContext,
  baselines: { copy: number; borg: BaselineFigures; gitLfs: BaselineFigures; copySecond: Figure },
): Promise<void> {
  const { report } = ctx;
  const repo = freshDir(path.join(runRoot, 'mediagit'));
  const working = path.join(repo, 'big.bin');
  const store = path.join(repo, '.mediagit');
  let commitSeconds: Figure = null;
  let secondSeconds: Figure = null;
  let growth: Figure = null;
  let checkoutSeconds: Figure = null;

  const commit = async (file: string, message: string, item: number, key: string) => {
    await must('cp', 'cp', [file, working], repo, ctx.timeout);
    await sync();
    const add = await mediagit(['add', 'big.bin'], repo, ctx.timeout);
    const done = await mediagit(['commit', '-m', message], repo, ctx.timeout);
    const trailing = await sync();
    const what = item === 1 ? '' : ' v2';
    report.seconds(item, `${key}.addSeconds`, `mediagit add${what}`, add.seconds);
    report.bytes(
      item,
      `${key}.addPeakRssBytes`,
      `  mediagit add${what} peak RSS`,
      add.peakRssBytes,
    );
    report.seconds(item, `${key}.commitSeconds`, `mediagit commit${what}`, done.seconds);
    report.bytes(
      item,
      `${key}.commitPeakRssBytes`,
      `  mediagit commit${what} peak RSS`,
      done.peakRssBytes,
    );
    report.seconds(
      item,
      `${key}.trailingSyncSeconds`,
      `  sync after mediagit commit${what}`,
      trailing,
      'near 0 means MediaGit fsynced its writes',
    );
    const total = add.seconds + done.seconds + trailing;
    report.seconds(item, `${key}.seconds`, `mediagit add + commit${what} + sync`, total);
    return total;
  };

  const ok = await attempt(report, 'mediagit (items 1-3)', async () => {
    await mediagit(['init'], repo);
    commitSeconds = await commit(ctx.source, 'v1', 1, 'item1.mediagit');
    report.ratio(
      1,
      'item1.ratio.mediagitToCopy',
      'mediagit / cp + sync',
      commitSeconds,
      baselines.copy,
    );
    report.ratio(
      1,
      'item1.ratio.mediagitToGitLfs',
      'mediagit / git-lfs',
      commitSeconds,
      baselines.gitLfs.commitSeconds,
    );
    report.ratio(
      1,
      'item1.ratio.mediagitToBorg',
      'mediagit / borg',
      commitSeconds,
      baselines.borg.commitSeconds,
    );
    const before = fs.existsSync(store) ? treeBytes(store) : null;
    report.bytes(1, 'item1.mediagit.repoBytes', 'mediagit .mediagit size after v1', before);
    if (ctx.second === null) return;

    const status = await mediagit(['status'], repo, ctx.timeout);
    report.seconds(
      4,
      'item4.mediagit.bigFileStatusSeconds',
      'mediagit status, one unchanged big file',
      status.seconds,
      'single run, after v1',
    );

    secondSeconds = await commit(ctx.second.file, 'v2', 2, 'item2.mediagit');
    report.ratio(
      2,
      'item2.ratio.mediagitToGitLfsTime',
      'mediagit / git-lfs (time, v2)',
      secondSeconds,
      baselines.gitLfs.secondCommitSeconds,
    );
    if (before !== null) {
      growth = treeBytes(store) - before;
      reportGrowth(ctx, 'mediagit', 'mediagit .mediagit', growth);
      report.ratio(
        2,
        'item2.ratio.mediagitToGitLfsGrowth',
        'mediagit / git-lfs (growth)',
        growth,
        baselines.gitLfs.growthBytes,
      );
      report.ratio(
        2,
        'item2.ratio.mediagitToBorgGrowth',
        'mediagit / borg (growth)',
        growth,
        baselines.borg.growthBytes,
      );
    } else {
      report.error('mediagit: no .mediagit directory after init; repository growth not measured');
    }

    const times: number[] = [];
    // Git semantics give two verbs for this; checkout is tried first and restore if it fails.
    let verb = ['checkout', 'HEAD', '--'];
    for (let i = 0; i < 3; i++) {
      fs.rmSync(working);
      await sync();
      let result = await run(process.execPath, [cliPath, ...verb, 'big.bin'], repo, ctx.timeout);
      let checkoutFailure = '';
      if (result.status !== 0 && i === 0) {
        checkoutFailure = `${new CommandFailed('mediagit checkout HEAD -- big.bin', result).message}; `;
        progress(`${checkoutFailure}trying restore`);
        verb = ['restore'];
        result = await run(process.execPath, [cliPath, ...verb, 'big.bin'], repo, ctx.timeout);
      }
      if (result.status !== 0) {
        const failure = new CommandFailed(`mediagit ${verb.join(' ')} big.bin`, result);
        throw new Error(`${checkoutFailure}${failure.message}`);
      }
      times.push(result.seconds + (await sync()));
      const digest = sha256OfFile(working);
      if (digest !== ctx.second.sha256) {
        throw new Error(
          `mediagit ${verb.join(' ')} big.bin wrote different bytes (sha256 ${digest})`,
        );
      }
    }
    checkoutSeconds = median(times);
    report.seconds(
      3,
      'item3.mediagit.seconds',
      `mediagit ${verb.join(' ')} big.bin + sync`,
      checkoutSeconds,
      'median of 3; bytes verified',
    );
    report.ratio(
      3,
      'item3.ratio.mediagitToCopy',
      'mediagit / cp + sync',
      checkoutSeconds,
      baselines.copySecond,
    );
    report.ratio(
      3,
      'item3.ratio.mediagitToGitLfs',
      'mediagit / git-lfs checkout',
      checkoutSeconds,
      baselines.gitLfs.checkoutSeconds,
    );
  });
  if (!ok) {
    if (commitSeconds === null)
      report.skipped(1, 'mediagit add + commit', 'MediaGit failed, see errors');
    if (ctx.second !== null && secondSeconds === null)
      report.skipped(2, 'mediagit v2', 'MediaGit failed, see errors');
    if (ctx.second !== null && checkoutSeconds === null)
      report.skipped(3, 'mediagit checkout', 'MediaGit failed, see errors');
  }
  fs.rmSync(repo, { recursive: true, force: true });
}

/**
 * Item 4: status on a tree of small unchanged files, MediaGit against plain git.
 * Both repositories exist side by side and their status runs alternate, so
 * machine noise hits both alike. MediaGit is measured twice: walking the tree
 * itself, and answered by its fsmonitor daemon (`core.fsmonitor = true`).
 */
async function measureSmallFiles(
  report: Report,
  options: Options,
  mediagitUsable: boolean,
): Promise<void> {
  const count = options.smallDirs * options.smallFilesPerDir;
  report.title(4, `status on ${count.toLocaleString('en-US')} unchanged small files (~100 B each)`);
  const repeats = 9;
  /** Alternates the two commands after a warm-up of each; returns their medians. */
  const alternate = async (
    labels: [string, string],
    first: () => Promise<RunResult>,
    second: () => Promise<RunResult>,
  ): Promise<[number, number]> => {
    await first();
    await second();
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < repeats; i++) {
      a.push((await first()).seconds);
      b.push((await second()).seconds);
    }
    progress(`${labels[0]}: ${a.map((t) => t.toFixed(3)).join(', ')} s`);
    progress(`${labels[1]}: ${b.map((t) => t.toFixed(3)).join(', ')} s`);
    return [median(a), median(b)];
  };

  if (!tools.git) {
    report.skipped(4, 'git status', 'git is not installed');
    return;
  }
  if (!mediagitUsable) {
    report.skipped(4, 'mediagit status', 'MediaGit CLI unusable, see errors');
    return;
  }
  const gitRepo = freshDir(path.join(runRoot, 'git-small'));
  const repo = freshDir(path.join(runRoot, 'mediagit-small'));
  await attempt(report, 'status on small files', async () => {
    writeSmallTree(gitRepo, options.smallDirs, options.smallFilesPerDir);
    await git(['init', '-q'], gitRepo);
    await sync();
    const gitAdd = await git(['add', '-A'], gitRepo);
    const gitCommitRun = await git(['commit', '-q', '-m', 'small files'], gitRepo);
    const gitCommit = gitAdd.seconds + gitCommitRun.seconds + (await sync());
    const porcelain = await git(['status', '--porcelain'], gitRepo);
    if (porcelain.stdout.trim() !== '') throw new Error('git status is not clean after commit');
    report.seconds(4, 'item4.git.addCommitSeconds', 'git add -A + commit + sync', gitCommit);

    writeSmallTree(repo, options.smallDirs, options.smallFilesPerDir);
    await mediagit(['init'], repo);
    await sync();
    const add = await mediagit(['add', '.'], repo);
    const commit = await mediagit(['commit', '-m', 'small files'], repo);
    const total = add.seconds + commit.seconds + (await sync());
    report.seconds(4, 'item4.mediagit.addCommitSeconds', 'mediagit add . + commit + sync', total);
    report.ratio(
      4,
      'item4.ratio.addCommitToGit',
      'mediagit / git (add + commit)',
      total,
      gitCommit,
    );

    // Status runs through the installed command (package.json "bin":
    // bin/mediagit, a shell launcher next to the CLI entry), as users run it.
    const launcher = path.join(path.dirname(cliPath), 'mediagit');
    let lines = 0;
    const mediagitStatus = async (): Promise<RunResult> => {
      const result = await run(launcher, ['status'], repo);
      if (result.status !== 0) {
        throw new Error(`${launcher} status: exit ${result.status}, ${result.stderr.trim()}`);
      }
      lines = Math.max(lines, result.stdout.split('\n').filter(Boolean).length);
      return result;
    };
    const gitStatusRun = (): Promise<RunResult> => git(['status'], gitRepo);
    const [gitStatus, direct] = await alternate(
      ['git status', 'mediagit status (walk)'],
      gitStatusRun,
      mediagitStatus,
    );
    report.seconds(4, 'item4.git.statusSeconds', 'git status', gitStatus, `median of ${repeats}`);
    report.seconds(
      4,
      'item4.mediagit.statusSeconds',
      'mediagit status (walks the tree)',
      direct,
      `median of ${repeats}, alternating with git status`,
    );
    report.ratio(4, 'item4.ratio.statusToGit', 'mediagit / git (status, walk)', direct, gitStatus);
    // The floor of any status on Node, without the CLI (bench/status-floor.mjs):
    // start, read the index, lstat each tracked file, list each folder.
    const floorScript = path.join(projectRoot, 'bench', 'status-floor.mjs');
    const [gitStatus3, floor] = await alternate(
      ['git status', 'status floor on Node'],
      gitStatusRun,
      async () => {
        const result = await run(process.execPath, [floorScript], repo);
        if (result.status !== 0 || !result.stdout.startsWith(`${count} tracked, 0 changed`)) {
          throw new Error(
            `status-floor.mjs: exit ${result.status}, ${result.stdout}${result.stderr}`,
          );
        }
        return result;
      },
    );
    report.seconds(
      4,
      'item4.node.statusFloorSeconds',
      'floor: bare Node reads the index, lstat + readdir',
      floor,
      `median of ${repeats}, alternating with git status (${gitStatus3.toFixed(3)} s)`,
    );
    report.ratio(4, 'item4.ratio.floorToGit', 'floor / git (no CLI, no output)', floor, gitStatus3);

    await mediagit(['config', 'core.fsmonitor', 'true'], repo);
    await mediagit(['fsmonitor', 'start'], repo);
    try {
      // The launcher answers from the daemon without starting Node: with no
      // Node to start, status still works.
      const noNode = await run('env', ['MEDIAGIT_NODE=false', launcher, 'status'], repo);
      if (noNode.status !== 0 || !noNode.stdout.includes('nothing to commit')) {
        throw new Error(`the launcher did not answer status from the daemon: ${noNode.stderr}`);
      }
      const [gitStatus2, daemon] = await alternate(
        ['git status', 'mediagit status (fsmonitor)'],
        gitStatusRun,
        mediagitStatus,
      );
      const answered = await mediagit(['fsmonitor', 'status'], repo);
      if (!answered.stdout.includes('is watching')) throw new Error('the fsmonitor daemon stopped');
      report.seconds(
        4,
        'item4.mediagit.statusFsmonitorSeconds',
        'mediagit status (fsmonitor daemon, answered by bin/mediagit)',
        daemon,
        `median of ${repeats}, alternating with git status (${gitStatus2.toFixed(3)} s)`,
      );
      report.ratio(
        4,
        'item4.ratio.statusFsmonitorToGit',
        'mediagit / git (status, fsmonitor)',
        daemon,
        gitStatus2,
      );
    } finally {
      await mediagit(['fsmonitor', 'stop'], repo);
    }
    // The launcher answers a lone --version itself.
    const [nodeStart, version] = await alternate(
      ['node -e 0', 'mediagit --version'],
      () => run(process.execPath, ['-e', '0'], repo),
      async () => {
        const result = await run(launcher, ['--version'], repo);
        if (result.status !== 0 || !/^\d+\.\d+\.\d+\S*\n$/.test(result.stdout)) {
          throw new Error(`${launcher} --version: exit ${result.status}, ${result.stderr.trim()}`);
        }
        return result;
      },
    );
    const gitVersions: number[] = [];
    for (let i = 0; i < repeats; i++) gitVersions.push((await git(['--version'], repo)).seconds);
    const gitVersion = median(gitVersions);
    report.seconds(
      4,
      'item4.mediagit.versionSeconds',
      'mediagit --version (bin/mediagit)',
      version,
      `median of ${repeats}; goal < 60 ms. Baselines: node -e 0 ${formatSeconds(nodeStart)}, git --version ${formatSeconds(gitVersion)}`,
    );
    report.seconds(4, 'item4.node.startSeconds', 'node -e 0 (a bare Node start)', nodeStart);
    if (lines > 20) {
      report.notes.push(
        `mediagit status printed ${lines} lines on a clean tree: is it reporting changes?`,
      );
    }
  });
  fs.rmSync(gitRepo, { recursive: true, force: true });
  fs.rmSync(repo, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const report = new Report();
  const started = Date.now();
  fs.mkdirSync(workRoot, { recursive: true });
  tools = ensureTools();
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    LC_ALL: 'C',
    MEDIAGIT_AUTHOR_NAME: 'bench',
    MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
    // The baselines run with git's defaults, not whatever the machine's user configured.
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    BORG_BASE_DIR: path.join(runRoot, 'borg-home'),
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
  };
  configureRunner({ gnuTime: tools.gnuTime, env: childEnv });
  process.on('SIGINT', () => {
    killRunning();
    process.exit(130);
  });

  const fileBytes = options.fileBytes;
  const cached = fs.statSync(path.join(workRoot, `source-${fileBytes}.bin`), {
    throwIfNoEntry: false,
  });
  const needed = options.onlyStatus
    ? 0
    : fileBytes * (options.onlyItem1 ? 3 : 5) - (cached?.size === fileBytes ? fileBytes : 0);
  const stats = fs.statfsSync(workRoot);
  const free = stats.bavail * stats.bsize;
  if (free < needed) {
    fail(`needs about ${formatBytes(needed)} free under ${workRoot}, has ${formatBytes(free)}`);
  }

  freshDir(runRoot);
  const mediagitProblem = await probeMediaGit(path.join(runRoot, 'probe'));
  if (mediagitProblem !== null) report.error(mediagitProblem);
  let second: SecondVersion | null = null;
  let source = '';
  if (!options.onlyStatus) {
    ({ source, second } = await measureBigFile(report, options, mediagitProblem));
  }
  if (!options.onlyItem1) {
    progress('item 4: status on small files');
    await measureSmallFiles(report, options, mediagitProblem === null);
  }

  if (second !== null) fs.rmSync(second.file, { force: true });
  if (!options.keep) fs.rmSync(runRoot, { recursive: true, force: true });
  // Only the 1 GiB source is cached.
  if (fileBytes !== GiB && source !== '') fs.rmSync(source, { force: true });

  const elapsed = (Date.now() - started) / 1000;
  const cpus = os.cpus();
  const meta = {
    date: new Date().toISOString(),
    mode: options.onlyStatus
      ? 'status'
      : options.onlyItem1
        ? 'size'
        : options.quick
          ? 'quick'
          : 'full',
    fileBytes,
    secondVersionBytes: second?.bytes ?? null,
    smallFiles: options.onlyItem1 ? null : options.smallDirs * options.smallFilesPerDir,
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? '',
    memoryBytes: os.totalmem(),
    peakRssSource: tools.gnuTime !== null ? 'GNU time %M' : 'polled /proc VmHWM',
    versions: tools.versions,
    device: deviceLimits(workRoot),
    elapsedSeconds: Math.round(elapsed),
  };
  console.log(`MediaGit foundation benchmark (${meta.mode}, ${meta.cpus} CPUs, Node ${meta.node})`);
  console.log(formatDeviceLimits(meta.device));
  console.log('Times are wall-clock seconds; every writer is timed up to a trailing `sync` (cp is');
  console.log(
    'measured as cp + sync). Ratios are MediaGit / baseline from this same run: > 1x means',
  );
  console.log('MediaGit is slower or stores more. Page cache is warm.');
  console.log(report.table());
  for (const note of report.notes) console.log(`\nnote: ${note}`);
  if (report.errors.length > 0) {
    console.log('\nerrors:');
    for (const error of report.errors) console.log(`  - ${error}`);
  }
  console.log(`\ntotal ${elapsed.toFixed(0)} s`);
  console.log(JSON.stringify({ meta, figures: report.figures, errors: report.errors }));
  return report.errors.length > 0 ? 1 : 0;
}

process.exitCode = await main();
