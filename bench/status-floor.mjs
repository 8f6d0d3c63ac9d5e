// The least any `status` running on Node has to do, without the MediaGit
// CLI: start Node, read .mediagit/index (version 1, src/repo/index-file.ts),
// lstat every tracked file and compare its size and mtime, and list every
// folder (what finds untracked files). bench/foundation.ts times it beside
// `git status` (item 4): no status on Node can be faster than this.
// Plain JavaScript: a .ts file would also load Node's type stripper.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';

const data = readFileSync('.mediagit/index');
if (data.toString('latin1', 0, 4) !== 'MGIX' || data.readUInt32LE(4) !== 1) {
  process.stderr.write('status-floor: not a version 1 MediaGit index\n');
  process.exit(2);
}
const count = data.readUInt32LE(8);
const folders = new Set(['.']);
let offset = 44;
let changed = 0;
for (let i = 0; i < count; i++) {
  const length = data.readUInt16LE(offset);
  offset += 2;
  const file = data.toString('utf8', offset, offset + length);
  offset += length + 4 + 64;
  const size = data.readDoubleLE(offset);
  const mtimeMs = data.readDoubleLE(offset + 8);
  offset += 40;
  const stats = lstatSync(file, { throwIfNoEntry: false });
  if (!stats || stats.size !== size || stats.mtimeMs !== mtimeMs) changed++;
  for (let slash = file.indexOf('/'); slash > 0; slash = file.indexOf('/', slash + 1)) {
    folders.add(file.slice(0, slash));
  }
}
let listed = 0;
for (const folder of folders) listed += readdirSync(folder).length;
process.stdout.write(`${count} tracked, ${changed} changed, ${listed} names listed\n`);
process.exitCode = changed === 0 ? 0 : 1;
