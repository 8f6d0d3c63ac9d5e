/**
 * Nuke script merge: a three-way merge of the node graph (nk-script.ts),
 * node by node (identity: the name within its group), knob by knob within a
 * node, the wiring (a node's input list) as one part per node. The merged
 * graph is written back with push/set lines recomputed, so each node's
 * inputs are those of the side its wiring came from; nodes nothing changed
 * keep their text byte for byte. See docs/merge/vfx.md.
 */
import type { RandomAccess } from '../../info/random-access.ts';
import {
  readSides,
  readWhole,
  type MergeStrategy,
  type StrategyResult,
} from '../../merge-strategy.ts';
import {
  isNodeInput,
  nodeBlock,
  NukeParseError,
  parseNukeScript,
  ROOT,
  writeNukeScript,
  type NukeKnob,
  type NukeNode,
  type NukeScript,
} from './nk-script.ts';
import { mergeOrder } from './order.ts';

class MergeConflict extends Error {}

const display = (path: string): string => `node '${path}'`;

/** Three-way choice for one part; `same` says two versions are equal. */
function pick<T>(
  base: T | undefined,
  ours: T | undefined,
  theirs: T | undefined,
  same: (a: T | undefined, b: T | undefined) => boolean,
  conflict: () => string,
): T | undefined {
  if (same(ours, theirs) || same(base, theirs)) return ours;
  if (same(base, ours)) return theirs;
  throw new MergeConflict(conflict());
}

const sameText = (a: string | undefined, b: string | undefined): boolean => a === b;

function sameKnobs(a: readonly NukeKnob[], b: readonly NukeKnob[]): boolean {
  return a.length === b.length && a.every((k, i) => k.key === b[i]?.key && k.text === b[i]?.text);
}

function sameWiring(a: NukeNode | undefined, b: NukeNode | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.inputsText === b.inputsText &&
    a.inputs.length === b.inputs.length &&
    a.inputs.every((input, i) => input === b.inputs[i])
  );
}

/** Everything that is the node's own: class, the lines before it, knobs, wiring. */
export function sameNode(a: NukeNode | undefined, b: NukeNode | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    a.className === b.className &&
    a.prefix === b.prefix &&
    sameKnobs(a.knobs, b.knobs) &&
    sameWiring(a, b)
  );
}

function mergeKnobs(path: string, base: NukeNode, ours: NukeNode, theirs: NukeNode): NukeKnob[] {
  const index = (node: NukeNode) => new Map(node.knobs.map((k) => [k.key, k]));
  const [b, o, t] = [index(base), index(ours), index(theirs)];
  const same = (x: NukeKnob | undefined, y: NukeKnob | undefined) => x?.text === y?.text;
  const merged = new Map<string, NukeKnob>();
  for (const key of new Set([...o.keys(), ...t.keys(), ...b.keys()])) {
    const knob = pick(b.get(key), o.get(key), t.get(key), same, () => {
      const name = (o.get(key) ?? t.get(key) ?? b.get(key))?.name ?? key;
      return `both sides changed ${display(path)} knob '${name}'`;
    });
    if (knob) merged.set(key, knob);
  }
  return mergeOrder(
    ours.knobs.map((k) => k.key),
    theirs.knobs.map((k) => k.key),
    (key) => merged.has(key),
  ).map((key) => merged.get(key) as NukeKnob);
}

/** One node present on all three sides, merged part by part. */
function mergeNode(base: NukeNode, ours: NukeNode, theirs: NukeNode): NukeNode {
  const path = ours.path;
  const className = pick(base.className, ours.className, theirs.className, sameText, () => {
    return `both sides changed the class of ${display(path)}`;
  });
  const prefix = pick(base.prefix, ours.prefix, theirs.prefix, sameText, () => {
    return `both sides changed the lines before ${display(path)}`;
  });
  const wiring = pick(base, ours, theirs, sameWiring, () => {
    return `both sides changed the inputs of ${display(path)}`;
  });
  const knobs = mergeKnobs(path, base, ours, theirs);
  return {
    ...ours,
    className: className ?? ours.className,
    prefix: prefix ?? '',
    knobs,
    inputsText: wiring?.inputsText,
    inputs: wiring?.inputs ?? [],
    // A group stays one unless the side that changed its class made it something else.
    isGroup: (className === ours.className ? ours : theirs).isGroup,
  };
}

