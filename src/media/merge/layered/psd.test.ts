/**
 * The PSD record-level merge on PSDs made by ag-psd and read back by it:
 * layer edits, order and groups from both sides; conflicts that name the
 * layer; malformed files declined; and a property over random edits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { psdMergeStrategy } from './psd.ts';
import { bufferAccess } from '../../info/random-access.ts';
import {
  hasRealComposite,
  psd,
  readLayers,
  runMerge,
  type Spec,
} from '../../../../test/layered-media.ts';

const merge = (base: Buffer, ours: Buffer, theirs: Buffer) =>
  runMerge(psdMergeStrategy, 'poster.psd', base, ours, theirs);

const sky: Spec = { name: 'Sky', seed: 1 };
const actor: Spec = { name: 'Actor', seed: 2 };
const title: Spec = { name: 'Title', seed: 3 };
const logo: Spec = { name: 'Logo', seed: 4 };
const group = (children: Spec[], name = 'Text'): Spec => ({ name, children });

test('edits to different layers, in and out of groups, merge; ag-psd reads both', async () => {
  const base = psd([group([title, logo]), actor, sky]);
  const ours = psd([group([title, { ...logo, seed: 40 }]), actor, { ...sky, seed: 10 }]);
  const theirs = psd([group([{ ...title, hidden: true }, logo]), { ...actor, opacity: 0.5 }, sky]);
  const result = await merge(base, ours, theirs);
  assert.ok('bytes' in result, JSON.stringify(result));
  const want = psd([
    group([
      { ...title, hidden: true },
      { ...logo, seed: 40 },
    ]),
    { ...actor, opacity: 0.5 },
    { ...sky, seed: 10 },
  ]);
  assert.deepEqual(readLayers(result.bytes), readLayers(want));
  // The composite is ours', marked as not real: applications rebuild it.
  assert.equal(hasRealComposite(result.bytes), false);
  // Deterministic.
  const again = await merge(base, ours, theirs);
  assert.ok('bytes' in again && again.bytes.equals(result.bytes));
});

test('a merge that is ours keeps ours byte for byte (composite still real)', async () => {
  const base = psd([actor, sky]);
  const ours = psd([actor, { ...sky, seed: 10 }]);
  const result = await merge(base, ours, base);
  assert.ok('bytes' in result);
  assert.ok(result.bytes.equals(ours));
});

test('one side reorders and regroups, the other edits: both kept', async () => {
  const base = psd([group([title]), actor, sky, logo]);
  // Theirs: Logo to the top, Actor moved into the group.
  const theirs = psd([logo, group([actor, title]), sky]);
  const ours = psd([group([{ ...title, seed: 30 }]), { ...actor, seed: 20 }, sky, logo]);
  const result = await merge(base, ours, theirs);
  assert.ok('bytes' in result, JSON.stringify(result));
  const want = psd([
    logo,
    group([
      { ...actor, seed: 20 },
      { ...title, seed: 30 },
    ]),
    sky,
  ]);
  assert.deepEqual(readLayers(result.bytes), readLayers(want));
});

test('layers added and deleted on either side land where that side put them', async () => {
  const base = psd([actor, sky]);
  const ours = psd([title, actor, sky]);
  const theirs = psd([actor, group([logo]), sky]);
  const result = await merge(base, ours, theirs);
  assert.ok('bytes' in result, JSON.stringify(result));
  assert.deepEqual(readLayers(result.bytes), readLayers(psd([title, actor, group([logo]), sky])));
  const deleted = await merge(base, psd([sky]), psd([actor, { ...sky, seed: 9 }]));
  assert.ok('bytes' in deleted);
  assert.deepEqual(readLayers(deleted.bytes), readLayers(psd([{ ...sky, seed: 9 }])));
});

test('conflicts name the layer, the group path, the order', async () => {
  const base = psd([group([title]), actor, sky]);
  const both = await merge(
    base,
    psd([group([title]), actor, { ...sky, seed: 5 }]),
    psd([group([title]), actor, { ...sky, seed: 6 }]),
  );
  assert.deepEqual(both, { conflict: "both sides changed layer 'Sky'" });
  const nested = await merge(
    base,
    psd([group([{ ...title, seed: 5 }]), actor, sky]),
    psd([group([{ ...title, hidden: true }]), actor, sky]),
  );
  assert.deepEqual(nested, { conflict: "both sides changed layer 'Text/Title'" });
  const order = await merge(
    base,
    psd([actor, group([title]), sky]),
    psd([sky, group([title]), actor]),
  );
  assert.deepEqual(order, { conflict: 'both sides changed the layer order' });
  const deleted = await merge(
    base,
    psd([group([title]), sky]),
    psd([group([title]), { ...actor, seed: 7 }, sky]),
  );
  assert.deepEqual(deleted, { conflict: "theirs changed layer 'Actor', ours deleted it" });
  const size = await merge(base, base, resized(base));
  assert.deepEqual(size, { conflict: 'the canvas size changed' });
});

/** The same document with a canvas one pixel wider (header only). */
function resized(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt32BE(copy.readUInt32BE(18) + 1, 18);
  return copy;
}

