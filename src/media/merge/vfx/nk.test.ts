/**
 * Nuke script merge, called directly: the hand-written comp merges edits to
 * different nodes and knobs into the expected graph (read back by a reader
 * written apart from the parser), conflicts name node and knob, what does
 * not parse is declined, and random non-overlapping edits merge to the graph
 * both sides' edits make (200 runs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { MediaFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import type { StrategyResult } from '../../merge-strategy.ts';
import { nodeBlock, parseNukeScript, writeNukeScript, type NukeScript } from './nk-script.ts';
import { COMP, readGraph, type GraphNode } from './nk-fixture.ts';
import { mergeNukeScripts, nukeMergeStrategy } from './nk.ts';

function merge(base: string, ours: string, theirs: string): StrategyResult {
  return mergeNukeScripts(Buffer.from(base), Buffer.from(ours), Buffer.from(theirs));
}

function mergedText(result: StrategyResult): string {
  if (!('merged' in result)) assert.fail(`not merged: ${JSON.stringify(result)}`);
  assert.ok(result.merged instanceof Uint8Array);
  return Buffer.from(result.merged).toString('utf8');
}

/** Replaces exactly one occurrence. */
function edit(text: string, from: string, to: string): string {
  assert.equal(text.split(from).length, 2, `'${from}' once in the script`);
  return text.replace(from, to);
}

test('the comp reads back as the graph it was written as, and writes back byte for byte', () => {
  const script = parseNukeScript(COMP);
  assert.equal(
    writeNukeScript(script, (node) => node.block),
    COMP,
  );
  const graph = readGraph(COMP);
  for (const [path, node] of graph) {
    assert.deepEqual(script.nodes.get(path)?.inputs, node.inputs, path);
    assert.equal(script.nodes.get(path)?.className, node.className, path);
  }
  assert.deepEqual(graph.get('Merge1')?.inputs, ['Constant1', 'Blur1']);
  assert.deepEqual(graph.get('Viewer1')?.inputs, ['Blur1']);
  assert.deepEqual(graph.get('Write1')?.inputs, ['Group1']);
  assert.deepEqual(graph.get('Group1.Output1')?.inputs, ['Group1.Blur2']);
});

test('Blur1.size on one side, a Dot between Grade1 and Blur1 and Grade1.white on the other, merge', () => {
  const ours = edit(COMP, ' size 4\n', ' size 9\n');
  const dot = 'Dot {\n name Dot1\n xpos 0\n ypos -90\n}\n';
  const theirs = edit(
    edit(COMP, ' white 1.1\n', ' white 1.4\n'),
    ' ypos -120\n}\n',
    ` ypos -120\n}\n${dot}`,
  );
  const text = mergedText(merge(COMP, ours, theirs));
  const graph = readGraph(text);
  const expected = new Map<string, Omit<GraphNode, 'knobs'>>([
    ['Read1', { className: 'Read', inputs: [] }],
    ['Grade1', { className: 'Grade', inputs: ['Read1'] }],
    ['Dot1', { className: 'Dot', inputs: ['Grade1'] }],
    ['Blur1', { className: 'Blur', inputs: ['Dot1'] }],
    ['Constant1', { className: 'Constant', inputs: [] }],
    ['Merge1', { className: 'Merge2', inputs: ['Constant1', 'Blur1'] }],
    ['Group1', { className: 'Group', inputs: ['Merge1'] }],
    ['Group1.Input1', { className: 'Input', inputs: [] }],
    ['Group1.Blur2', { className: 'Blur', inputs: ['Group1.Input1'] }],
    ['Group1.Output1', { className: 'Output', inputs: ['Group1.Blur2'] }],
    ['Write1', { className: 'Write', inputs: ['Group1'] }],
    ['Viewer1', { className: 'Viewer', inputs: ['Blur1'] }],
  ]);
  assert.deepEqual(
    new Map([...graph].map(([name, { className, inputs }]) => [name, { className, inputs }])),
    expected,
  );
  assert.equal(graph.get('Blur1')?.knobs.size, '9');
  assert.equal(graph.get('Grade1')?.knobs.white, '1.4');
  // Untouched nodes keep their text; the header and the group come through as written.
  for (const block of [dot, COMP.slice(COMP.indexOf('Merge2 {'), COMP.indexOf('Write {'))]) {
    assert.ok(text.includes(block), block);
  }
  assert.ok(text.startsWith(COMP.slice(0, COMP.indexOf('Read {'))));
  // Deterministic, and the same whichever side is ours (up to the order of equal parts).
  assert.equal(mergedText(merge(COMP, ours, theirs)), text);
  assert.deepEqual(readGraph(mergedText(merge(COMP, theirs, ours))), graph);
});

