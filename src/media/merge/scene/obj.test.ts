/**
 * OBJ merge by group and MTL merge by material. OBJ files are written here in
 * three layouts (each group with its own vertices, all vertices first,
 * negative indices) and merged files are read back with a small reader of
 * this test's own that resolves every face to its vertex positions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { detectFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { writeMerged, type StrategyResult } from '../../merge-strategy.ts';
import { mtlMergeStrategy, objMergeStrategy } from './obj.ts';

/** A copy of a record without one key. */
function without<T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> {
  const copy = { ...record };
  delete copy[key];
  return copy;
}

type Vec3 = readonly [number, number, number];
type Triangle = readonly [Vec3, Vec3, Vec3];
interface Group {
  readonly material: string;
  readonly triangles: readonly Triangle[];
}
type Model = Readonly<Record<string, Group>>;
type Layout = 'local' | 'upfront' | 'negative';

/** An OBJ of `o` groups, each triangle with a normal and texture coordinates. */
function objText(model: Model, layout: Layout): string {
  const head = ['# made by obj.test.ts', 'mtllib robot.mtl'];
  const vertices: string[] = [];
  const body: string[] = [];
  let count = 0;
  for (const [name, group] of Object.entries(model)) {
    const local: string[] = [];
    const faces: string[] = [];
    for (const triangle of group.triangles) {
      const lines = [...triangle.map((p) => `v ${p.join(' ')}`), 'vt 0 0', 'vn 0 0 1'];
      if (layout === 'upfront') vertices.push(...lines);
      else local.push(...lines);
      const v = count * 3;
      count += 1;
      // Negative indices name the vertices just written: each face follows its own.
      if (layout === 'negative') local.push('f -3/-1/-1 -2/-1/-1 -1/-1/-1');
      else
        faces.push(
          `f ${v + 1}/${count}/${count} ${v + 2}/${count}/${count} ${v + 3}/${count}/${count}`,
        );
    }
    body.push(`o ${name}`, `usemtl ${group.material}`, 's off', ...local, ...faces);
  }
  return `${[...head, ...vertices, ...body].join('\n')}\n`;
}

/** Each group's material and faces, with every index resolved to the vertex it names. */
function readObj(text: string): Record<string, { material: string; faces: string[] }> {
  const data: Record<string, string[]> = { v: [], vt: [], vn: [] };
  const out: Record<string, { material: string; faces: string[] }> = {};
  let current: { material: string; faces: string[] } | undefined;
  for (const line of text.split('\n')) {
    const [keyword, ...args] = line.trim().split(/\s+/);
    if (keyword === 'v' || keyword === 'vt' || keyword === 'vn')
      data[keyword]!.push(args.map(Number).join(','));
    if (keyword === 'o') out[args.join(' ')] = current = { material: '', faces: [] };
    if (keyword === 'usemtl' && current) current.material = args.join(' ');
    if (keyword === 'f') {
      assert.ok(current, 'a face inside a group');
      const corners = args.map((corner) =>
        corner
          .split('/')
          .map((index, i) => {
            const list = data[['v', 'vt', 'vn'][i]!]!;
            const n = Number(index);
            const value = list[n < 0 ? list.length + n : n - 1];
            assert.ok(value !== undefined, `index ${index} resolves`);
            return value;
          })
          .join('|'),
      );
      current.faces.push(corners.join(' '));
    }
  }
  return out;
}

async function mergeText(
  strategy: typeof objMergeStrategy,
  ext: string,
  [base, ours, theirs]: [string | Buffer, string | Buffer, string | Buffer],
): Promise<{ result: StrategyResult; text?: string }> {
  const sides = {
    base: bufferAccess(Buffer.from(base)),
    ours: bufferAccess(Buffer.from(ours)),
    theirs: bufferAccess(Buffer.from(theirs)),
  };
  const result = await strategy.merge({
    path: `robot.${ext}`,
    format: detectFormat(new Uint8Array(0), `robot.${ext}`),
    ...sides,
  });
  if (!('merged' in result)) return { result };
  const chunks: Uint8Array[] = [];
  await writeMerged(result.merged, sides, (data) => {
    chunks.push(Buffer.from(data));
    return Promise.resolve();
  });
  return { result, text: Buffer.concat(chunks).toString('utf8') };
}

const tri = (x: number, y = 0): Triangle => [
  [x, y, 0],
  [x + 1, y, 0],
  [x, y + 1, 0],
];

