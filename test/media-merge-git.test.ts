/**
 * Media-aware merges beyond one family (issue 19, "every strategy"): the
 * same merges through Git, with `merge=mediagit` set by `mediagit track` and
 * the driver registered by `mediagit install`, for a PNG metadata/pixel pair
 * and a GLB node/material pair; a conflict through Git names the part and
 * leaves ours; and `-X media=off`, which gives the plain binary conflict back.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Document, NodeIO } from '@gltf-transform/core';
import sharp from 'sharp';
import { GitWorld } from './git-world.ts';
import { TempRepo } from './helpers.ts';

const run = promisify(execFile);
const SIZE = 128;

/** A PNG whose pixels are a gradient, with one 32×32 square painted `shade` when given. */
async function png(shade?: number): Promise<Buffer> {
  const data = Buffer.alloc(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const at = (y * SIZE + x) * 3;
      const inSquare = shade !== undefined && x >= 64 && x < 96 && y >= 64 && y < 96;
      data[at] = inSquare ? shade : x * 2;
      data[at + 1] = inSquare ? 255 - shade : y * 2;
      data[at + 2] = (x + y) & 0xff;
    }
  }
  return sharp(data, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .png()
    .toBuffer();
}

async function pixels(file: string): Promise<Buffer> {
  return sharp(file).removeAlpha().raw().toBuffer();
}

/** A scene: a Car node holding a Body mesh painted with the Paint material. */
async function glb(options: { carX?: number; paint?: [number, number, number, number] } = {}) {
  const doc = new Document();
  const buffer = doc.createBuffer();
  const positions = doc
    .createAccessor('positions')
    .setType('VEC3')
    .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0]))
    .setBuffer(buffer);
  const material = doc.createMaterial('Paint').setBaseColorFactor(options.paint ?? [1, 0, 0, 1]);
  const mesh = doc
    .createMesh('Body')
    .addPrimitive(doc.createPrimitive().setAttribute('POSITION', positions).setMaterial(material));
  const car = doc
    .createNode('Car')
    .setMesh(mesh)
    .setTranslation([options.carX ?? 0, 0, 0]);
  const ground = doc.createNode('Ground').setTranslation([0, -1, 0]);
  doc.createScene('Scene').addChild(car).addChild(ground);
  return Buffer.from(await new NodeIO().writeBinary(doc));
}

let world: GitWorld;
before(async () => {
  world = await GitWorld.create();
});
after(async () => {
  await fs.rm(world.root, { recursive: true, force: true });
});

test('git merge through the mediagit driver: PNG metadata with pixels, GLB node with material', async () => {
  const repo = world.path('studio');
  await fs.mkdir(repo);
  await world.git(['init', '-q'], repo);
  await world.mediagit(['install', '--local'], repo);
  await world.mediagit(['track', '*.png', '*.glb'], repo);
  const config = await world.git(['config', '--local', '--get', 'merge.mediagit.driver'], repo);
  assert.equal(config.out.trim(), 'mediagit merge-driver %O %A %B %P');
  const file = (name: string) => `${repo}/${name}`;

  await fs.writeFile(file('shot.png'), await png());
  await fs.writeFile(file('car.glb'), await glb());
  await world.git(['add', '-A'], repo);
  await world.git(['commit', '-q', '-m', 'base'], repo);

  // One side: metadata of the PNG (exiftool) and the car moved.
  await world.git(['switch', '-q', '-c', 'notes'], repo);
  await run('exiftool', [
    '-q',
    '-overwrite_original',
    '-PNG:Comment=approved by Ana',
    file('shot.png'),
  ]);
  await fs.writeFile(file('car.glb'), await glb({ carX: 5 }));
  await world.git(['commit', '-q', '-a', '-m', 'notes and move'], repo);

  // The other: pixels of the PNG and the car's paint.
  await world.git(['switch', '-q', 'main'], repo);
  await fs.writeFile(file('shot.png'), await png(200));
  await fs.writeFile(file('car.glb'), await glb({ paint: [0, 0, 1, 1] }));
  await world.git(['commit', '-q', '-a', '-m', 'repaint'], repo);
  const repainted = await pixels(file('shot.png'));

  const merged = await world.run('git', ['merge', '-q', '-m', 'merge notes', 'notes'], repo);
  assert.equal(merged.code, 0, merged.stderr);
  // What Git stored are pointers; the working files are the merged content.
  const stored = await world.git(['show', 'HEAD:shot.png'], repo);
  assert.match(stored.out, /^version https:\/\/git-lfs\.github\.com\/spec\/v1\n/);
  assert.deepEqual(await pixels(file('shot.png')), repainted);
  const comment = await run('exiftool', ['-s3', '-PNG:Comment', file('shot.png')]);
  assert.equal(comment.stdout.trim(), 'approved by Ana');

  const scene = await new NodeIO().readBinary(new Uint8Array(await fs.readFile(file('car.glb'))));
  const car = scene
    .getRoot()
    .listNodes()
    .find((n) => n.getName() === 'Car')!;
  assert.deepEqual(car.getTranslation(), [5, 0, 0]);
  const paint = scene
    .getRoot()
    .listMaterials()
    .find((m) => m.getName() === 'Paint')!;
  assert.deepEqual(paint.getBaseColorFactor(), [0, 0, 1, 1]);
  assert.equal((await world.git(['status', '--porcelain'], repo)).out, '');

  // Both sides repaint the car: Git reports the conflict, the driver names
  // the material, and the working file stays ours.
  await world.git(['switch', '-q', '-c', 'green'], repo);
  await fs.writeFile(file('car.glb'), await glb({ carX: 5, paint: [0, 1, 0, 1] }));
  await world.git(['commit', '-q', '-a', '-m', 'green'], repo);
  await world.git(['switch', '-q', 'main'], repo);
  const ours = await glb({ carX: 5, paint: [1, 1, 0, 1] });
  await fs.writeFile(file('car.glb'), ours);
  await world.git(['commit', '-q', '-a', '-m', 'yellow'], repo);
  const conflict = await world.run('git', ['merge', '-m', 'merge green', 'green'], repo);
  assert.equal(conflict.code, 1, conflict.stderr);
  assert.match(conflict.out, /CONFLICT \(content\): Merge conflict in car\.glb/);
  assert.match(conflict.stderr, /mediagit: car\.glb: [a-z-]+: .*material 'Paint'/);
  assert.ok((await fs.readFile(file('car.glb'))).equals(ours));
  assert.match((await world.git(['status', '--porcelain'], repo)).out, /^UU car\.glb$/m);
});

