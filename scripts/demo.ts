/**
 * `npm run demo`: versions a real media file through an edit with the real
 * CLI on its embedded defaults, shares it through a MediaGit server on
 * loopback (a push after each commit, then a clone elsewhere), and prints
 * what was stored and sent.
 *
 * The file is a 60-second 48 kHz stereo PCM WAV (RIFF) written here; the
 * edit replaces two seconds of audio in the middle, as an audio fix would.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const bin = path.join(root, 'bin', 'mediagit.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mediagit-demo-'));
const project = path.join(work, 'project');
const serverRoot = path.join(work, 'server');
const env: NodeJS.ProcessEnv = {
  ...process.env,
  MEDIAGIT_AUTHOR_NAME: 'Demo User',
  MEDIAGIT_AUTHOR_EMAIL: 'demo@example.com',
  MEDIAGIT_CONFIG_GLOBAL: path.join(work, 'global-config.toml'),
};

function mediagit(cwd: string, ...args: string[]): string {
  return execFileSync(process.execPath, [bin, ...args], {
    cwd,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function show(cwd: string, spec: string): Buffer {
  return execFileSync(process.execPath, [bin, 'show', spec], { cwd, env, maxBuffer: 1 << 30 });
}

/** Starts `mediagit serve` on a free loopback port; resolves with its base URL. */
function startServer(dir: string): Promise<{ base: string; stop: () => void }> {
  const child = spawn(process.execPath, [bin, 'serve', '--root', dir, '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (data: Buffer) => {
      out += data.toString();
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve({ base: match[1]!, stop: () => child.kill('SIGTERM') });
    });
    child.on('exit', (code) => reject(new Error(`mediagit serve exited with ${code}`)));
  });
}

/** `mediagit push --json`, in one line. */
function push(...args: string[]): string {
  const result = JSON.parse(mediagit(project, 'push', '--json', ...args)) as {
    stats: { chunks: number; chunksSkipped: number; objects: number; bytes: number };
  };
  const { chunks, chunksSkipped, objects, bytes } = result.stats;
  return `  pushed ${chunks} chunks + ${objects} objects, ${mib(bytes)} (${chunksSkipped} chunks already on the server)`;
}

function wav(seconds: number, toneAt: (t: number) => number): Buffer {
  const rate = 48_000;
  const frames = seconds * rate;
  const data = Buffer.alloc(frames * 4);
  let noise = 12345;
  for (let i = 0; i < frames; i++) {
    const t = i / rate;
    noise = (noise * 1103515245 + 12345) & 0x7fffffff;
    const sample = Math.sin(2 * Math.PI * toneAt(t) * t) * 12000 + ((noise % 2001) - 1000);
    data.writeInt16LE(Math.round(sample), i * 4);
    data.writeInt16LE(Math.round(sample * 0.8), i * 4 + 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(2, 22); // stereo
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 4, 28);
  header.writeUInt16LE(4, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

function dirSize(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

const mib = (n: number): string => `${(n / 1048576).toFixed(2)} MiB`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

console.log(`MediaGit demo in ${work}\n`);
fs.mkdirSync(project);
fs.mkdirSync(serverRoot);
mediagit(work, 'init', '-q', '--bare', path.join(serverRoot, 'music'));
env['MEDIAGIT_TOKEN'] = mediagit(
  work,
  ...['token', 'create', '--root', serverRoot, '--user', 'demo', '--repo', 'music'],
  ...['--scope', 'write'],
).trim();
const server = await startServer(serverRoot);
try {
  console.log(`$ mediagit serve --root ${serverRoot}   (on ${server.base})`);
  mediagit(project, 'init', '-q');
  mediagit(project, 'remote', 'add', 'origin', `${server.base}/music`);
  const original = wav(60, (t) => 220 + t * 4);
  fs.writeFileSync(path.join(project, 'take.wav'), original);
  console.log(
    `\n$ mediagit add take.wav && mediagit commit -m "first take"   (${mib(original.length)} WAV)`,
  );
  mediagit(project, 'add', 'take.wav');
  process.stdout.write(mediagit(project, 'commit', '-m', 'first take'));
  const afterFirst = dirSize(path.join(project, '.mediagit'));
  console.log('$ mediagit push -u origin main');
  console.log(push('-u', 'origin', 'main'));

  // The fix: two seconds of new audio at 30 s, same length, as an editor would save it.
  const edited = Buffer.from(original);
  const fix = wav(2, () => 880).subarray(44);
  fix.copy(edited, 44 + 30 * 48_000 * 4);
  fs.writeFileSync(path.join(project, 'take.wav'), edited);
  console.log(`\n$ mediagit commit -a -m "fix the click at 0:30"   (2 s of 60 s replaced)`);
  process.stdout.write(mediagit(project, 'commit', '-a', '-m', 'fix the click at 0:30'));
  const afterSecond = dirSize(path.join(project, '.mediagit'));
  console.log('$ mediagit push');
  console.log(push());

  console.log('\n$ mediagit clone <server>/music copy && mediagit log --oneline');
  mediagit(work, 'clone', '-q', `${server.base}/music`, 'copy');
  const copy = path.join(work, 'copy');
  process.stdout.write(mediagit(copy, 'log', '--oneline'));
  const first = show(copy, 'HEAD~1:take.wav');
  const cloned = fs.readFileSync(path.join(copy, 'take.wav'));

  console.log('\nWhat was stored and sent:');
  console.log(
    `  first version:  repository is ${mib(afterFirst)} for a ${mib(original.length)} file`,
  );
  console.log(
    `  second version: repository grew by ${mib(afterSecond - afterFirst)} ` +
      `(${(((afterSecond - afterFirst) / edited.length) * 100).toFixed(1)}% of the file; only the changed chunks)`,
  );
  const same = sha(first) === sha(original) && sha(cloned) === sha(edited);
  console.log(
    `  the clone's HEAD~1:take.wav is byte-identical to the first take: ${sha(first) === sha(original)}`,
  );
  console.log(
    `  the clone's take.wav is byte-identical to the edited take:       ${sha(cloned) === sha(edited)}`,
  );
  if (!same) process.exitCode = 1;
} finally {
  server.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
