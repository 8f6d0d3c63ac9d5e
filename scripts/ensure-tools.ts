/**
 * `npm test` runs this first: the tests make real media files with ffmpeg and zip,
 * compare behaviour with the real git and git-lfs, and keep secrets in a real
 * OS keyring, so all must be on the machine. When one
 * is missing and this runs as root on Debian/Ubuntu (as CI does), it installs
 * it with apt-get; otherwise it says exactly what to install and fails.
 */
import { execFileSync, spawnSync } from 'node:child_process';

const needed: { command: string; pkg: string }[] = [
  { command: 'git', pkg: 'git' },
  { command: 'ffmpeg', pkg: 'ffmpeg' },
  { command: 'ffprobe', pkg: 'ffmpeg' },
  { command: 'zip', pkg: 'zip' },
  { command: 'git-lfs', pkg: 'git-lfs' },
  // promtool checks the metrics exposition of `stats --prometheus` and `/metrics`.
  { command: 'promtool', pkg: 'prometheus' },
  // A real OS keyring for login and keyring key slots (test/keyring.test.ts):
  // a session bus, GNOME Keyring's Secret Service and libsecret's client.
  { command: 'dbus-daemon', pkg: 'dbus-daemon' },
  { command: 'gnome-keyring-daemon', pkg: 'gnome-keyring' },
  { command: 'secret-tool', pkg: 'libsecret-tools' },
  // Media-aware merges (test/media-merge-*.test.ts): image metadata written by
  // exiftool, multi-part EXR files made and read by OpenEXR's own tools.
  { command: 'exiftool', pkg: 'libimage-exiftool-perl' },
  { command: 'exrheader', pkg: 'openexr' },
  // The web interface's browser tests (test/web-ui.test.ts): Debian's own
  // Chromium, driven by playwright-core (its browser downloads fail here).
  { command: 'chromium', pkg: 'chromium' },
];

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const missing = [...new Set(needed.filter((n) => !has(n.command)).map((n) => n.pkg))];
if (missing.length > 0) {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !has('apt-get')) {
    console.error(
      `The tests need: ${missing.join(', ')}. Install them (e.g. \`sudo apt-get install -y ${missing.join(' ')}\`) and run the tests again.`,
    );
    process.exit(1);
  }
  console.error(`Installing test tools with apt-get: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  });
}
