/**
 * Nuke `.nk` scripts as a node graph, and back.
 *
 * A script is a Tcl-like text: a preamble (`#!`, `version`,
 * `define_window_layout_xml {…}`), then node blocks `Class {\n knob value\n … }`
 * driven by a stack. Each node pops as many inputs as its `inputs` knob says
 * (`inputs 2`, `inputs 1+1` with a mask, a class default when absent) and is
 * pushed itself; `push 0` pushes an empty input, `push $cut` a cut one,
 * `set N12 [stack 0]` names the top and `push $N12` pushes it again. A
 * `Group` block is followed by its own nodes (a fresh stack) up to
 * `end_group`, after which the group is pushed on the outer stack.
 *
 * The parser keeps each node's text as written (so untouched nodes come
 * back byte-identical) and its knobs one by one (raw text, multi-line brace
 * values included); the wiring is resolved to node paths, so a serializer
 * that emits any valid push/set sequence gives the same graph. Input 0 is the
 * stack top when the node is read; the serializer uses the same convention,
 * so wiring read from a script is written back the same whichever way Nuke
 * numbers its inputs.
 *
 * What the parser does not know it refuses (`NukeParseError`): clones,
 * a stack that runs dry, unknown `push` variables, unbalanced braces.
 */
import { createHash } from 'node:crypto';

/**
 * An input: a node's path, `null` for an empty input (`push 0`), or an input
 * from outside the script: `'$cut'`, or `'$cut_paste_input'` for a variable
 * set on the empty stack before the first node, as copied snippets do.
 */
export type NukeInput = string | null;

export const CUT = '$cut';

/** Whether an input is a node of the script (not empty, not from outside). */
export function isNodeInput(input: NukeInput): input is string {
  return input !== null && !input.startsWith('$');
}

export interface NukeKnob {
  /** The knob's name, with `#n` for its n-th repetition (`addUserKnob#2`). */
  readonly key: string;
  readonly name: string;
  /** The knob as written, name and value, multi-line values included, no final newline. */
  readonly text: string;
}

export interface NukeNode {
  /** Identity: the name, prefixed by the enclosing groups' (`Group1.Blur2`); `Root` for the root. */
  readonly path: string;
  /** The enclosing group's path, '' at the top. */
  readonly parent: string;
  readonly className: string;
  /** Statements written just before the block (`add_layer {…}` lines), as written. */
  readonly prefix: string;
  /** Knobs in order, without `inputs` (which is part of the wiring). */
  readonly knobs: readonly NukeKnob[];
  /** The `inputs` knob as written (`inputs 1+1`), when the node has one. */
  readonly inputsText: string | undefined;
  readonly inputs: readonly NukeInput[];
  /** The block as written, from its header line to its closing `}` line, with the newline. */
  readonly block: string;
  /** A group block (`Group`, `LiveGroup`): its nodes follow it up to `end_group`. */
  readonly isGroup: boolean;
  /** The `set` variable naming this node in the file it came from. */
  readonly variable: string | undefined;
}

export interface NukeScript {
  /** Everything before the first node, as written. */
  readonly preamble: string;
  readonly nodes: ReadonlyMap<string, NukeNode>;
  /** Each scope's node paths in file order ('' is the top; a group's path its inside). */
  readonly order: ReadonlyMap<string, readonly string[]>;
  /** Statements after the last node, as written. */
  readonly trailer: string;
}

export class NukeParseError extends Error {}

export const ROOT = 'Root';

/** Classes that have no inputs when the script does not say `inputs`. */
const NO_INPUTS = new Set([
  'Root',
  'Read',
  'ReadGeo',
  'ReadGeo2',
  'DeepRead',
  'Constant',
  'ColorBars',
  'ColorWheel',
  'CheckerBoard2',
  'Input',
  'BackdropNode',
  'StickyNote',
  'Camera',
  'Camera2',
  'Camera3',
  'Camera4',
  'Axis',
  'Axis2',
  'Axis3',
  'Axis4',
  'Light',
  'Light2',
  'Light3',
]);