test('a side that changed nothing gives the other side byte for byte', () => {
  // An unused set line and a blank line the serializer would not write.
  const ours = edit(COMP, ' size 4\n', ' size 9\n\n').replace(
    'Write {',
    'set Nunused [stack 0]\nWrite {',
  );
  assert.equal(mergedText(merge(COMP, ours, COMP)), ours);
  assert.equal(mergedText(merge(COMP, COMP, ours)), ours);
});

test('a knob both sides changed differently is a conflict naming node and knob', () => {
  const ours = edit(COMP, ' size 4\n', ' size 9\n');
  const theirs = edit(COMP, ' size 4\n', ' size 12\n');
  assert.deepEqual(merge(COMP, ours, theirs), {
    conflict: "both sides changed node 'Blur1' knob 'size'",
  });
  const inGroup = edit(COMP, '  size 2\n', '  size 3\n');
  assert.deepEqual(merge(COMP, inGroup, edit(COMP, '  size 2\n', '  size 5\n')), {
    conflict: "both sides changed node 'Group1.Blur2' knob 'size'",
  });
  // The same change on both sides is no conflict.
  assert.equal(mergedText(merge(COMP, ours, ours)), ours);
});

test('both sides rewiring a node differently is a conflict; deleting what the other changed too', () => {
  // Ours empties Merge1's second input; theirs plugs a new Constant2 into it.
  const swapped = edit(
    COMP,
    'set N5a1b0 [stack 0]\nConstant {',
    'set N5a1b0 [stack 0]\npush 0\nConstant {',
  );
  const rewired = edit(
    COMP,
    'set N5a1b0 [stack 0]\nConstant {',
    'set N5a1b0 [stack 0]\nConstant {\n inputs 0\n name Constant2\n}\nConstant {',
  );
  const a = readGraph(swapped).get('Merge1');
  const b = readGraph(rewired).get('Merge1');
  assert.notDeepEqual(a?.inputs, b?.inputs);
  assert.deepEqual(merge(COMP, swapped, rewired), {
    conflict: "both sides changed the inputs of node 'Merge1'",
  });

  const deleted = edit(
    COMP,
    'Constant {\n inputs 0\n color {0.1 0.2 0.3 1}\n name Constant1\n xpos 200\n ypos -60\n}\n',
    'push 0\n',
  );
  const changed = edit(COMP, 'color {0.1 0.2 0.3 1}', 'color {1 0 0 1}');
  assert.deepEqual(merge(COMP, deleted, changed), {
    conflict: "ours deleted node 'Constant1' that theirs changed",
  });
  // Deleted on one side and untouched on the other: gone, its consumer rewired as the deleting side did.
  const graph = readGraph(mergedText(merge(COMP, deleted, edit(COMP, ' size 4\n', ' size 9\n'))));
  assert.equal(graph.has('Constant1'), false);
  assert.deepEqual(graph.get('Merge1')?.inputs, [null, 'Blur1']);
  assert.equal(graph.get('Blur1')?.knobs.size, '9');
});

test('what does not parse is declined, never merged by guess', () => {
  const cases: [string, string][] = [
    ['unbalanced', edit(COMP, 'color {0.1 0.2 0.3 1}', 'color {0.1 0.2 0.3 1')],
    ['clone', edit(COMP, 'Constant {', 'clone node7f|Constant|1 {')],
    ['underflow', `Root {\n inputs 0\n}\nMerge2 {\n inputs 2\n name M\n}\n`],
    ['unknown variable', edit(COMP, 'push $N5a1b0', 'push $N0000')],
    ['no name', edit(COMP, ' name Blur1\n', '')],
    ['no end_group', COMP.replace('end_group\n', '')],
  ];
  for (const [what, broken] of cases) {
    const result = merge(COMP, broken, edit(COMP, ' size 4\n', ' size 9\n'));
    assert.ok('declined' in result, `${what}: ${JSON.stringify(result)}`);
  }
  const comp = Buffer.from(COMP);
  const binary = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
  assert.ok('declined' in mergeNukeScripts(comp, comp, binary));
  assert.ok('declined' in merge(COMP, COMP, 'version 14.0 v5\n# no nodes\n'));
});