test('repeated names: told apart by lyid, else declined', async () => {
  const one: Spec = { name: 'Layer 1', seed: 1, id: 5 };
  const two: Spec = { name: 'Layer 1', seed: 2, id: 6 };
  const base = psd([one, two, sky]);
  const result = await merge(
    base,
    psd([{ ...one, seed: 11 }, two, sky]),
    psd([one, { ...two, seed: 12 }, sky]),
  );
  assert.ok('bytes' in result, JSON.stringify(result));
  assert.deepEqual(
    readLayers(result.bytes),
    readLayers(psd([{ ...one, seed: 11 }, { ...two, seed: 12 }, sky])),
  );
  // A rename keeps the lyid: the layer is the same one (renaming it is changing it).
  const renamed = await merge(
    base,
    psd([{ ...one, name: 'Moon' }, two, sky]),
    psd([one, { ...two, seed: 12 }, sky]),
  );
  assert.ok('bytes' in renamed, JSON.stringify(renamed));
  assert.deepEqual(
    readLayers(renamed.bytes),
    readLayers(psd([{ ...one, name: 'Moon' }, { ...two, seed: 12 }, sky])),
  );
  const both = await merge(
    base,
    psd([{ ...one, name: 'Moon' }, two, sky]),
    psd([{ ...one, seed: 11 }, two, sky]),
  );
  assert.deepEqual(both, { conflict: "both sides changed layer 'Layer 1'" });
  const noIds = psd([
    { name: 'Layer 1', seed: 1 },
    { name: 'Layer 1', seed: 2 },
  ]);
  const declined = await merge(
    noIds,
    noIds,
    psd([
      { name: 'Layer 1', seed: 3 },
      { name: 'Layer 1', seed: 2 },
    ]),
  );
  assert.ok('declined' in declined, JSON.stringify(declined));
});

test('malformed input is declined, never thrown', async () => {
  const base = psd([actor, sky]);
  for (const bad of [
    Buffer.from('not a psd at all'),
    base.subarray(0, 200),
    Buffer.concat([base.subarray(0, 40), Buffer.alloc(64, 0xff)]),
  ]) {
    const result = await merge(base, bad, base);
    assert.ok('declined' in result, JSON.stringify(result));
  }
});

test('PSB (8-byte lengths) merges the same way', async () => {
  const base = psd([actor, sky], { psb: true });
  const ours = psd([{ ...actor, seed: 20 }, sky], { psb: true });
  const theirs = psd([actor, { ...sky, seed: 10 }], { psb: true });
  const result = await runMerge(psdMergeStrategy, 'poster.psb', base, ours, theirs);
  assert.ok('bytes' in result, JSON.stringify(result));
  assert.deepEqual(
    readLayers(result.bytes),
    readLayers(
      psd([
        { ...actor, seed: 20 },
        { ...sky, seed: 10 },
      ]),
    ),
  );
});

test('describe lists changed, added and deleted layers', async () => {
  const before = bufferAccess(psd([actor, sky]));
  const after = bufferAccess(psd([title, { ...actor, seed: 9 }]));
  const lines = await psdMergeStrategy.describe!(before, after, { format: 'psd' } as never);
  assert.deepEqual(lines.sort(), [
    "layer 'Actor' changed",
    "layer 'Sky' deleted",
    "layer 'Title' added",
  ]);
});

type Edit = 'none' | 'pixels' | 'hide' | 'opacity' | 'delete';

test('property: random non-overlapping layer edits merge to the expected document', async () => {
  const names = ['A', 'B', 'C', 'D', 'E', 'F'];
  const edit = fc.constantFrom<Edit>('none', 'pixels', 'hide', 'opacity', 'delete');
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.boolean(), edit), { minLength: names.length, maxLength: names.length }),
      fc.constantFrom<'ours' | 'theirs' | 'none'>('ours', 'theirs', 'none'),
      fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
      async (edits, reorderer, shuffle) => {
        // Base: A B, a group G of C D, then E F (top first).
        const apply = (layers: Spec[], side: boolean): Spec[] =>
          layers.flatMap((spec) => {
            if (spec.children) return [{ ...spec, children: apply([...spec.children], side) }];
            const i = names.indexOf(spec.name);
            const [onOurs, kind] = edits[i]!;
            if (onOurs !== side || kind === 'none') return [spec];
            if (kind === 'delete') return [];
            if (kind === 'pixels') return [{ ...spec, seed: 100 + i }];
            if (kind === 'hide') return [{ ...spec, hidden: true }];
            return [{ ...spec, opacity: 0.5 }];
          });
        const leaf = (name: string): Spec => ({ name, seed: names.indexOf(name) + 1 });
        const base: Spec[] = [
          leaf('A'),
          leaf('B'),
          group(['C', 'D'].map(leaf), 'G'),
          leaf('E'),
          leaf('F'),
        ];
        // One side may also reorder the top level (a fixed permutation from `shuffle`).
        const reorder = (layers: Spec[]): Spec[] => {
          const out = [...layers];
          for (const [k, n] of shuffle.entries()) {
            const j = n % out.length;
            [out[k % out.length], out[j]] = [out[j]!, out[k % out.length]!];
          }
          return out;
        };
        const oursSpec = apply(reorderer === 'ours' ? reorder(base) : base, true);
        const theirsSpec = apply(reorderer === 'theirs' ? reorder(base) : base, false);
        const want = apply(apply(reorderer === 'none' ? base : reorder(base), true), false);
        const result = await merge(psd(base), psd(oursSpec), psd(theirsSpec));
        assert.ok('bytes' in result, JSON.stringify(result));
        assert.deepEqual(readLayers(result.bytes), readLayers(psd(want)));
      },
    ),
    { numRuns: 200 },
  );
});