/** The merged graph; throws MergeConflict naming the part. */
function mergeScripts(
  base: NukeScript,
  ours: NukeScript,
  theirs: NukeScript,
): { script: NukeScript; fromTheirs: string[]; raw: Map<string, NukeNode> } {
  const preamble = pick(base.preamble, ours.preamble, theirs.preamble, sameText, () => {
    return 'both sides changed the script header';
  });
  const trailer = pick(base.trailer, ours.trailer, theirs.trailer, sameText, () => {
    return 'both sides changed the end of the script';
  });
  const nodes = new Map<string, NukeNode>();
  // The side whose text a merged node can keep, when it equals that side's node.
  const raw = new Map<string, NukeNode>();
  const fromTheirs: string[] = [];
  const paths = new Set([...ours.nodes.keys(), ...theirs.nodes.keys(), ...base.nodes.keys()]);
  for (const path of paths) {
    const [b, o, t] = [base.nodes.get(path), ours.nodes.get(path), theirs.nodes.get(path)];
    let node: NukeNode | undefined;
    if (b && o && t) node = mergeNode(b, o, t);
    else {
      node = pick(b, o, t, sameNode, () => {
        if (!b) return `both sides added ${display(path)}`;
        return o
          ? `theirs deleted ${display(path)} that ours changed`
          : `ours deleted ${display(path)} that theirs changed`;
      });
    }
    if (!node) continue;
    nodes.set(path, node);
    const source = [o, t].find(
      (side) => side && sameNode(side, node) && side.isGroup === node.isGroup,
    );
    if (source) raw.set(path, source);
    if (!sameNode(node, o)) fromTheirs.push(path);
  }

  const order = new Map<string, string[]>();
  const scopes = new Set(['', ...[...nodes.values()].filter((n) => n.isGroup).map((n) => n.path)]);
  for (const node of nodes.values()) {
    if (!scopes.has(node.parent)) {
      throw new MergeConflict(
        `${display(node.path)} is in group '${node.parent}' that the merge deletes`,
      );
    }
    for (const input of node.inputs) {
      if (isNodeInput(input) && !nodes.has(input)) {
        throw new MergeConflict(
          `${display(node.path)} is wired to ${display(input)} that the merge deletes`,
        );
      }
    }
  }
  for (const scope of scopes) {
    const listed = mergeOrder(
      ours.order.get(scope) ?? [],
      theirs.order.get(scope) ?? [],
      (path) => nodes.get(path)?.parent === scope,
    );
    order.set(scope, topological(listed, nodes));
  }
  return {
    script: { preamble: preamble ?? '', nodes, order, trailer: trailer ?? '' },
    fromTheirs,
    raw,
  };
}

/**
 * The nodes in an order that puts every node after its inputs, as close to
 * `listed` as that allows (the same order when `listed` already does).
 */
function topological(listed: readonly string[], nodes: ReadonlyMap<string, NukeNode>): string[] {
  const done = new Set<string>();
  const out: string[] = [];
  const waiting = [...listed];
  while (waiting.length > 0) {
    const ready = waiting.findIndex((path) =>
      (nodes.get(path)?.inputs ?? []).every((input) => !isNodeInput(input) || done.has(input)),
    );
    if (ready < 0) {
      throw new MergeConflict(
        `the merged node graph has a cycle through ${display(waiting[0] ?? '')}`,
      );
    }
    const [path] = waiting.splice(ready, 1);
    if (path === undefined) break;
    done.add(path);
    out.push(path);
  }
  return out;
}