// ---- random graphs: the property ----

interface ModelNode {
  /** The path: `n3` at the top, `G.m2` inside the group G. */
  name: string;
  parent: '' | 'G';
  className: string;
  inputs: (string | null)[];
  size: number;
}

const local = (path: string): string => path.slice(path.lastIndexOf('.') + 1);
const variable = (path: string): string => `V${path.replace('.', '_')}`;

/**
 * A script in another style than the serializer's: every input pushed, every
 * node `set`. The group's nodes follow it in the list.
 */
function render(nodes: readonly ModelNode[]): string {
  let out = 'version 14.0 v5\nRoot {\n inputs 0\n name /tmp/p.nk\n}\n';
  let inGroup = false;
  const close = () => {
    if (inGroup) out += `end_group\nset ${variable('G')} [stack 0]\n`;
    inGroup = false;
  };
  for (const node of nodes) {
    if (node.parent === '') close();
    for (const input of [...node.inputs].reverse()) {
      out += input === null ? 'push 0\n' : `push $${variable(input)}\n`;
    }
    out += `${node.className} {\n inputs ${node.inputs.length}\n size ${node.size}\n name ${local(node.name)}\n}\n`;
    if (node.className === 'Group') inGroup = true;
    else out += `set ${variable(node.name)} [stack 0]\n`;
  }
  close();
  return out;
}

function graphOf(nodes: readonly ModelNode[]): Map<string, GraphNode> {
  return new Map(
    nodes.map((n) => [
      n.name,
      {
        className: n.className,
        inputs: n.inputs,
        knobs: { size: String(n.size), name: local(n.name) },
      },
    ]),
  );
}

type Edit = { kind: 'knob'; size: number } | { kind: 'insert'; size: number } | { kind: 'delete' };

/** Applies one side's edits (keyed by the index of a node in `base`) to a copy of `start`. */
function applyEdits(
  base: readonly ModelNode[],
  edits: readonly (readonly [number, Edit])[],
  side: string,
  start: readonly ModelNode[] = base,
): ModelNode[] {
  let nodes = start.map((n) => ({ ...n, inputs: [...n.inputs] }));
  for (const [index, change] of edits) {
    const name = base[index]?.name ?? '';
    const at = nodes.findIndex((n) => n.name === name);
    const node = nodes[at];
    if (!node) continue;
    if (change.kind === 'knob') node.size = change.size;
    else if (change.kind === 'delete') nodes = nodes.filter((n) => n.name !== name);
    else {
      const added: ModelNode = {
        name: `${node.parent === 'G' ? 'G.' : ''}${side}Dot${index}`,
        parent: node.parent,
        className: 'Dot',
        inputs: [node.inputs[0] ?? null],
        size: change.size,
      };
      node.inputs[0] = added.name;
      nodes.splice(at, 0, added);
    }
  }
  return nodes;
}

/**
 * A random graph: Read0 and nodes at the top, a group G (Input1 → nodes →
 * Output1) fed by one of them, a Write after it; and random edits of the
 * random nodes, each node edited by one side at most.
 */
