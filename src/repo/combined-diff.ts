/**
 * Git's combined diff (`diff --cc`), which `diff` shows for a path a stopped
 * merge left in conflict: the working file against both sides at once, one
 * column of `+`/`-` per side.
 *
 * Built as Git's combine-diff.c builds it. The result is diffed against each
 * side with no context (text-diff.ts, so the edits are the ones `git diff`
 * finds); a result line added relative to side n gets mark n, and side n's
 * lines missing from the result hang, as "lost" lines, before the result
 * line they preceded, lost lines of both sides being merged where they
 * match (a longest common subsequence). The dense mode (`--cc`, Git's
 * default here) then drops every stretch that agrees with one side, and
 * the rest is shown with `context` lines around it.
 */
import { lineChanges } from './text-diff.ts';

/** A line of a side that the result does not have, and which sides had it (bit n: side n). */
interface LostLine {
  readonly text: string;
  sides: number;
}

interface ResultLine {
  readonly text: string;
  /** Bit n: the line is not in side n; bit `parents`: shown; bit `parents + 1`: context painted before a change. */
  flag: number;
  lost: LostLine[];
  /** Per side, its line number (from 1) where a hunk starting at this line starts. */
  readonly sideLine: number[];
}

function linesOf(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Merges side `n`'s lost lines into those already hanging at one place (Git's coalesce_lines). */
function coalesce(base: LostLine[], added: readonly string[], n: number): LostLine[] {
  if (base.length === 0) return added.map((text) => ({ text, sides: 1 << n }));
  const rows = base.length + 1;
  const cols = added.length + 1;
  const lcs = new Int32Array(rows * cols);
  // 0: match, 1: take the added line, 2: keep the base line.
  const direction = new Uint8Array(rows * cols);
  for (let j = 1; j < cols; j++) direction[j] = 1;
  for (let i = 1; i < rows; i++) direction[i * cols] = 2;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const at = i * cols + j;
      if (base[i - 1]!.text === added[j - 1]) {
        lcs[at] = lcs[at - cols - 1]! + 1;
        direction[at] = 0;
      } else if (lcs[at - 1]! >= lcs[at - cols]!) {
        lcs[at] = lcs[at - 1]!;
        direction[at] = 1;
      } else {
        lcs[at] = lcs[at - cols]!;
        direction[at] = 2;
      }
    }
  }
  // Walk back from the end: matches gain side n; an added line goes right
  // after the base line the walk stands on.
  const after: LostLine[][] = Array.from({ length: rows }, () => []);
  let i = base.length;
  let j = added.length;
  while (i > 0 || j > 0) {
    const d = direction[i * cols + j]!;
    if (d === 0) {
      base[i - 1]!.sides |= 1 << n;
      i--;
      j--;
    } else if (d === 1) {
      after[i]!.unshift({ text: added[j - 1]!, sides: 1 << n });
      j--;
    } else i--;
  }
  const merged: LostLine[] = [...after[0]!];
  for (let k = 0; k < base.length; k++) merged.push(base[k]!, ...after[k + 1]!);
  return merged;
}

function build(sides: readonly string[], result: string): ResultLine[] {
  const resultLines = linesOf(result);
  const count = resultLines.length;
  // count + 1 lines: the last holds what was lost after the final line; count + 2 for line numbers.
  const lines: ResultLine[] = Array.from({ length: count + 2 }, (_, k) => ({
    text: resultLines[k] ?? '',
    flag: 0,
    lost: [],
    sideLine: [],
  }));
  sides.forEach((side, n) => {
    const sideLines = linesOf(side);
    const pending = new Map<number, string[]>();
    for (const change of lineChanges(side, result)) {
      for (let d = 0; d < change.chg2; d++) lines[change.i2 + d]!.flag |= 1 << n;
      if (change.chg1 > 0) {
        const bucket = pending.get(change.i2) ?? [];
        for (let d = 0; d < change.chg1; d++) bucket.push(sideLines[change.i1 + d]!);
        pending.set(change.i2, bucket);
      }
    }
    let sideLine = 1;
    for (let k = 0; k <= count; k++) {
      const line = lines[k]!;
      line.sideLine[n] = sideLine;
      const lost = pending.get(k);
      if (lost) line.lost = coalesce(line.lost, lost, n);
      for (const l of line.lost) if (l.sides & (1 << n)) sideLine++;
      if (k < count && !(line.flag & (1 << n))) sideLine++;
    }
    lines[count + 1]!.sideLine[n] = sideLine;
  });
  return lines;
}

/** The next line at or after `from` that is (or, with `unmarked`, is not) marked; count + 1 if none. */
function findNext(
  lines: ResultLine[],
  mark: number,
  from: number,
  count: number,
  unmarked: boolean,
): number {
  let i = from;
  while (i <= count && Boolean(lines[i]!.flag & mark) === unmarked) i++;
  return i;
}

