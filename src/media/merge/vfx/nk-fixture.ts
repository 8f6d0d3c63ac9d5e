/**
 * For the tests: a hand-written Nuke script (Read → Grade → Blur → Merge2
 * with a Constant → a Group → Write, and a Viewer on the Blur), and a graph
 * reader written apart from nk-script.ts (line by line, as the format
 * reads), so a test does not check the parser with itself.
 */

export const COMP = `#! /usr/local/Nuke14.0v5/libnuke-14.0.5.so -nx
version 14.0 v5
define_window_layout_xml {<?xml version="1.0" encoding="UTF-8"?>
<layout version="1.0">
    <window x="0" y="0" w="1920" h="1080" screen="0"/>
</layout>
}
Root {
 inputs 0
 name /shots/sh010/comp.nk
 format "2048 1556 0 0 2048 1556 1 2K_Super_35(full-ap)"
}
Read {
 inputs 0
 file /plates/sh010.####.exr
 name Read1
 xpos 0
 ypos -200
}
Grade {
 white 1.1
 name Grade1
 xpos 0
 ypos -120
}
Blur {
 size 4
 name Blur1
 xpos 0
 ypos -60
}
set N5a1b0 [stack 0]
Constant {
 inputs 0
 color {0.1 0.2 0.3 1}
 name Constant1
 xpos 200
 ypos -60
}
Merge2 {
 inputs 2
 operation over
 name Merge1
 xpos 0
 ypos 0
}
Group {
 name Group1
 xpos 0
 ypos 60
}
 Input {
  inputs 0
  name Input1
 }
 Blur {
  size 2
  name Blur2
 }
 Output {
  name Output1
 }
end_group
Write {
 file /renders/sh010.####.exr
 name Write1
 xpos 0
 ypos 120
}
push $N5a1b0
Viewer {
 frame_range 1-100
 name Viewer1
}
`;

export interface GraphNode {
  readonly className: string;
  readonly inputs: readonly (string | null)[];
  readonly knobs: Readonly<Record<string, string>>;
}

/** Classes that take no input when a block has no `inputs` line (as the scripts here use them). */
const SOURCES = new Set(['Root', 'Read', 'Constant', 'Input']);

/**
 * Each node's class, inputs (top of the stack first) and one-line knobs, by
 * name (`Group1.Blur2` inside a group). Only what the tests write: one-line
 * knobs, `push 0|$var`, `set var [stack 0]`, `Group` … `end_group`.
 */
export function readGraph(text: string): Map<string, GraphNode> {
  const graph = new Map<string, GraphNode>();
  const vars = new Map<string, string | null>();
  const scopes: { group: string; stack: (string | null)[] }[] = [{ group: '', stack: [] }];
  let open: { className: string; knobs: Record<string, string> } | undefined;
  for (const line of text.split('\n')) {
    const scope = scopes.at(-1);
    if (!scope) throw new Error('end_group without a group');
    const trimmed = line.trim();
    if (open) {
      if (trimmed === '}') {
        const { className, knobs } = open;
        open = undefined;
        if (className === 'Root') continue;
        const count =
          knobs.inputs === undefined ? (SOURCES.has(className) ? 0 : 1) : Number(knobs.inputs);
        const inputs: (string | null)[] = [];
        for (let i = 0; i < count; i++) {
          const top = scope.stack.pop();
          if (top === undefined) throw new Error(`stack underflow at ${knobs.name}`);
          inputs.push(top);
        }
        const name = scope.group === '' ? `${knobs.name}` : `${scope.group}.${knobs.name}`;
        const rest = Object.fromEntries(Object.entries(knobs).filter(([key]) => key !== 'inputs'));
        graph.set(name, { className, inputs, knobs: rest });
        if (className === 'Group') scopes.push({ group: name, stack: [] });
        else scope.stack.push(name);
        continue;
      }
      const knob = /^(\S+) (.*)$/.exec(trimmed);
      if (knob) open.knobs[knob[1] ?? ''] = knob[2] ?? '';
      continue;
    }
    const header = /^([A-Za-z0-9_]+) \{$/.exec(trimmed);
    if (header) {
      open = { className: header[1] ?? '', knobs: {} };
    } else if (trimmed === 'end_group') {
      const group = scopes.pop();
      scopes.at(-1)?.stack.push(group?.group ?? null);
    } else if (trimmed.startsWith('push ')) {
      const token = trimmed.slice(5);
      if (token === '0') scope.stack.push(null);
      else {
        const value = vars.get(token.slice(1));
        if (value === undefined) throw new Error(`unknown ${token}`);
        scope.stack.push(value);
      }
    } else if (trimmed.startsWith('set ')) {
      vars.set(trimmed.split(' ')[1] ?? '', scope.stack.at(-1) ?? null);
    }
  }
  return graph;
}
