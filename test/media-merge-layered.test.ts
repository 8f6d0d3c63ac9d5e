/**
 * Layered-image merges through the real CLI: an ORA, a PSD with groups and a
 * KRA, each edited on two branches; one merge combines non-overlapping
 * edits in all three (read back with sharp, ag-psd and the ZIP reader), the
 * next has both sides repaint one layer in the ORA and the PSD: a conflict
 * naming the layer, ours left in place, both listed unmerged.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  kra,
  ora,
  psd,
  readKra,
  readLayers,
  readOra,
  type KraSpec,
  type OraSpec,
  type Spec,
} from './layered-media.ts';
import { TempRepo } from './helpers.ts';

const run = promisify(execFile);

const oraSky: OraSpec = { name: 'Sky', seed: 1 };
const oraActor: OraSpec = { name: 'Actor', seed: 2, x: 3, y: 2 };
const oraTitle: OraSpec = { name: 'Title', seed: 3 };
const psdSky: Spec = { name: 'Sky', seed: 1 };
const psdActor: Spec = { name: 'Actor', seed: 2 };
const psdTitle: Spec = { name: 'Title', seed: 3 };
const kraSky: KraSpec = { name: 'Sky', uuid: '{1}', seed: 1 };
const kraActor: KraSpec = { name: 'Actor', uuid: '{2}', seed: 2 };
const textGroup = <T>(children: T[]) => ({ name: 'Text', uuid: '{9}', children });

test('ORA, PSD and KRA layer edits merge through the CLI; a layer both repainted conflicts', async () => {
  const repo = await TempRepo.create();
  try {
    const write = async (files: { ora: Buffer; psd: Buffer; kra: Buffer }) => {
      await fs.writeFile(repo.path('art.ora'), files.ora);
      await fs.writeFile(repo.path('poster.psd'), files.psd);
      await fs.writeFile(repo.path('scene.kra'), files.kra);
    };
    await write({
      ora: await ora([textGroup([oraTitle]), oraActor, oraSky]),
      psd: psd([textGroup([psdTitle]), psdActor, psdSky]),
      kra: kra([kraActor, kraSky]),
    });
    await repo.ok(['add', 'art.ora', 'poster.psd', 'scene.kra']);
    await repo.ok(['commit', '-q', '-m', 'art']);

    // Theirs: a new sky everywhere; the PSD's actor moves into the group, to its top.
    await repo.ok(['switch', '-q', '-c', 'sky']);
    await write({
      ora: await ora([textGroup([oraTitle]), oraActor, { ...oraSky, seed: 11 }]),
      psd: psd([textGroup([psdActor, psdTitle]), { ...psdSky, seed: 11 }]),
      kra: kra([kraActor, { ...kraSky, seed: 11 }]),
    });
    await repo.ok(['commit', '-q', '-a', '-m', 'new sky']);
    // Ours: a new actor, and the title hidden in the ORA.
    await repo.ok(['switch', '-q', 'main']);
    await write({
      ora: await ora([
        textGroup([{ ...oraTitle, hidden: true }]),
        { ...oraActor, seed: 12 },
        oraSky,
      ]),
      psd: psd([textGroup([psdTitle]), { ...psdActor, seed: 12 }, psdSky]),
      kra: kra([{ ...kraActor, seed: 12 }, kraSky]),
    });
    await repo.ok(['commit', '-q', '-a', '-m', 'new actor']);

    await repo.ok(['merge', '-q', '-m', 'merge sky', 'sky']);
    assert.deepEqual(
      await readOra(await fs.readFile(repo.path('art.ora'))),
      await readOra(
        await ora([
          textGroup([{ ...oraTitle, hidden: true }]),
          { ...oraActor, seed: 12 },
          { ...oraSky, seed: 11 },
        ]),
      ),
    );
    await run('unzip', ['-tq', repo.path('art.ora')]);
    assert.deepEqual(
      readLayers(await fs.readFile(repo.path('poster.psd'))),
      readLayers(psd([textGroup([{ ...psdActor, seed: 12 }, psdTitle]), { ...psdSky, seed: 11 }])),
    );
    assert.deepEqual(
      await readKra(await fs.readFile(repo.path('scene.kra'))),
      await readKra(
        kra([
          { ...kraActor, seed: 12 },
          { ...kraSky, seed: 11 },
        ]),
      ),
    );
    assert.deepEqual((await repo.status()).unstaged, []);

    // Both repaint the sky of the ORA and the PSD; the KRA merges.
    await repo.ok(['switch', '-q', '-c', 'dusk']);
    const merged = {
      ora: await fs.readFile(repo.path('art.ora')),
      psd: await fs.readFile(repo.path('poster.psd')),
      kra: await fs.readFile(repo.path('scene.kra')),
    };
    await write({
      ora: await ora([
        textGroup([{ ...oraTitle, hidden: true }]),
        { ...oraActor, seed: 12 },
        { ...oraSky, seed: 21 },
      ]),
      psd: psd([textGroup([{ ...psdActor, seed: 12 }, psdTitle]), { ...psdSky, seed: 21 }]),
      kra: kra([
        { ...kraActor, seed: 12 },
        { ...kraSky, seed: 21 },
      ]),
    });
    await repo.ok(['commit', '-q', '-a', '-m', 'dusk sky']);
    await repo.ok(['switch', '-q', 'main']);
    const ours = {
      ora: await ora([
        textGroup([{ ...oraTitle, hidden: true }]),
        { ...oraActor, seed: 12 },
        { ...oraSky, seed: 31 },
      ]),
      psd: psd([textGroup([{ ...psdActor, seed: 12 }, psdTitle]), { ...psdSky, seed: 31 }]),
      kra: merged.kra,
    };
    await write(ours);
    await repo.ok(['commit', '-q', '-a', '-m', 'dawn sky']);
    const result = await repo.fails(['merge', 'dusk'], 1);
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in art\.ora \(ora-layers: both sides changed layer 'Sky'\)/,
    );
    assert.match(
      result.stderr,
      /CONFLICT \(content\): Merge conflict in poster\.psd \(psd-layers: both sides changed layer 'Sky'\)/,
    );
    const status = JSON.parse((await repo.ok(['status', '--json'])).out) as {
      unmerged: { path: string; type: string }[];
    };
    assert.deepEqual(status.unmerged, [
      { path: 'art.ora', type: 'ModifyModify' },
      { path: 'poster.psd', type: 'ModifyModify' },
    ]);
    assert.ok((await fs.readFile(repo.path('art.ora'))).equals(ours.ora));
    assert.ok((await fs.readFile(repo.path('poster.psd'))).equals(ours.psd));
  } finally {
    await repo.cleanup();
  }
});