const BASE: Model = {
  Cube: { material: 'Paint', triangles: [tri(0), tri(0, 1)] },
  Cone: { material: 'Chrome', triangles: [tri(5)] },
  Eye: { material: 'Paint', triangles: [tri(9)] },
};

for (const layout of ['local', 'upfront', 'negative'] as const) {
  test(`OBJ (${layout}): groups changed on different sides merge, indices renumbered`, async () => {
    // Ours gives the cube a third triangle (more vertices before the cone); theirs edits the
    // cone and adds a group, so theirs' indices must move past ours' new vertices.
    const ours: Model = {
      ...BASE,
      Cube: { material: 'Paint', triangles: [tri(0), tri(0, 1), tri(0, 2)] },
    };
    const theirs: Model = {
      ...BASE,
      Cone: { material: 'Gold', triangles: [tri(6), tri(7)] },
      Wing: { material: 'Chrome', triangles: [tri(-3)] },
    };
    const { result, text } = await mergeText(objMergeStrategy, 'obj', [
      objText(BASE, layout),
      objText(ours, layout),
      objText(theirs, layout),
    ]);
    assert.ok('merged' in result, JSON.stringify(result));
    const want: Model = { ...theirs, Cube: ours.Cube! };
    assert.deepEqual(readObj(text!), readObj(objText(want, 'local')));
    assert.deepEqual(Object.keys(readObj(text!)), ['Cube', 'Cone', 'Eye', 'Wing']);
    assert.doesNotMatch(text!, /^f .*-/m, 'indices are written positive');
  });
}

test('OBJ: a file with each group holding its vertices merges to the same text layout', async () => {
  const theirs: Model = { ...BASE, Eye: { material: 'Glass', triangles: [tri(9)] } };
  const { text } = await mergeText(objMergeStrategy, 'obj', [
    objText(BASE, 'local'),
    objText(BASE, 'local'),
    objText(theirs, 'local'),
  ]);
  assert.equal(text, objText(theirs, 'local'));
});

test('OBJ: both sides change one group: a conflict naming it; a deletion against a change too', async () => {
  const { result } = await mergeText(objMergeStrategy, 'obj', [
    objText(BASE, 'local'),
    objText({ ...BASE, Cube: { material: 'Paint', triangles: [tri(1)] } }, 'local'),
    objText({ ...BASE, Cube: { material: 'Paint', triangles: [tri(2)] } }, 'local'),
  ]);
  assert.deepEqual(result, { conflict: "both sides changed group 'Cube'" });
  const rest = without(BASE, 'Cone');
  const { result: deleted } = await mergeText(objMergeStrategy, 'obj', [
    objText(BASE, 'local'),
    objText(rest, 'local'),
    objText({ ...BASE, Cone: { material: 'Gold', triangles: [tri(5)] } }, 'local'),
  ]);
  assert.deepEqual(deleted, { conflict: "ours deleted group 'Cone', which theirs changed" });
});

test('OBJ: a group deleted on one side and unchanged on the other is removed', async () => {
  const rest = without(BASE, 'Cone');
  const theirs: Model = { ...BASE, Eye: { material: 'Glass', triangles: [tri(9)] } };
  const { text } = await mergeText(objMergeStrategy, 'obj', [
    objText(BASE, 'upfront'),
    objText(rest, 'upfront'),
    objText(theirs, 'upfront'),
  ]);
  const want = without(theirs, 'Cone');
  assert.deepEqual(readObj(text!), readObj(objText(want, 'local')));
});

test('OBJ: indices out of range, groups that repeat, curves and text that is not UTF-8 are declined', async () => {
  const good = objText(BASE, 'local');
  const bad = [
    `${good}f 1 2 99\n`,
    `${good}f -40 1 2\n`,
    `${good}o Cube\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n`,
    `${good}o Curve\ncstype bspline\ncurv 0 1 1 2\nend\n`,
    Buffer.concat([Buffer.from(good), Buffer.from([0xff, 0xfe, 0x0a])]),
  ];
  for (const input of bad) {
    const { result } = await mergeText(objMergeStrategy, 'obj', [good, input, good]);
    assert.ok('declined' in result, JSON.stringify(result));
  }
});