/** The graph a script text denotes, for comparing what was written with what was meant. */
function graphKey(script: NukeScript): string {
  const parts: string[] = [script.preamble, script.trailer];
  for (const [path, node] of [...script.nodes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    parts.push(
      JSON.stringify([path, node.className, node.prefix, node.knobs, node.inputsText, node.inputs]),
    );
  }
  return parts.join('\n');
}

function parseSide(bytes: Buffer, side: string): NukeScript | string {
  try {
    return parseNukeScript(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    if (error instanceof NukeParseError || error instanceof TypeError) {
      return `${side} is not a Nuke script this merge reads (${error.message})`;
    }
    throw error;
  }
}

/** Merges three Nuke scripts given as bytes. */
export function mergeNukeScripts(base: Buffer, ours: Buffer, theirs: Buffer): StrategyResult {
  const [b, o, t] = [
    parseSide(base, 'base'),
    parseSide(ours, 'ours'),
    parseSide(theirs, 'theirs'),
  ] as const;
  if (typeof b === 'string') return { declined: b };
  if (typeof o === 'string') return { declined: o };
  if (typeof t === 'string') return { declined: t };
  // A side that changed nothing: the other side as it is, set lines and spacing included.
  if (ours.equals(theirs) || base.equals(theirs)) {
    return { merged: ours, summary: 'Nuke script from ours' };
  }
  if (base.equals(ours)) return { merged: theirs, summary: 'Nuke script from theirs' };
  let merged: ReturnType<typeof mergeScripts>;
  try {
    merged = mergeScripts(b, o, t);
  } catch (error) {
    if (error instanceof MergeConflict) return { conflict: error.message };
    throw error;
  }
  const text = writeNukeScript(merged.script, (node, depth) => {
    const source = merged.raw.get(node.path);
    return source ? source.block : nodeBlock(node, depth);
  });
  // What was written must read back as the graph that was meant; never guess.
  let check: NukeScript;
  try {
    check = parseNukeScript(text);
  } catch (error) {
    if (!(error instanceof NukeParseError)) throw error;
    return { declined: `the merged script does not read back (${error.message})` };
  }
  if (graphKey(check) !== graphKey(merged.script)) {
    return { declined: 'the merged script does not read back as the merged graph' };
  }
  const taken = merged.fromTheirs;
  return {
    merged: Buffer.from(text, 'utf8'),
    summary: `merged Nuke nodes (from theirs: ${taken.length > 0 ? taken.join(', ') : 'none'})`,
  };
}

/** What changed between two versions of a script, node by node. */
function describeScripts(before: NukeScript, after: NukeScript): string[] {
  const lines: string[] = [];
  for (const [path, node] of after.nodes) {
    const old = before.nodes.get(path);
    const name = path === ROOT ? 'Root' : display(path);
    if (!old) {
      lines.push(`${name} added`);
      continue;
    }
    if (sameNode(old, node)) continue;
    const changed: string[] = [];
    if (old.className !== node.className) changed.push('class');
    if (!sameWiring(old, node)) changed.push('inputs');
    const oldKnobs = new Map(old.knobs.map((k) => [k.key, k.text]));
    const newKnobs = new Map(node.knobs.map((k) => [k.key, k.text]));
    for (const knob of new Set([...oldKnobs.keys(), ...newKnobs.keys()])) {
      if (oldKnobs.get(knob) !== newKnobs.get(knob)) changed.push(`knob '${knob}'`);
    }
    lines.push(`${name} changed: ${changed.length > 0 ? changed.join(', ') : 'lines before it'}`);
  }
  for (const path of before.nodes.keys()) {
    if (!after.nodes.has(path)) lines.push(`${display(path)} deleted`);
  }
  if (before.preamble !== after.preamble) lines.push('script header changed');
  return lines.length > 0 ? lines : ['node graph unchanged'];
}

export const nukeMergeStrategy: MergeStrategy = {
  name: 'nuke-nodes',
  accepts: (format) => format.format === 'nk',
  maxBytes: 64 * 1024 * 1024,
  async merge(input): Promise<StrategyResult> {
    const [base, ours, theirs] = await readSides(input);
    return mergeNukeScripts(base, ours, theirs);
  },
  async describe(before: RandomAccess, after: RandomAccess): Promise<string[]> {
    const old = parseSide(await readWhole(before), 'before');
    const now = parseSide(await readWhole(after), 'after');
    if (typeof old === 'string') return [old];
    if (typeof now === 'string') return [now];
    return describeScripts(old, now);
  },
};