const GROUP_CLASSES = new Set(['Group', 'LiveGroup']);

const HEADER = /^( *)([A-Za-z_][A-Za-z0-9_]*) \{[ \t]*$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Where a Tcl-like value that starts at `from` ends: at a newline outside
 * braces and quotes. Braces nest; a backslash escapes the next character;
 * quotes count only outside braces. Returns the index of that newline (or the
 * end of the text); throws if a brace closes that was not opened or one is
 * left open.
 */
function valueEnd(text: string, from: number): number {
  let depth = 0;
  let quoted = false;
  let i = from;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++;
    } else if (quoted) {
      if (c === '"') quoted = false;
    } else if (c === '"' && depth === 0) {
      quoted = true;
    } else if (c === '{') {
      depth++;
    } else if (c === '}') {
      if (depth === 0) throw new NukeParseError(`unbalanced '}' at offset ${i}`);
      depth--;
    } else if (c === '\n' && depth === 0) {
      return i;
    }
  }
  if (depth > 0 || quoted) throw new NukeParseError('a brace or quote is never closed');
  return i;
}

function inputCount(inputsText: string | undefined, className: string): number {
  if (inputsText === undefined) return NO_INPUTS.has(className) ? 0 : 1;
  const match = /^inputs[ \t]+(\d+)(?:\+(\d+))?[ \t]*$/.exec(inputsText);
  if (!match) throw new NukeParseError(`unreadable '${inputsText}'`);
  return Number(match[1]) + Number(match[2] ?? 0);
}

