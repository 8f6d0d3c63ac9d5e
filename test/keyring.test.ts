/**
 * The OS keyring, for real: a private D-Bus session bus with GNOME
 * Keyring's Secret Service on it, started once for this file, and
 * libsecret's `secret-tool` as the client (cli/keyring.ts). `login` keeps
 * API keys there rather than in the 0600 file; an encrypted repository's
 * keyring slot (`key add --keyring`) keeps its key there, and then opens
 * the repository, and a clone of it, without a passphrase.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { TempRepo } from './helpers.ts';

let home: string;
let bus: ChildProcess | undefined;
let keyringDaemon: ChildProcess | undefined;
let busAddress: string;
let keyFile: string;

/**
 * A session bus of our own, without service activation (so no second
 * keyring daemon is started behind the test's back); its address is the
 * first line it prints.
 */
async function startBus(): Promise<{ child: ChildProcess; address: string }> {
  const config = path.join(home, 'bus.conf');
  await fs.writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=${home}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
  );
  const child = spawn(
    'dbus-daemon',
    [`--config-file=${config}`, '--nofork', '--nopidfile', '--print-address=1'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return { child, address: await firstLine(child, 'dbus-daemon') };
}

function firstLine(child: ChildProcess, what: string): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  return new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
    lines.once('line', resolve);
  });
}

function secretTool(args: readonly string[], input?: string) {
  return spawnSync('secret-tool', args, {
    encoding: 'utf8',
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: busAddress },
    ...(input === undefined ? {} : { input }),
  });
}