const arbitraryScene = fc
  .array(
    fc.record({
      className: fc.constantFrom('Blur', 'Grade', 'Merge2'),
      inGroup: fc.boolean(),
      pick: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
      size: fc.integer({ min: 0, max: 99 }),
      owner: fc.constantFrom('none', 'ours', 'theirs'),
      change: fc.constantFrom('knob', 'insert', 'delete'),
      newSize: fc.integer({ min: 100, max: 199 }),
    }),
    { minLength: 1, maxLength: 8 },
  )
  .map((specs) => {
    const top: ModelNode[] = [
      { name: 'Read0', parent: '', className: 'Read', inputs: [], size: 1 },
    ];
    const inner: ModelNode[] = [
      { name: 'G.Input1', parent: 'G', className: 'Input', inputs: [], size: 1 },
    ];
    const edited: [ModelNode, (typeof specs)[number]][] = [];
    specs.forEach((spec, i) => {
      const scope = spec.inGroup ? inner : top;
      const count = spec.className === 'Merge2' ? 2 : 1;
      const inputs = spec.pick
        .slice(0, count)
        .map((p) => (p % 7 === 6 ? null : (scope[p % scope.length]?.name ?? null)));
      const node: ModelNode = {
        name: spec.inGroup ? `G.m${i + 1}` : `n${i + 1}`,
        parent: spec.inGroup ? 'G' : '',
        className: spec.className,
        inputs,
        size: spec.size,
      };
      scope.push(node);
      edited.push([node, spec]);
    });
    const feed = top[(specs[0]?.pick[2] ?? 0) % top.length]?.name ?? null;
    const base: ModelNode[] = [
      ...top,
      { name: 'G', parent: '', className: 'Group', inputs: [feed], size: 1 },
      ...inner,
      {
        name: 'G.Output1',
        parent: 'G',
        className: 'Output',
        inputs: [inner.at(-1)?.name ?? null],
        size: 1,
      },
      { name: 'Write9', parent: '', className: 'Write', inputs: ['G'], size: 1 },
    ];
    const consumed = new Set(base.flatMap((n) => n.inputs));
    const edits: Record<'ours' | 'theirs', [number, Edit][]> = { ours: [], theirs: [] };
    for (const [node, spec] of edited) {
      if (spec.owner === 'none') continue;
      let change: Edit = { kind: 'knob', size: spec.newSize };
      if (spec.change === 'insert') change = { kind: 'insert', size: spec.newSize };
      if (spec.change === 'delete' && !consumed.has(node.name)) change = { kind: 'delete' };
      edits[spec.owner].push([base.indexOf(node), change]);
    }
    return { base, edits };
  });

test('random non-overlapping knob edits, insertions and deletions, in and out of a group, merge to the expected graph (200 runs)', () => {
  fc.assert(
    fc.property(arbitraryScene, ({ base, edits }) => {
      const ours = applyEdits(base, edits.ours, 'ours');
      const theirs = applyEdits(base, edits.theirs, 'theirs');
      const expected = applyEdits(base, edits.theirs, 'theirs', ours);
      const result = merge(render(base), render(ours), render(theirs));
      const text = mergedText(result);
      assert.deepEqual(readGraph(text), graphOf(expected));
    }),
    { numRuns: 200 },
  );
});

test('random edits of one node on both sides conflict naming it (50 runs)', () => {
  fc.assert(
    fc.property(arbitraryScene, fc.nat(), ({ base }, pick) => {
      const index = 1 + (pick % (base.length - 1));
      const node = base[index];
      fc.pre(node !== undefined && node.className !== 'Group');
      const ours = applyEdits(base, [[index, { kind: 'knob', size: 500 }]], 'ours');
      const theirs = applyEdits(base, [[index, { kind: 'knob', size: 600 }]], 'theirs');
      assert.deepEqual(merge(render(base), render(ours), render(theirs)), {
        conflict: `both sides changed node '${node?.name}' knob 'size'`,
      });
    }),
    { numRuns: 50 },
  );
});

test('the serializer writes any DAG as pushes and sets that read back as the same DAG', () => {
  fc.assert(
    fc.property(arbitraryScene, ({ base }) => {
      // Shuffle nothing: the order is topological; write with the serializer, read with readGraph.
      const script: NukeScript = parseNukeScript(render(base));
      const text = writeNukeScript(script, (node, depth) => nodeBlock(node, depth));
      assert.deepEqual(readGraph(text), graphOf(base));
    }),
    { numRuns: 100 },
  );
});

