/**
 * The Krita layer merge on hand-made KRAs (maindoc.xml as Krita 5 writes it,
 * layer data and masks as members, renumbered on every save as Krita does):
 * identity by uuid across renames, masks part of their layer, conflicts
 * naming the layer, malformed files declined.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { kraMergeStrategy } from './kra.ts';
import {
  kra,
  readKra,
  runMerge,
  unzipAll,
  zipOf,
  type KraSpec,
} from '../../../../test/layered-media.ts';

const merge = (base: Buffer, ours: Buffer, theirs: Buffer) =>
  runMerge(kraMergeStrategy, 'art.kra', base, ours, theirs);

const sky: KraSpec = { name: 'Sky', uuid: '{1}', seed: 1 };
const actor: KraSpec = { name: 'Actor', uuid: '{2}', seed: 2, mask: 1 };
const title: KraSpec = { name: 'Title', uuid: '{3}', seed: 3 };
const group = (children: KraSpec[]): KraSpec => ({ name: 'Text', uuid: '{9}', children });

test('edits to different layers merge: a rename found by uuid, a mask, a layer in a group', async () => {
  const base = kra([group([title]), actor, sky]);
  // Ours renames Sky and repaints the title; theirs repaints the actor's mask and adds a layer.
  const ours = kra([group([{ ...title, seed: 30 }]), actor, { ...sky, name: 'Dusk sky' }], 'ours');
  const logo: KraSpec = { name: 'Logo', uuid: '{4}', seed: 4 };
  const theirs = kra([logo, group([title]), { ...actor, mask: 2 }, sky], 'theirs');
  const result = await merge(base, ours, theirs);
  assert.ok('bytes' in result, JSON.stringify(result));
  const want = kra([
    logo,
    group([{ ...title, seed: 30 }]),
    { ...actor, mask: 2 },
    { ...sky, name: 'Dusk sky' },
  ]);
  assert.deepEqual(await readKra(result.bytes), await readKra(want));
  // Document info and the composite are ours'.
  const members = await unzipAll(result.bytes, 'kra');
  assert.equal(members.get('documentinfo.xml')!.toString(), '<document-info>ours</document-info>');
  assert.equal(members.get('mergedimage.png')!.toString(), 'composite ours');
  // The shell around the layers is kept.
  assert.match(
    members.get('maindoc.xml')!.toString(),
    /<ProjectionBackgroundColor ColorData="AAAAAA=="\/>\n <\/IMAGE>/,
  );
});

test('conflicts name the layer, by its name on the sides', async () => {
  const base = kra([group([title]), actor, sky]);
  const both = await merge(
    base,
    kra([group([title]), actor, { ...sky, seed: 5 }]),
    kra([group([title]), actor, { ...sky, opacity: 128 }]),
  );
  assert.deepEqual(both, { conflict: "both sides changed layer 'Sky'" });
  const mask = await merge(
    base,
    kra([group([title]), { ...actor, mask: 5 }, sky]),
    kra([group([title]), { ...actor, mask: 6 }, sky]),
  );
  assert.deepEqual(mask, { conflict: "both sides changed layer 'Actor'" });
  const nested = await merge(
    base,
    kra([group([{ ...title, seed: 7 }]), actor, sky]),
    kra([group([]), actor, sky]),
  );
  assert.deepEqual(nested, { conflict: "ours changed layer 'Text/Title', theirs deleted it" });
});

test('malformed input is declined', async () => {
  const base = kra([actor, sky]);
  const ora = zipOf([
    ['mimetype', Buffer.from('image/openraster'), true],
    ['maindoc.xml', Buffer.from('<DOC/>')],
  ]);
  const badXml = zipOf([
    ['mimetype', Buffer.from('application/x-krita'), true],
    ['maindoc.xml', Buffer.from('<DOC><IMAGE><layers></IMAGE>')],
  ]);
  for (const bad of [Buffer.from('nope'), ora, badXml, base.subarray(0, 100)]) {
    const result = await merge(base, base, bad);
    assert.ok('declined' in result, JSON.stringify(result));
  }
});

type Edit = 'none' | 'pixels' | 'mask' | 'opacity' | 'rename' | 'delete';

test('property: random non-overlapping layer edits merge to the expected KRA', async () => {
  const names = ['A', 'B', 'C', 'D', 'E'];
  const leaf = (name: string, i: number): KraSpec => ({ name, uuid: `{${i}}`, seed: i, mask: i });
  const base: KraSpec[] = [
    leaf('A', 1),
    { name: 'G', uuid: '{9}', children: [leaf('B', 2), leaf('C', 3)] },
    leaf('D', 4),
    leaf('E', 5),
  ];
  const edit = fc.constantFrom<Edit>('none', 'pixels', 'mask', 'opacity', 'rename', 'delete');
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.boolean(), edit), { minLength: names.length, maxLength: names.length }),
      async (edits) => {
        const apply = (layers: readonly KraSpec[], side: boolean): KraSpec[] =>
          layers.flatMap((spec) => {
            if (spec.children) return [{ ...spec, children: apply(spec.children, side) }];
            const i = names.indexOf(
              spec.uuid === undefined ? '' : spec.name.replace(/ renamed$/, ''),
            );
            const [onOurs, kind] = edits[i]!;
            if (onOurs !== side || kind === 'none') return [spec];
            if (kind === 'delete') return [];
            if (kind === 'pixels') return [{ ...spec, seed: 100 + i }];
            if (kind === 'mask') return [{ ...spec, mask: 200 + i }];
            if (kind === 'rename') return [{ ...spec, name: `${spec.name} renamed` }];
            return [{ ...spec, opacity: 128 }];
          });
        const result = await merge(kra(base), kra(apply(base, true)), kra(apply(base, false)));
        assert.ok('bytes' in result, JSON.stringify(result));
        assert.deepEqual(
          await readKra(result.bytes),
          await readKra(kra(apply(apply(base, true), false))),
        );
      },
    ),
    { numRuns: 200 },
  );
});