test('-X media=off gives the plain binary conflict; an unknown -X option is refused', async () => {
  const repo = await TempRepo.create();
  try {
    await fs.writeFile(repo.path('shot.png'), await png());
    await repo.ok(['add', 'shot.png']);
    await repo.ok(['commit', '-q', '-m', 'base']);
    await repo.ok(['switch', '-q', '-c', 'notes']);
    await run('exiftool', [
      '-q',
      '-overwrite_original',
      '-PNG:Comment=approved',
      repo.path('shot.png'),
    ]);
    await repo.ok(['commit', '-q', '-a', '-m', 'notes']);
    await repo.ok(['switch', '-q', 'main']);
    const ours = await png(90);
    await fs.writeFile(repo.path('shot.png'), ours);
    await repo.ok(['commit', '-q', '-a', '-m', 'pixels']);

    // Git: "fatal: Unknown option for merge-recursive: -Xpatience", exit 128.
    const refused = await repo.fails(['merge', '-X', 'patience', 'notes'], 128);
    assert.equal(
      refused.stderr,
      "fatal: unknown strategy option '-Xpatience' (MediaGit knows media=on and media=off)\n",
    );

    const off = await repo.fails(['merge', '-X', 'media=off', 'notes'], 1);
    assert.match(off.stderr, /^CONFLICT \(content\): Merge conflict in shot\.png$/m);
    assert.ok((await fs.readFile(repo.path('shot.png'))).equals(ours));
    await repo.ok(['merge', '--abort']);

    await repo.ok(['merge', '-q', '-m', 'merge notes', 'notes']);
    assert.deepEqual(
      await sharp(await fs.readFile(repo.path('shot.png')))
        .removeAlpha()
        .raw()
        .toBuffer(),
      await sharp(ours).removeAlpha().raw().toBuffer(),
    );
    const comment = await run('exiftool', ['-s3', '-PNG:Comment', repo.path('shot.png')]);
    assert.equal(comment.stdout.trim(), 'approved');
  } finally {
    await repo.cleanup();
  }
});

test("diff prints the format's own account of a binary change, and --json carries it", async () => {
  const repo = await TempRepo.create();
  try {
    await fs.writeFile(repo.path('shot.png'), await png());
    await repo.ok(['add', 'shot.png']);
    await repo.ok(['commit', '-q', '-m', 'base']);
    await run('exiftool', ['-q', '-overwrite_original', '-PNG:Comment=hi', repo.path('shot.png')]);
    const patch = (await repo.ok(['diff'])).out;
    assert.match(
      patch,
      /^# shot\.png: \d+ -> \d+ bytes \(image\/png\)\n# {3}pixels unchanged\n# {3}text 'Comment' added\n$/m,
    );
    const json = JSON.parse((await repo.ok(['diff', '--json'])).out) as { semantic?: string[] }[];
    assert.deepEqual(json[0]?.semantic, ['pixels unchanged', "text 'Comment' added"]);
    // A change of pixels says so; a file with no strategy has no such lines.
    await fs.writeFile(repo.path('shot.png'), await png(10));
    await fs.writeFile(repo.path('data.bin'), Buffer.alloc(64, 1));
    await repo.ok(['add', 'data.bin']);
    await repo.ok(['commit', '-q', '-m', 'data']);
    await fs.writeFile(repo.path('data.bin'), Buffer.alloc(64, 2));
    const json2 = JSON.parse((await repo.ok(['diff', '--json'])).out) as {
      path: string;
      semantic?: string[];
    }[];
    const byPath = new Map(json2.map((f) => [f.path, f.semantic]));
    assert.equal(byPath.get('data.bin'), undefined);
    assert.match(byPath.get('shot.png')?.join('\n') ?? '', /pixels changed in 1 of 4 tiles/);
  } finally {
    await repo.cleanup();
  }
});