/** Reads a script; throws NukeParseError for what it does not understand. */
export function parseNukeScript(text: string): NukeScript {
  if (text.includes('\r')) throw new NukeParseError('carriage returns in the script');
  const nodes = new Map<string, NukeNode>();
  const order = new Map<string, string[]>();
  const variables = new Map<string, NukeInput>();
  const variableOf = new Map<string, string>();
  let at = 0;
  let preamble: string | undefined;
  let pending = '';

  /** The next non-blank line's extent and trimmed text, or undefined at the end. */
  const peekLine = (): { start: number; end: number; body: string } | undefined => {
    while (at < text.length) {
      const end = text.indexOf('\n', at);
      const stop = end < 0 ? text.length : end;
      const line = text.slice(at, stop);
      if (line.trim() === '') {
        at = stop + 1;
        continue;
      }
      return { start: at, end: stop, body: line.trim() };
    }
    return undefined;
  };
  const afterLine = (end: number): number => Math.min(text.length, end + 1);

  /** Reads a node block whose header line is at `start`; `at` moves past its closing brace line. */
  const readBlock = (
    start: number,
    headerEnd: number,
    className: string,
  ): { knobs: NukeKnob[]; inputsText: string | undefined; block: string } => {
    const knobs: NukeKnob[] = [];
    const seen = new Map<string, number>();
    let inputsText: string | undefined;
    let i = afterLine(headerEnd);
    for (;;) {
      while (i < text.length && /\s/.test(text[i] ?? '')) i++;
      if (i >= text.length) throw new NukeParseError(`node block '${className}' is never closed`);
      if (text[i] === '}') {
        const lineEnd = text.indexOf('\n', i);
        const stop = lineEnd < 0 ? text.length : lineEnd;
        if (text.slice(i + 1, stop).trim() !== '') {
          throw new NukeParseError(`text after the end of a '${className}' block`);
        }
        at = afterLine(stop);
        return { knobs, inputsText, block: text.slice(start, at) };
      }
      const end = valueEnd(text, i);
      const knobText = text.slice(i, end);
      const name = /^\S+/.exec(knobText)?.[0] ?? '';
      if (name === 'inputs') {
        if (inputsText !== undefined) throw new NukeParseError('two inputs knobs in one node');
        inputsText = knobText;
      } else {
        const count = seen.get(name) ?? 0;
        seen.set(name, count + 1);
        knobs.push({ key: count === 0 ? name : `${name}#${count + 1}`, name, text: knobText });
      }
      i = end;
    }
  };

  const readScope = (parent: string, stack: NukeInput[]): void => {
    const paths: string[] = [];
    order.set(parent, paths);
    for (;;) {
      const line = peekLine();
      if (!line) {
        if (parent !== '') throw new NukeParseError(`group '${parent}' has no end_group`);
        return;
      }
      const { body } = line;
      if (body === 'end_group') {
        if (parent === '') throw new NukeParseError('end_group outside a group');
        if (pending !== '') throw new NukeParseError('statements before end_group');
        at = afterLine(line.end);
        return;
      }
      const push = /^push (0|\$([A-Za-z_][A-Za-z0-9_]*))$/.exec(body);
      if (push) {
        if (push[1] === '0') stack.push(null);
        else if (push[1] === CUT) stack.push(CUT);
        else {
          const variable = push[2] ?? '';
          const value = variables.get(variable);
          if (value === undefined) throw new NukeParseError(`push of unknown $${variable}`);
          stack.push(value);
        }
        at = afterLine(line.end);
        continue;
      }
      const set = /^set ([A-Za-z_][A-Za-z0-9_]*) \[stack 0\]$/.exec(body);
      if (set && stack.length === 0 && preamble === undefined) {
        // `set cut_paste_input [stack 0]` before anything: the input the snippet is pasted onto.
        variables.set(set[1] ?? '', `$${set[1] ?? ''}`);
        pending += text.slice(line.start, afterLine(line.end));
        at = afterLine(line.end);
        continue;
      }
      if (set) {
        const top = stack.at(-1);
        if (top === undefined) throw new NukeParseError('set on an empty stack');
        variables.set(set[1] ?? '', top);
        if (isNodeInput(top) && !variableOf.has(top)) variableOf.set(top, set[1] ?? '');
        at = afterLine(line.end);
        continue;
      }
      if (/^(clone|push|set|end_group)\b/.test(body)) {
        throw new NukeParseError(`unsupported statement '${body.slice(0, 40)}'`);
      }
      const header = HEADER.exec(text.slice(line.start, line.end));
      if (!header) {
        // Another statement (version, add_layer, a comment): kept as written.
        const end = body.startsWith('#') ? line.end : valueEnd(text, line.start);
        pending += text.slice(line.start, afterLine(end));
        at = afterLine(end);
        continue;
      }
      if (preamble === undefined) {
        if (parent !== '') throw new NukeParseError('a group before the first node');
        preamble = pending;
        pending = '';
      }
      const className = header[2] ?? '';
      const { knobs, inputsText, block } = readBlock(line.start, line.end, className);
      const prefix = pending;
      pending = '';
      const isRoot = className === 'Root' && parent === '';
      let path = ROOT;
      if (!isRoot) {
        const nameKnob = knobs.find((k) => k.key === 'name');
        const name = nameKnob?.text.slice('name'.length).trim() ?? '';
        if (!NAME.test(name)) throw new NukeParseError(`a '${className}' node has no plain name`);
        path = parent === '' ? name : `${parent}.${name}`;
      }
      if (nodes.has(path)) throw new NukeParseError(`two nodes named '${path}'`);
      const count = isRoot ? 0 : inputCount(inputsText, className);
      if (count > stack.length)
        throw new NukeParseError(`node '${path}' has too few inputs on the stack`);
      const inputs = stack.splice(stack.length - count, count).reverse();
      // Only these classes write their nodes inline; another class followed by nodes and
      // end_group leaves an end_group over, which fails the parse rather than misread it.
      const isGroup = !isRoot && GROUP_CLASSES.has(className);
      nodes.set(path, {
        path,
        parent,
        className,
        prefix,
        knobs,
        inputsText,
        inputs,
        block,
        isGroup,
        variable: undefined,
      });
      paths.push(path);
      if (isGroup) readScope(path, []);
      if (!isRoot) stack.push(path);
    }
  };

  readScope('', []);
  if (nodes.size === 0) throw new NukeParseError('no nodes');
  const withVariables = new Map<string, NukeNode>();
  for (const [path, node] of nodes) {
    withVariables.set(path, { ...node, variable: variableOf.get(path) });
  }
  return {
    preamble: preamble ?? pending,
    nodes: withVariables,
    order,
    trailer: preamble === undefined ? '' : pending,
  };
}

