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
  const { main } = await import('../dist/cli/main.js');
  process.exitCode = await main(argv);
}