/** A hunk ending in a line shown only for the lost lines before it gives one line of context itself. */
function adjustTail(lines: ResultLine[], allSides: number, begin: number, i: number): number {
  return begin + 1 <= i && !(lines[i - 1]!.flag & allSides) ? i - 1 : i;
}

/** Marks the lines to show: changes that differ from every side, and context around them. */
function chooseLines(
  lines: ResultLine[],
  count: number,
  parents: number,
  context: number,
): boolean {
  const allSides = (1 << parents) - 1;
  const mark = 1 << parents;
  const noPreDelete = 2 << parents;
  for (let i = 0; i <= count; i++) {
    const line = lines[i]!;
    if (line.flag & allSides || line.lost.length > 0) line.flag |= mark;
  }
  // Dense: a stretch whose changes all come from the same sides (the result
  // agrees with the others there) is not interesting after all.
  let i = 0;
  while (i <= count) {
    i = findNext(lines, mark, i, count, false);
    if (i > count) break;
    const begin = i;
    let j = i + 1;
    for (; j <= count; j++) {
      if (lines[j]!.flag & mark) continue;
      let lookahead = Math.min(adjustTail(lines, allSides, begin, j) + context, count + 1);
      let continues = false;
      while (lookahead && j <= --lookahead) {
        if (lines[lookahead]!.flag & mark) {
          continues = true;
          break;
        }
      }
      if (!continues) break;
      j = lookahead;
    }
    const end = j;
    let same = 0;
    let interesting = false;
    for (let k = begin; k < end && !interesting; k++) {
      const diff = lines[k]!.flag & allSides;
      if (diff) {
        if (!same) same = diff;
        else if (same !== diff) interesting = true;
      }
      for (const lost of lines[k]!.lost) {
        if (interesting) break;
        if (!same) same = lost.sides;
        else if (same !== lost.sides) interesting = true;
      }
    }
    if (!interesting && same !== allSides) {
      for (let k = begin; k < end; k++) lines[k]!.flag &= ~mark;
    }
    i = end;
  }
  // Context: paint lines before and after each change, joining close ones.
  i = findNext(lines, mark, 0, count, false);
  if (i > count) return false;
  while (i <= count) {
    for (let j = Math.max(i - context, 0); j < i; j++) {
      if (!(lines[j]!.flag & mark)) lines[j]!.flag |= noPreDelete;
      lines[j]!.flag |= mark;
    }
    for (;;) {
      let j = findNext(lines, mark, i, count, true);
      if (j > count) return true;
      const k = findNext(lines, mark, j, count, false);
      j = adjustTail(lines, allSides, i, j);
      if (k < j + context) {
        while (j < k) lines[j++]!.flag |= mark;
        i = k;
        continue;
      }
      i = k;
      const stop = Math.min(j + context, count + 1);
      while (j < stop) lines[j++]!.flag |= mark;
      break;
    }
  }
  return true;
}

/** Git's hunk heading: the last line before the hunk that starts with a letter, `_` or `$`, cut as Git cuts it. */
function heading(line: string | undefined): string {
  if (line === undefined) return '';
  let end = 0;
  for (let i = 0; i < 40 && i < line.length; i++) if (!/\s/.test(line[i]!)) end = i;
  return end ? ` ${line.slice(0, end)}` : '';
}

/**
 * The hunks of `diff --cc`: the `@@@ … @@@` headers and the lines under
 * them, one column per side. Empty when the result agrees with a side everywhere.
 */
export function combinedDiffLines(sides: readonly string[], result: string, context = 3): string[] {
  const parents = sides.length;
  const lines = build(sides, result);
  const count = lines.length - 2;
  if (!chooseLines(lines, count, parents, context)) return [];
  const mark = 1 << parents;
  const noPreDelete = 2 << parents;
  const markers = '@'.repeat(parents + 1);
  const out: string[] = [];
  let lno = 0;
  for (;;) {
    let comment: string | undefined;
    while (lno <= count && !(lines[lno]!.flag & mark)) {
      if (/^[A-Za-z_$]/.test(lines[lno]!.text)) comment = lines[lno]!.text;
      lno++;
    }
    if (lno > count) break;
    let end = lno + 1;
    while (end <= count && lines[end]!.flag & mark) end++;
    let shown = end - lno;
    if (end > count) shown--;
    const ranges = sides.map((_, n) => {
      const from = lines[lno]!.sideLine[n]!;
      return ` -${from},${lines[end]!.sideLine[n]! - from}`;
    });
    out.push(`${markers}${ranges.join('')} +${lno + 1},${shown} ${markers}${heading(comment)}`);
    while (lno < end) {
      const line = lines[lno++]!;
      if (!(line.flag & noPreDelete)) {
        for (const lost of line.lost) {
          let columns = '';
          for (let n = 0; n < parents; n++) columns += lost.sides & (1 << n) ? '-' : ' ';
          out.push(columns + lost.text);
        }
      }
      if (lno > count) break;
      let columns = '';
      for (let n = 0; n < parents; n++) columns += line.flag & (1 << n) ? '+' : ' ';
      out.push(columns + line.text);
    }
  }
  return out;
}
