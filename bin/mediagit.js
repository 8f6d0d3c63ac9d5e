#!/usr/bin/env node
// Launcher for the MediaGit CLI. It refuses to run on a Node that lacks what
// MediaGit needs (zstd in node:zlib arrived in 22.15) with one clear line,
// then loads the compiled CLI from dist/.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(
    `fatal: MediaGit needs Node.js >= 22.15 (this is ${process.versions.node}); ` +
      'run it with the Node the project installs (node_modules/.bin/node) or `npx mediagit`\n',
  );
  process.exit(1);
}
const argv = process.argv.slice(2);
if (argv.length === 1 && argv[0] === '--version') {
  // Answered before anything else loads (the CLI's modules cost ~0.3 s to load
  // in all; `--version` is what scripts and installers call to probe).
  const { readFileSync } = await import('node:fs');
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${manifest.version}\n`);
  process.exit(0);
}
// Chunk transfers and object writes wait on fsync in libuv's thread pool;
// its default of 4 threads leaves the disk idle while they wait.
process.env.UV_THREADPOOL_SIZE ??= '16';
// Moving a GiB through sockets and files allocates a GiB of short-lived
// external buffers; by default V8 runs a full mark-compact for every 64 MiB
// of them (41 during a 1 GiB push measured here, a quarter of the server's
// CPU). Counting external memory in the global heap limit instead cut that
// to a handful (bench/README.md).
const { setFlagsFromString } = await import('node:v8');
setFlagsFromString('--external-memory-accounted-in-global-limit');
let answer;
if (argv[0] === 'status' && !process.env.MEDIAGIT_NO_FSMONITOR) {
  // A running fsmonitor daemon answers status without loading the CLI. This
  // path avoids process.stdout (building the stream costs more than the answer).
  const { askDaemon, isTerminal, writeFully } = await import('../dist/cli/fsmonitor-client.js');
  const color = !process.env.NO_COLOR && isTerminal(1) && process.env.TERM !== 'dumb';
  answer = askDaemon(argv, process.cwd(), process.env, color);
  if (answer) {
    writeFully(1, answer.stdout);
    writeFully(2, answer.stderr);
    process.exitCode = answer.code;
  }
}
if (!answer) {
  // Reuse V8's compiled code across runs: a short command such as `status`
  // spends much of its time compiling modules otherwise.
  const { default: module } = await import('node:module');
  module.enableCompileCache?.();
  const { run } = await import('../dist/cli/main.js');
  process.exitCode = await run(argv);
}
