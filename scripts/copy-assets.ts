/**
 * The build's second step: files the compiled code reads at run time and tsc
 * does not emit (the web interface's stylesheet and script) are copied from
 * src/ to the same place under dist/.
 */
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const folders = ['server/ui/assets'];
for (const folder of folders) {
  const from = path.join(root, 'src', folder);
  const to = path.join(root, 'dist', folder);
  fs.mkdirSync(to, { recursive: true });
  for (const name of fs.readdirSync(from))
    fs.copyFileSync(path.join(from, name), path.join(to, name));
}