test('multi-line knobs, add_layer lines and cut inputs come through; groups merge inside', () => {
  const base = edit(
    edit(
      COMP,
      ' operation over\n',
      ' operation over\n knobChanged {\nn = nuke.thisNode()\nif n: pass\n}\n',
    ),
    'Constant {\n',
    'add_layer {depth depth.Z}\nConstant {\n',
  ).replace('push $N5a1b0\nViewer {', 'push $cut\nViewer {');
  const script = parseNukeScript(base);
  // The Viewer no longer takes Blur1, so nothing pushes it again: its `set` goes.
  assert.equal(
    writeNukeScript(script, (node) => node.block),
    base.replace('set N5a1b0 [stack 0]\n', ''),
  );
  assert.deepEqual(script.nodes.get('Viewer1')?.inputs, ['$cut']);
  assert.equal(script.nodes.get('Constant1')?.prefix, 'add_layer {depth depth.Z}\n');
  assert.equal(
    script.nodes.get('Merge1')?.knobs.find((k) => k.name === 'knobChanged')?.text,
    'knobChanged {\nn = nuke.thisNode()\nif n: pass\n}',
  );

  // Ours edits the multi-line knob and adds a node inside the group; theirs edits the group's knobs.
  const ours = edit(
    edit(base, 'if n: pass', 'if n: n.knob("mix").setValue(0.5)'),
    '  name Blur2\n }\n',
    '  name Blur2\n }\n Dot {\n  name Dot9\n }\n',
  );
  const theirs = edit(edit(base, ' ypos 60\n', ' ypos 80\n'), '  size 2\n', '  size 6\n');
  const text = mergedText(merge(base, ours, theirs));
  const merged = parseNukeScript(text);
  assert.match(
    merged.nodes.get('Merge1')?.knobs.find((k) => k.name === 'knobChanged')?.text ?? '',
    /setValue\(0\.5\)/,
  );
  assert.deepEqual(merged.nodes.get('Group1.Dot9')?.inputs, ['Group1.Blur2']);
  assert.deepEqual(merged.nodes.get('Group1.Output1')?.inputs, ['Group1.Dot9']);
  assert.ok(text.includes('  size 6\n'));
  assert.ok(text.includes(' ypos 80\n'));
  assert.deepEqual(merged.nodes.get('Viewer1')?.inputs, ['$cut']);
  assert.ok(text.includes('add_layer {depth depth.Z}\nConstant {\n'));

  // Deleting the group while the other side changes a node in it is a conflict.
  const start = base.indexOf('Group {\n');
  const end = base.indexOf('end_group\n') + 'end_group\n'.length;
  const noGroup = base.slice(0, start) + base.slice(end);
  const result = merge(base, noGroup, theirs);
  assert.ok('conflict' in result && /Group1/.test(result.conflict), JSON.stringify(result));
});

test('describe names the nodes and knobs that changed', async () => {
  const after = edit(COMP, ' size 4\n', ' size 9\n');
  const lines = await nukeMergeStrategy.describe?.(
    bufferAccess(Buffer.from(COMP)),
    bufferAccess(Buffer.from(edit(after, ' white 1.1\n', ''))),
    { format: 'nk' } as MediaFormat,
  );
  assert.deepEqual(lines, [
    "node 'Grade1' changed: knob 'white'",
    "node 'Blur1' changed: knob 'size'",
  ]);
});

test('a pasted snippet (set cut_paste_input on the empty stack, no indentation) merges by node', () => {
  const snippet = [
    'set cut_paste_input [stack 0]',
    'version 15.0 v4',
    'push 0',
    'push $cut_paste_input',
    'Group {',
    'inputs 2',
    'name LerpCam',
    'addUserKnob {20 Controls}',
    'addUserKnob {41 lrp l Lerp T lerp_cam.lrp}',
    'xpos -642',
    '}',
    'Input {',
    'inputs 0',
    'name InputA',
    '}',
    'Output {',
    'name Output1',
    '}',
    'end_group',
    'Blur {',
    'size 3',
    'name Blur1',
    '}',
    '',
  ].join('\n');
  const script = parseNukeScript(snippet);
  assert.deepEqual(script.nodes.get('LerpCam')?.inputs, ['$cut_paste_input', null]);
  assert.deepEqual(script.nodes.get('LerpCam.Output1')?.inputs, ['LerpCam.InputA']);
  assert.equal(
    writeNukeScript(script, (node) => node.block),
    snippet,
  );
  const ours = edit(
    snippet,
    'addUserKnob {41 lrp l Lerp T lerp_cam.lrp}',
    'addUserKnob {41 lrp l Mix T lerp_cam.lrp}',
  );
  const theirs = edit(snippet, 'size 3', 'size 8');
  const merged = parseNukeScript(mergedText(merge(snippet, ours, theirs)));
  assert.equal(merged.nodes.get('Blur1')?.knobs.find((k) => k.name === 'size')?.text, 'size 8');
  assert.equal(
    merged.nodes.get('LerpCam')?.knobs.find((k) => k.key === 'addUserKnob#2')?.text,
    'addUserKnob {41 lrp l Mix T lerp_cam.lrp}',
  );
  assert.deepEqual(merged.nodes.get('LerpCam')?.inputs, ['$cut_paste_input', null]);
});
