/**
 * Media-aware merge of VFX files through the real CLI: a Nuke script and a
 * multi-part OpenEXR (ffmpeg + exrmultipart) edited on two branches merge
 * into files with both sides' edits (the script's node graph read back, the
 * EXR read back by exrheader, exrmultipart and ffmpeg); edits to the same
 * knob and the same part are conflicts that name them, leave ours in place
 * and list the files as unmerged.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { COMP, readGraph } from '../src/media/merge/vfx/nk-fixture.ts';
import { mergeText } from '../src/repo/text-merge.ts';
import { TempRepo } from './helpers.ts';

const run = promisify(execFile);

function edit(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), from);
  return text.replace(from, to);
}

/** Four 16×16 images and the multi-part files made of them, in a scratch folder. */
async function makeExrs(dir: string): Promise<Record<string, Buffer>> {
  const sources = ['testsrc=size=16x16', 'color=c=gray:size=16x16', 'color=c=blue:size=16x16'];
  const args = ['-v', 'error', '-y'];
  sources.forEach((source) => args.push('-f', 'lavfi', '-i', source));
  sources.forEach((_, i) => {
    args.push('-map', String(i), '-frames:v', '1', '-pix_fmt', 'gbrpf32le', '-c:v', 'exr');
    args.push(path.join(dir, `img${i}.exr`));
  });
  args.push('-map', '2', '-frames:v', '1', '-pix_fmt', 'gbrpf32le', '-vf', 'negate');
  args.push('-c:v', 'exr', path.join(dir, 'img3.exr'));
  await run('ffmpeg', args);
  const combine = async (name: string, beauty: number, depth: number) => {
    const out = path.join(dir, `${name}.exr`);
    await run('exrmultipart', [
      ...['-combine', '-i', path.join(dir, `img${beauty}.exr::beauty`)],
      ...[path.join(dir, `img${depth}.exr::depth`), '-o', out],
    ]);
    return [name, await fs.readFile(out)] as const;
  };
  return Object.fromEntries(
    await Promise.all([
      combine('base', 0, 1),
      combine('beauty', 2, 1),
      combine('depth', 0, 2),
      combine('depth2', 0, 3),
    ]),
  );
}

/** Each part of an EXR as ffmpeg decodes it, after exrmultipart separates them. */
async function partPixels(dir: string, file: string, count: number): Promise<Buffer[]> {
  await run('exrmultipart', ['-separate', '-i', file, '-o', path.join(dir, 'sep')]);
  const args = ['-v', 'error', '-y'];
  for (let i = 1; i <= count; i++) args.push('-i', path.join(dir, `sep.${i}.exr`));
  for (let i = 0; i < count; i++) {
    args.push('-map', String(i), '-f', 'rawvideo', '-pix_fmt', 'gbrpf32le');
    args.push(path.join(dir, `raw${i}.bin`));
  }
  await run('ffmpeg', args);
  return Promise.all(
    [...Array(count).keys()].map((i) => fs.readFile(path.join(dir, `raw${i}.bin`))),
  );
}