before(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'mediagit-keyring-'));
  const started = await startBus();
  bus = started.child;
  busAddress = started.address;
  // The login keyring, created and unlocked with this password on standard input.
  keyringDaemon = spawn(
    'gnome-keyring-daemon',
    ['--foreground', '--unlock', '--components=secrets'],
    {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: {
        ...process.env,
        HOME: home,
        DBUS_SESSION_BUS_ADDRESS: busAddress,
      },
    },
  );
  keyringDaemon.stdin!.end('test keyring password');
  // It prints its environment (GNOME_KEYRING_CONTROL=…) once it is on the bus.
  await firstLine(keyringDaemon, 'gnome-keyring-daemon');
  const deadline = Date.now() + 20_000;
  for (;;) {
    const probe = secretTool(['store', '--label=probe', 'probe', 'ready'], 'yes');
    if (probe.status === 0 && secretTool(['lookup', 'probe', 'ready']).stdout === 'yes') break;
    if (Date.now() > deadline) throw new Error(`no Secret Service came up: ${probe.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  keyFile = path.join(home, 'repo.key');
  await fs.writeFile(keyFile, randomBytes(64));
});

after(async () => {
  keyringDaemon?.kill();
  bus?.kill();
  await fs.rm(home, { recursive: true, force: true });
});

/** A repository whose commands see the test's keyring. */
async function withKeyring(init = true): Promise<TempRepo> {
  const repo = await TempRepo.create({ init: false });
  const seen = repo.withEnv({ DBUS_SESSION_BUS_ADDRESS: busAddress });
  if (init) await seen.ok(['init', '-q']);
  return seen;
}

/** `repo` made an encrypted repository with one commit; returned as opened with the key file. */
async function encryptedWithCommit(repo: TempRepo): Promise<TempRepo> {
  const keyed = repo.withEnv({ MEDIAGIT_KEY_FILE: keyFile, MEDIAGIT_TEST_KDF: 'fast' });
  await keyed.ok(['init', '-q', '--encrypt']);
  await fs.writeFile(repo.path('shot.txt'), 'frame 1001\n');
  await keyed.ok(['add', 'shot.txt']);
  await keyed.ok(['commit', '-q', '-m', 'first shot']);
  return keyed;
}

/** `secret-tool lookup` of a keyring slot's key. */
const slotKey = (repository: string, slot: string) =>
  secretTool([
    'lookup',
    'service',
    'mediagit-repository-key',
    'repository',
    repository,
    'slot',
    slot,
  ]);

test('login keeps the API key in the OS keyring, not in a file, and logout takes it out; without a keyring the 0600 file is used', async () => {
  const repo = await withKeyring();
  try {
    const url = 'http://127.0.0.1:9/studio/film';
    const token = `mgk_${randomBytes(16).toString('hex')}`;
    const login = await repo.ok(['login', '--no-verify', url], `${token}\n`);
    assert.match(login.stderr, /stored in the OS keyring/);
    assert.equal(secretTool(['lookup', 'service', 'mediagit', 'server', url]).stdout, token);
    const file = path.join(repo.root, 'credentials.toml');
    await assert.rejects(fs.stat(file), { code: 'ENOENT' });

    await repo.ok(['logout', url]);
    assert.equal(secretTool(['lookup', 'service', 'mediagit', 'server', url]).status, 1);

    const noKeyring = repo.withEnv({ MEDIAGIT_NO_KEYRING: '1' });
    const fallback = await noKeyring.ok(['login', '--no-verify', url], `${token}\n`);
    assert.match(fallback.stderr, /credentials\.toml/);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.match(await fs.readFile(file, 'utf8'), new RegExp(token));
    assert.equal(secretTool(['lookup', 'service', 'mediagit', 'server', url]).status, 1);
  } finally {
    await repo.cleanup();
  }
});

test('a keyring slot opens an encrypted repository, and a clone of it, without a passphrase; removing the slot takes its key out of the keyring', async () => {
  const repo = await withKeyring(false);
  const copy = await withKeyring(false);
  try {
    const keyed = await encryptedWithCommit(repo);

    // Without the key file nothing opens: the repository has no keyring slot yet.
    const locked = await repo.fails(['log', '--oneline'], 128);
    assert.match(locked.stderr, /this repository is encrypted/);

    const added = await keyed.ok(['key', 'add', '--keyring']);
    const slot = /added key slot ([0-9a-f]{16}) \(keyring\)/.exec(added.out)?.[1];
    assert.ok(slot, added.out);
    const keys = JSON.parse(await fs.readFile(path.join(repo.gitDir, 'keys.json'), 'utf8')) as {
      repository: string;
    };
    const stored = slotKey(keys.repository, slot).stdout;
    assert.equal(Buffer.from(stored, 'base64').length, 32);
    assert.ok(!(await fs.readFile(path.join(repo.gitDir, 'keys.json'), 'utf8')).includes(stored));

    // Now the keyring opens it: no key file, no passphrase, no terminal.
    assert.match((await repo.ok(['log', '--oneline'])).out, /first shot/);
    const listed = JSON.parse((await repo.ok(['key', 'list', '--json'])).out) as {
      id: string;
      kind: string;
      current: boolean;
    }[];
    assert.deepEqual(
      listed.filter((s) => s.current).map((s) => [s.id, s.kind]),
      [[slot, 'keyring']],
    );
    // A secret given explicitly still wins over the keyring.
    const explicit = JSON.parse((await keyed.ok(['key', 'list', '--json'])).out) as {
      kind: string;
      current: boolean;
    }[];
    assert.equal(explicit.find((s) => s.current)?.kind, 'keyfile');
    // The keyring turned off: the repository is locked again.
    await repo.withEnv({ MEDIAGIT_NO_KEYRING: '1' }).fails(['log', '--oneline'], 128);

    // A clone on this machine has the same repository ID, so the same slot opens it.
    await copy.ok(['clone', '-q', repo.dir, '.']);
    assert.equal(await fs.readFile(copy.path('shot.txt'), 'utf8'), 'frame 1001\n');

    // Rotating the keyring slot: a new key in the keyring, the old one gone.
    const rotated = await repo.ok(['key', 'rotate', '--keyring']);
    const next = /replaced by ([0-9a-f]{16}) \(keyring\)/.exec(rotated.out)?.[1];
    assert.ok(next, rotated.out);
    const lookup = (id: string) => slotKey(keys.repository, id);
    assert.equal(lookup(slot).status, 1);
    assert.equal(lookup(next).status, 0);
    await repo.ok(['status']);

    await keyed.ok(['key', 'remove', next]);
    assert.equal(lookup(next).status, 1);
    await repo.fails(['log', '--oneline'], 128);
    await keyed.ok(['log', '--oneline']);
  } finally {
    await repo.cleanup();
    await copy.cleanup();
  }
});

test('key add --keyring without a keyring is one line, exit 128, and the key file is unchanged', async () => {
  const repo = (await TempRepo.create({ init: false })).withEnv({
    MEDIAGIT_KEY_FILE: keyFile,
    MEDIAGIT_TEST_KDF: 'fast',
    DBUS_SESSION_BUS_ADDRESS: '',
  });
  try {
    await repo.ok(['init', '-q', '--encrypt']);
    const before = await fs.readFile(path.join(repo.gitDir, 'keys.json'));
    const refused = await repo.fails(['key', 'add', '--keyring'], 128);
    assert.match(refused.stderr, /no OS keyring: --keyring needs secret-tool/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.deepEqual(await fs.readFile(path.join(repo.gitDir, 'keys.json')), before);
    const both = await repo.fails(['key', 'add', '--keyring', '--new-key-file', keyFile], 128);
    assert.match(both.stderr, /exclude each other/);
  } finally {
    await repo.cleanup();
  }
});

test('rekey --full opened from the keyring keeps a keyring slot: a new key under the new repository ID', async () => {
  const repo = await withKeyring(false);
  try {
    const keyed = await encryptedWithCommit(repo);
    await keyed.ok(['key', 'add', '--keyring']);
    const readId = async () =>
      JSON.parse(await fs.readFile(path.join(repo.gitDir, 'keys.json'), 'utf8')) as {
        repository: string;
        slots: { id: string; kind: string }[];
      };
    const before = await readId();

    // Opened by the keyring alone: no key file, no passphrase.
    const rekeyed = await repo.ok(['rekey', '--full']);
    assert.match(rekeyed.stderr, /not carried over/);
    const after = await readId();
    assert.notEqual(after.repository, before.repository);
    assert.deepEqual(
      after.slots.map((slot) => slot.kind),
      ['keyring'],
    );
    const stored = slotKey(after.repository, after.slots[0]!.id);
    assert.equal(stored.status, 0);
    assert.match((await repo.ok(['log', '--oneline'])).out, /first shot/);
    // The key file's slot was not carried over: it opens nothing now.
    const wrong = await keyed.withEnv({ MEDIAGIT_NO_KEYRING: '1' }).fails(['log'], 128);
    assert.match(wrong.stderr, /wrong key file/);
  } finally {
    await repo.cleanup();
  }
});
