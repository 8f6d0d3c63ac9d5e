/**
 * `mediagit download` against one real `mediagit serve` on loopback: one
 * file of a repository without a clone, at HEAD and at an older revision,
 * to a file and to stdout, byte for byte; only that file's chunks travel;
 * an interrupted download resumes and fetches only what is missing (and
 * fetches again a chunk whose bytes were damaged in between); bad paths,
 * revisions, credentials and an existing output get one line and Git's
 * exit codes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { CLI_PATH, collect, pseudoRandomBytes, TempRepo } from './helpers.ts';
import { createToken, useServerRoot, type ServerProcess } from './server.ts';

const MiB = 1024 * 1024;
const BYTES_SENT = 'mediagit_http_bytes_sent_total';

describe('mediagit download', () => {
  const fixture = useServerRoot('download', ['proj']);
  let server: ServerProcess;
  let url: string;
  let token: string;
  let work: TempRepo;
  let out: string;
  const v1 = pseudoRandomBytes(12 * MiB, 71, 'download v1');
  const v2 = Buffer.concat([pseudoRandomBytes(2 * MiB, 72, 'download v2'), v1]);
  const huge = pseudoRandomBytes(48 * MiB, 73, 'download huge');
  let firstCommit = '';

  before(async () => {
    token = await createToken(fixture.root, 'alice', 'proj', 'write');
    server = await fixture.serve();
    url = server.url('proj');
    work = fixture.track((await TempRepo.create()).withEnv({ MEDIAGIT_TOKEN: token }));
    await fs.mkdir(work.path('art'), { recursive: true });
    await fs.writeFile(work.path('art/shot.bin'), v1);
    await fs.writeFile(work.path('art/notes.txt'), 'small file\n');
    await fs.writeFile(work.path('other.bin'), pseudoRandomBytes(8 * MiB, 74, 'other'));
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'v1']);
    firstCommit = (await work.head()).id!;
    await fs.writeFile(work.path('art/shot.bin'), v2);
    await fs.writeFile(work.path('huge.bin'), huge);
    await work.ok(['add', '-A']);
    await work.ok(['commit', '-q', '-m', 'v2']);
    await work.ok(['tag', 'v2']);
    await work.ok(['remote', 'add', 'origin', url]);
    await work.ok(['push', '-q', 'origin', 'main', '--tags']);
    out = path.join(fixture.outer, 'out');
    await fs.mkdir(out);
  });

  /** Runs the CLI in the output folder with the token; never throws on exit codes. */
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    collect(
      spawn(process.execPath, [CLI_PATH, ...args], {
        cwd: out,
        env: { ...work.env, ...env },
      }),
    );

  test('one file at HEAD, at an older revision and to stdout, byte for byte; only its chunks travel', async () => {
    const before = await server.metric(BYTES_SENT);
    const head = await run(['download', '--json', url, 'art/shot.bin']);
    assert.equal(head.code, 0, head.stderr);
    const sent = (await server.metric(BYTES_SENT)) - before;
    assert.ok((await fs.readFile(path.join(out, 'shot.bin'))).equals(v2), 'HEAD version');
    const report = JSON.parse(head.out) as { size: number; chunks: number; metadataBytes: number };
    assert.equal(report.size, v2.length);
    // The file's bytes (incompressible) and the commit's metadata, nothing of the other files.
    assert.ok(sent >= v2.length, `${sent} bytes sent for a ${v2.length}-byte file`);
    assert.ok(
      sent <= v2.length + report.metadataBytes + 256 * 1024,
      `${sent} bytes sent: more than the file (${v2.length}) and its metadata (${report.metadataBytes})`,
    );
    assert.ok(sent < v2.length + huge.length / 2, 'the 48 MiB file did not travel');

    const old = await run(['download', '--rev', firstCommit, '-o', 'old.bin', url, 'art/shot.bin']);
    assert.equal(old.code, 0, old.stderr);
    assert.ok((await fs.readFile(path.join(out, 'old.bin'))).equals(v1), 'the older version');
    const tagged = await run([
      'download',
      '-q',
      '--rev',
      'v2',
      '-o',
      'tagged.bin',
      url,
      'art/shot.bin',
    ]);
    assert.equal(tagged.code, 0, tagged.stderr);
    assert.equal(tagged.stderr, '');
    assert.ok((await fs.readFile(path.join(out, 'tagged.bin'))).equals(v2));

    const child = spawn(process.execPath, [CLI_PATH, 'download', '-o', '-', url, 'art/shot.bin'], {
      cwd: out,
      env: work.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const parts: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => parts.push(d));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    assert.ok(Buffer.concat(parts).equals(v2), 'stdout holds the exact bytes');
    const small = await run(['download', '-o', '-', url, 'art/notes.txt']);
    assert.equal(small.out, 'small file\n');
  });

  test('an interrupted download resumes: only the missing chunks travel, a damaged one again', async () => {
    const target = path.join(out, 'huge.bin');
    const partial = `${target}.mediagit-download`;
    const journal = `${partial}.journal`;
    // Killed once a few chunks are journalled.
    await killAfterJournal(['download', url, 'huge.bin'], out, work.env, journal, 4);
    assert.equal(await exists(target), false, 'no output before the download is complete');
    assert.ok(await exists(partial), 'the partial download is kept');
    const kept =
      (await fs.readFile(journal, 'utf8')).split('\n').filter((l) => l !== '').length - 1;
    assert.ok(kept >= 1, `${kept} chunks journalled before the kill`);
    const before = await server.metric(BYTES_SENT);
    const rerun = await run(['download', '--json', url, 'huge.bin']);
    assert.equal(rerun.code, 0, rerun.stderr);
    const sent = (await server.metric(BYTES_SENT)) - before;
    const report = JSON.parse(rerun.out) as { chunks: number; chunksResumed: number };
    assert.ok(report.chunksResumed >= 1 && report.chunksResumed <= kept, JSON.stringify(report));
    assert.ok(
      sent < huge.length,
      `${sent} bytes sent on resume, less than the whole ${huge.length}`,
    );
    assert.ok((await fs.readFile(target)).equals(huge), 'the resumed download is exact');
    assert.equal(await exists(partial), false);
    assert.equal(await exists(journal), false);

    // A journalled chunk whose bytes changed is fetched again, not trusted.
    await fs.rm(target);
    await killAfterJournal(['download', url, 'huge.bin'], out, work.env, journal, 3);
    assert.ok(await exists(partial), 'killed before the end');
    {
      const damaged = await fs.open(partial, 'r+');
      const lines = (await fs.readFile(journal, 'utf8')).split('\n').filter((l) => l !== '');
      const journalled = lines.length - 1;
      // Every byte of the partial file changed: no journalled chunk may be trusted.
      const junk = Buffer.alloc(huge.length, 0xee);
      await damaged.write(junk, 0, junk.length, 0);
      await damaged.close();
      const fixed = await run(['download', '--json', url, 'huge.bin']);
      assert.equal(fixed.code, 0, fixed.stderr);
      const fixedReport = JSON.parse(fixed.out) as { chunksResumed: number };
      assert.ok(journalled >= 1, 'chunks were journalled before the kill');
      assert.equal(fixedReport.chunksResumed, 0, JSON.stringify(fixedReport));
    }
    assert.ok((await fs.readFile(target)).equals(huge), 'exact after a damaged resume');
  });

  test('bad path, folder, revision, credentials and an existing output: one line, Git exit codes', async () => {
    const missing = await run(['download', url, 'art/none.bin']);
    assert.equal(missing.code, 128);
    assert.equal(missing.stderr, "fatal: path 'art/none.bin' does not exist in 'HEAD'\n");
    const folder = await run(['download', url, 'art']);
    assert.equal(folder.code, 128);
    assert.match(folder.stderr, /^fatal: 'art' is a folder in 'HEAD'; download takes one file\n$/);
    const rev = await run(['download', '--rev', 'nope', '-o', 'y.bin', url, 'art/shot.bin']);
    assert.equal(rev.code, 128);
    assert.match(rev.stderr, /^fatal: invalid revision 'nope'/);
    const badKey = await run(['download', '-o', 'x.bin', url, 'art/shot.bin'], {
      MEDIAGIT_TOKEN: 'mgk_not-a-real-key',
    });
    assert.equal(badKey.code, 128, badKey.stderr);
    assert.equal(badKey.stderr.trim().split('\n').length, 1, badKey.stderr);
    assert.equal(await exists(path.join(out, 'x.bin')), false);
    await fs.writeFile(path.join(out, 'taken.bin'), 'mine');
    const taken = await run(['download', '-o', 'taken.bin', url, 'art/shot.bin']);
    assert.equal(taken.code, 128);
    assert.match(taken.stderr, /already exists/);
    assert.equal(await fs.readFile(path.join(out, 'taken.bin'), 'utf8'), 'mine', 'left as it was');
    const usage = await run(['download', url]);
    assert.equal(usage.code, 129);
  });
});

/** Starts `download <url> huge.bin` in `cwd` and kills it once `lines` lines are journalled. */
async function killAfterJournal(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  journal: string,
  lines: number,
): Promise<void> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd, env, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('close', resolve));
  for (;;) {
    const count = await fs.readFile(journal, 'utf8').then(
      (t) => t.split('\n').filter((l) => l !== '').length,
      () => 0,
    );
    if (count >= lines || child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  child.kill('SIGKILL');
  await exited;
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  );
}