test('a Nuke script and a multi-part EXR merge by node and by part; same knob and same part conflict', async () => {
  const repo = await TempRepo.create();
  const scratch = await fs.mkdtemp(path.join(repo.path('.'), '..', 'exr-'));
  try {
    const exr = await makeExrs(scratch);
    const write = async (nk: string, shot: Buffer | undefined) => {
      await fs.writeFile(repo.path('comp.nk'), nk);
      await fs.writeFile(repo.path('shot.exr'), shot ?? Buffer.alloc(0));
    };
    await write(COMP, exr.base);
    await repo.ok(['add', 'comp.nk', 'shot.exr']);
    await repo.ok(['commit', '-q', '-m', 'comp and plate']);

    // Theirs: Blur1.size, and the depth part.
    await repo.ok(['switch', '-q', '-c', 'blur']);
    const theirs = edit(COMP, ' size 4\n', ' size 9\n');
    await write(theirs, exr.depth);
    await repo.ok(['commit', '-q', '-a', '-m', 'bigger blur, new depth']);
    // Ours: a Dot between Grade1 and Blur1, Grade1.white, a new Blur1 knob next to the
    // size theirs changed (a line merge cannot take both), and the beauty part.
    await repo.ok(['switch', '-q', 'main']);
    const dot = 'Dot {\n name Dot1\n}\n';
    const oursGraph = edit(
      edit(COMP, ' white 1.1\n', ' white 1.4\n'),
      ' ypos -120\n}\n',
      ` ypos -120\n}\n${dot}`,
    );
    const ours = edit(oursGraph, ' size 4\n', ' size 4\n filter box\n');
    assert.ok(mergeText(COMP, ours, theirs, { ours: 'a', theirs: 'b' }).conflicts > 0);
    await write(ours, exr.beauty);
    await repo.ok(['commit', '-q', '-a', '-m', 'dot, grade, new beauty']);

    await repo.ok(['merge', '-q', '-m', 'merge blur', 'blur']);
    const graph = readGraph(await fs.readFile(repo.path('comp.nk'), 'utf8'));
    assert.deepEqual(graph.get('Blur1')?.inputs, ['Dot1']);
    assert.deepEqual(graph.get('Dot1')?.inputs, ['Grade1']);
    assert.deepEqual(graph.get('Merge1')?.inputs, ['Constant1', 'Blur1']);
    assert.deepEqual(graph.get('Write1')?.inputs, ['Group1']);
    assert.equal(graph.get('Blur1')?.knobs.size, '9');
    assert.equal(graph.get('Grade1')?.knobs.white, '1.4');
    assert.equal(graph.get('Blur1')?.knobs.filter, 'box');
    assert.equal(graph.size, 12);

    const merged = repo.path('shot.exr');
    const { stdout: header } = await run('exrheader', [merged]);
    assert.deepEqual(
      [...header.matchAll(/name \(type string\): "([^"]+)"/g)].map((m) => m[1]),
      ['beauty', 'depth'],
    );
    assert.deepEqual(
      [...header.matchAll(/chunkCount \(type int\): (\d+)/g)].map((m) => m[1]),
      ['16', '16'],
    );
    const [beauty, depth] = await partPixels(scratch, merged, 2);
    const [wantBeauty, wantDepth] = await partPixels(scratch, path.join(scratch, 'beauty.exr'), 2);
    const [, depthFromTheirs] = await partPixels(scratch, path.join(scratch, 'depth.exr'), 2);
    assert.ok(beauty?.equals(wantBeauty ?? Buffer.alloc(1)), 'beauty from ours');
    assert.ok(depth?.equals(depthFromTheirs ?? Buffer.alloc(1)), 'depth from theirs');
    assert.ok(!depth?.equals(wantDepth ?? Buffer.alloc(1)), 'depth changed');
    assert.deepEqual((await repo.status()).unstaged, []);

    // Both change Blur1.size and the depth part: conflicts naming them; ours stays.
    await repo.ok(['switch', '-q', '-c', 'again']);
    await write(edit(theirs, ' size 9\n', ' size 12\n'), exr.depth2);
    await repo.ok(['commit', '-q', '-a', '-m', 'blur 12, depth 2']);
    await repo.ok(['switch', '-q', 'main']);
    const oursNk = edit(await fs.readFile(repo.path('comp.nk'), 'utf8'), ' size 9\n', ' size 3\n');
    const shot = await fs.readFile(merged);
    await run('exrmultipart', [
      '-combine',
      '-i',
      `${merged}:0::beauty`,
      `${path.join(scratch, 'img1.exr')}::depth`,
      '-o',
      path.join(scratch, 'ours.exr'),
    ]);
    const oursExr = await fs.readFile(path.join(scratch, 'ours.exr'));
    assert.ok(!oursExr.equals(shot));
    await write(oursNk, oursExr);
    await repo.ok(['commit', '-q', '-a', '-m', 'blur 3, depth back']);
    const result = await repo.fails(['merge', 'again'], 1);
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in comp\.nk \(nuke-nodes: both sides changed node 'Blur1' knob 'size'\)/,
    );
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in shot\.exr \(exr-parts: both sides changed part 'depth'\)/,
    );
    assert.equal(await fs.readFile(repo.path('comp.nk'), 'utf8'), oursNk);
    assert.ok((await fs.readFile(merged)).equals(oursExr));
    const status = JSON.parse((await repo.ok(['status', '--json'])).out) as {
      unmerged: { path: string; type: string }[];
    };
    assert.deepEqual(status.unmerged, [
      { path: 'comp.nk', type: 'ModifyModify' },
      { path: 'shot.exr', type: 'ModifyModify' },
    ]);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
    await repo.cleanup();
  }
});