test('property: random disjoint group edits on each side merge to both (200 runs)', async () => {
  const names = ['A', 'B', 'C', 'D', 'E'];
  const base: Model = Object.fromEntries(
    names.map((n, i) => [n, { material: 'Paint', triangles: [tri(i)] }]),
  );
  const groupEdit = fc.record({
    who: fc.constantFrom('ours', 'theirs', 'none', 'delete-ours', 'delete-theirs'),
    triangles: fc.array(fc.integer({ min: -9, max: 9 }), { minLength: 1, maxLength: 3 }),
  });
  const arbitrary = fc.record({
    layout: fc.constantFrom<Layout>('local', 'upfront', 'negative'),
    edits: fc.tuple(...names.map(() => groupEdit)),
    added: fc.constantFrom('ours', 'theirs', 'none'),
  });
  await fc.assert(
    fc.asyncProperty(arbitrary, async ({ layout, edits, added }) => {
      const ours: Record<string, Group> = { ...base };
      const theirs: Record<string, Group> = { ...base };
      const want: Record<string, Group> = { ...base };
      edits.forEach(({ who, triangles }, i) => {
        const name = names[i]!;
        const group: Group = {
          material: `M${triangles.length}`,
          triangles: triangles.map((x) => tri(x, i)),
        };
        if (who === 'ours' || who === 'theirs') {
          (who === 'ours' ? ours : theirs)[name] = group;
          want[name] = group;
        } else if (who !== 'none') {
          delete (who === 'delete-ours' ? ours : theirs)[name];
          delete want[name];
        }
      });
      if (added !== 'none') {
        const group: Group = { material: 'New', triangles: [tri(20), tri(21)] };
        (added === 'ours' ? ours : theirs).Z = group;
        want.Z = group;
      }
      const { result, text } = await mergeText(objMergeStrategy, 'obj', [
        objText(base, layout),
        objText(ours, layout),
        objText(theirs, layout),
      ]);
      assert.ok('merged' in result, JSON.stringify(result));
      assert.deepEqual(readObj(text!), readObj(objText(want, 'local')));
    }),
    { numRuns: 200 },
  );
});

const MTL_BASE = [
  '# materials',
  'newmtl Paint',
  'Kd 1 0 0',
  'Ns 10',
  '',
  'newmtl Chrome',
  'Kd 0.5 0.5 0.5',
  'illum 3',
  '',
].join('\n');

/** Each material's statements, by name. */
function readMtl(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const [keyword, ...args] = line.trim().split(/\s+/);
    if (keyword === 'newmtl') out[args.join(' ')] = current = [];
    else if (keyword && current) current.push(line.trim());
  }
  return out;
}

test('MTL: materials changed or added on different sides merge; one changed on both conflicts', async () => {
  const ours = MTL_BASE.replace('Kd 1 0 0', 'Kd 0 1 0');
  const theirs = `${MTL_BASE.replace('illum 3', 'illum 2')}newmtl Glass\nKd 0 0 1\nd 0.5\n`;
  const { result, text } = await mergeText(mtlMergeStrategy, 'mtl', [MTL_BASE, ours, theirs]);
  assert.ok('merged' in result, JSON.stringify(result));
  assert.deepEqual(readMtl(text!), {
    Paint: ['Kd 0 1 0', 'Ns 10'],
    Chrome: ['Kd 0.5 0.5 0.5', 'illum 2'],
    Glass: ['Kd 0 0 1', 'd 0.5'],
  });
  const { result: conflict } = await mergeText(mtlMergeStrategy, 'mtl', [
    MTL_BASE,
    ours,
    MTL_BASE.replace('Kd 1 0 0', 'Kd 0 0 1'),
  ]);
  assert.deepEqual(conflict, { conflict: "both sides changed material 'Paint'" });
  const { result: repeated } = await mergeText(mtlMergeStrategy, 'mtl', [
    MTL_BASE,
    `${MTL_BASE}newmtl Paint\nKd 1 1 1\n`,
    theirs,
  ]);
  assert.ok('declined' in repeated);
});

test('describe names the groups and materials that changed', async () => {
  const before = objText(BASE, 'local');
  const rest = without(BASE, 'Eye');
  const after = objText(
    { ...rest, Cube: { material: 'Gold', triangles: [tri(0)] }, Fin: BASE.Eye! },
    'upfront',
  );
  const format = detectFormat(new Uint8Array(0), 'robot.obj');
  assert.deepEqual(
    await objMergeStrategy.describe!(
      bufferAccess(Buffer.from(before)),
      bufferAccess(Buffer.from(after)),
      format,
    ),
    ["group 'Cube' changed", "group 'Eye' removed", "group 'Fin' added"],
  );
});
