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
      combine('depth2', 2, 3),
    ]),
  );
}

/** Pixels as ffmpeg decodes them: each part of `multi` (separated by exrmultipart), then each of `singles`. */
async function pixels(
  dir: string,
  multi: string,
  parts: number,
  singles: string[],
): Promise<Buffer[]> {
  await run('exrmultipart', ['-separate', '-i', multi, '-o', path.join(dir, 'sep')]);
  const files = [...Array(parts).keys()].map((i) => path.join(dir, `sep.${i + 1}.exr`));
  files.push(...singles);
  const args = ['-v', 'error', '-y', ...files.flatMap((file) => ['-i', file])];
  const raws = files.map((_, i) => path.join(dir, `raw${i}.bin`));
  raws.forEach((raw, i) =>
    args.push('-map', String(i), '-f', 'rawvideo', '-pix_fmt', 'gbrpf32le', raw),
  );
  await run('ffmpeg', args);
  return Promise.all(raws.map((raw) => fs.readFile(raw)));
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
    // Beauty is ours' new image (img2), depth theirs' (img2 too, where the base had img1).
    const img = (i: number) => path.join(scratch, `img${i}.exr`);
    const [beauty, depth, want, old] = await pixels(scratch, merged, 2, [img(2), img(1)]);
    assert.ok(want && want.length === 16 * 16 * 3 * 4);
    assert.ok(beauty?.equals(want), 'beauty from ours');
    assert.ok(depth?.equals(want), 'depth from theirs');
    assert.ok(old && !old.equals(want), 'depth changed');
    assert.deepEqual((await repo.status()).unstaged, []);

    // Both change Blur1.size and the depth part: conflicts naming them; ours stays.
    await repo.ok(['switch', '-q', '-c', 'again']);
    await write(edit(theirs, ' size 9\n', ' size 12\n'), exr.depth2);
    await repo.ok(['commit', '-q', '-a', '-m', 'blur 12, depth 2']);
    await repo.ok(['switch', '-q', 'main']);
    const oursNk = edit(await fs.readFile(repo.path('comp.nk'), 'utf8'), ' size 9\n', ' size 3\n');
    // Ours puts the base's depth back (img1); theirs a negated blue (img3).
    const oursExr = exr.beauty ?? Buffer.alloc(0);
    assert.ok(!oursExr.equals(await fs.readFile(merged)));
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