/** The node's block as it would be written now: the original text when nothing in it changed. */
export function nodeBlock(node: NukeNode, depth: number): string {
  const indent = ' '.repeat(depth);
  let out = `${indent}${node.className} {\n`;
  if (node.inputsText !== undefined) out += `${indent} ${node.inputsText}\n`;
  for (const knob of node.knobs) out += `${indent} ${knob.text}\n`;
  return `${out}${indent}}\n`;
}

function inputToken(input: NukeInput, variableOf: (path: string) => string): string {
  if (input === null) return '0';
  if (!isNodeInput(input)) return input;
  return `$${variableOf(input)}`;
}

/**
 * Writes a graph back as a script: nodes in the given order (which must put
 * a node's inputs before it; `Root` is never on the stack), each preceded by
 * the pushes that put its inputs on the stack (none when they are on top
 * already, as when a chain follows the node before it), and `set` lines for
 * the nodes pushed again later. Blocks come from `blockOf`.
 */
export function writeNukeScript(
  script: NukeScript,
  blockOf: (node: NukeNode, depth: number) => string,
): string {
  const depthOf = (path: string): number => (path === '' ? 0 : path.split('.').length);
  // Variable names: the one the node had, if still free; else one derived from its path.
  const used = new Set<string>();
  const names = new Map<string, string>();
  for (const node of script.nodes.values()) {
    if (node.variable !== undefined && !used.has(node.variable)) {
      used.add(node.variable);
      names.set(node.path, node.variable);
    }
  }
  const variableOf = (path: string): string => {
    let name = names.get(path);
    if (name !== undefined) return name;
    const digest = createHash('sha256').update(path).digest('hex');
    for (let n = 8; ; n++) {
      name = `N${digest.slice(0, n)}`;
      if (!used.has(name)) break;
    }
    used.add(name);
    names.set(path, name);
    return name;
  };

  const emit = (needsVariable: Set<string>): string => {
    let out = script.preamble;
    const scope = (parent: string): void => {
      const indent = ' '.repeat(depthOf(parent));
      const stack: NukeInput[] = [];
      for (const path of script.order.get(parent) ?? []) {
        const node = script.nodes.get(path);
        if (!node) throw new Error(`no node '${path}' in the merged script`);
        if (path === ROOT && parent === '') {
          out += node.prefix + blockOf(node, 0);
          continue;
        }
        const wanted = [...node.inputs].reverse();
        let onTop = Math.min(wanted.length, stack.length);
        for (; onTop > 0; onTop--) {
          const top = stack.slice(stack.length - onTop);
          if (top.every((input, i) => input === wanted[i])) break;
        }
        for (const input of wanted.slice(onTop)) {
          if (isNodeInput(input)) needsVariable.add(input);
          out += `${indent}push ${inputToken(input, variableOf)}\n`;
          stack.push(input);
        }
        out += node.prefix + blockOf(node, depthOf(parent));
        stack.splice(stack.length - wanted.length, wanted.length);
        if (node.isGroup) {
          scope(path);
          out += `${indent}end_group\n`;
        }
        stack.push(path);
        if (needsVariable.has(path)) out += `${indent}set ${variableOf(path)} [stack 0]\n`;
      }
    };
    scope('');
    return out + script.trailer;
  };
  const needsVariable = new Set<string>();
  emit(needsVariable);
  return emit(needsVariable);
}
