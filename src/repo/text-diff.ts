/**
 * Line diffs of text, shaped like Git's unified diffs.
 *
 * jsdiff finds a minimal edit script; the result is then normalised the way
 * Git's xdiff does it (xdiffi.c `xdl_change_compact`): each run of changed
 * lines is slid as far as it can go, merged with runs it touches, aligned with
 * a matching run in the other file when possible, and otherwise placed by
 * Git's indent heuristic (on by default since Git 2.14). So where several
 * minimal diffs exist, the hunks are the ones `git diff` shows. Hunks are
 * built as xdiff's emitter does: `context` lines around each change, changes
 * closer than 2 x `context` lines merged, a hunk heading taken from the
 * nearest earlier line that starts with a letter, `_` or `$`.
 */
import { diffArrays } from 'diff';

/** One hunk, with start lines as Git prints them (1-based; the line before when empty). */
export interface Hunk {
  readonly oldStart: number;
  readonly oldLines: number;
  readonly newStart: number;
  readonly newLines: number;
  /** The function-name context printed after the second `@@`, or "". */
  readonly heading: string;
  /** Lines prefixed with ' ', '-' or '+', and `\ No newline at end of file` markers. */
  readonly lines: readonly string[];
}

export interface TextDiff {
  readonly hunks: Hunk[];
  readonly added: number;
  readonly deleted: number;
}

export const NO_NEWLINE = '\\ No newline at end of file';

/** Bytes Git inspects for a NUL to call content binary. */
export const BINARY_PROBE_BYTES = 8000;

export function looksBinary(bytes: Uint8Array): boolean {
  return bytes.subarray(0, BINARY_PROBE_BYTES).includes(0);
}

/**
 * Bound on lines x edits explored (Myers is O(N·D)); past it the changed middle
 * is shown as rewritten, which is still a correct diff, only a larger one.
 */
const EDIT_BUDGET = 400_000_000;

interface Lines {
  /** Line texts without their newline. */
  readonly text: string[];
  /** Interned line identities (text plus whether it ends with a newline). */
  readonly ids: Int32Array;
  /** False when the last line has no trailing newline. */
  readonly lastHasNewline: boolean;
}

function splitLines(content: string, intern: Map<string, number>): Lines {
  const text = content === '' ? [] : content.split('\n');
  const lastHasNewline = content === '' || content.endsWith('\n');
  if (lastHasNewline && text.length > 0) text.pop();
  const ids = new Int32Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const key = i === text.length - 1 && !lastHasNewline ? `${text[i]}` : `${text[i]}\n`;
    let id = intern.get(key);
    if (id === undefined) {
      id = intern.size;
      intern.set(key, id);
    }
    ids[i] = id;
  }
  return { text, ids, lastHasNewline };
}

/**
 * Marks changed lines: `changed[i + 1]` is 1 when line i is not matched. The
 * array has a zero sentinel at each end, as xdiff's `rchg` does.
 */
function markChanges(a: Lines, b: Lines): { oldChanged: Uint8Array; newChanged: Uint8Array } {
  const n = a.ids.length;
  const m = b.ids.length;
  const oldChanged = new Uint8Array(n + 2);
  const newChanged = new Uint8Array(m + 2);
  let prefix = 0;
  while (prefix < n && prefix < m && a.ids[prefix] === b.ids[prefix]) prefix++;
  let suffix = 0;
  while (
    suffix < n - prefix &&
    suffix < m - prefix &&
    a.ids[n - 1 - suffix] === b.ids[m - 1 - suffix]
  )
    suffix++;
  const oldMid = Array.from(a.ids.subarray(prefix, n - suffix));
  const newMid = Array.from(b.ids.subarray(prefix, m - suffix));
  const total = oldMid.length + newMid.length;
  const changes =
    oldMid.length === 0 || newMid.length === 0
      ? undefined
      : diffArrays(oldMid, newMid, {
          maxEditLength: Math.max(1000, Math.floor(EDIT_BUDGET / total)),
        });
  if (!changes) {
    oldChanged.fill(1, prefix + 1, n - suffix + 1);
    newChanged.fill(1, prefix + 1, m - suffix + 1);
    return { oldChanged, newChanged };
  }
  let i = prefix;
  let j = prefix;
  for (const change of changes) {
    if (change.removed) {
      oldChanged.fill(1, i + 1, i + 1 + change.count);
      i += change.count;
    } else if (change.added) {
      newChanged.fill(1, j + 1, j + 1 + change.count);
      j += change.count;
    } else {
      i += change.count;
      j += change.count;
    }
  }
  return { oldChanged, newChanged };
}

// ---- xdl_change_compact, ported from Git's xdiff/xdiffi.c ----

interface Side {
  readonly ids: Int32Array;
  readonly text: readonly string[];
  /** Sentinel-padded change marks: index i + 1 is line i. */
  readonly changed: Uint8Array;
}

interface Group {
  start: number;
  end: number;
}

const rchg = (side: Side, line: number): number => side.changed[line + 1] ?? 0;
const setChg = (side: Side, line: number, value: number): void => {
  side.changed[line + 1] = value;
};

function groupInit(side: Side): Group {
  const g = { start: 0, end: 0 };
  while (rchg(side, g.end)) g.end++;
  return g;
}

function groupNext(side: Side, g: Group): boolean {
  if (g.end === side.ids.length) return false;
  g.start = g.end + 1;
  for (g.end = g.start; rchg(side, g.end); g.end++);
  return true;
}

function groupPrevious(side: Side, g: Group): boolean {
  if (g.start === 0) return false;
  g.end = g.start - 1;
  for (g.start = g.end; rchg(side, g.start - 1); g.start--);
  return true;
}

function groupSlideDown(side: Side, g: Group): boolean {
  if (g.end < side.ids.length && side.ids[g.start] === side.ids[g.end]) {
    setChg(side, g.start++, 0);
    setChg(side, g.end++, 1);
    while (rchg(side, g.end)) g.end++;
    return true;
  }
  return false;
}

function groupSlideUp(side: Side, g: Group): boolean {
  if (g.start > 0 && side.ids[g.start - 1] === side.ids[g.end - 1]) {
    setChg(side, --g.start, 1);
    setChg(side, --g.end, 0);
    while (rchg(side, g.start - 1)) g.start--;
    return true;
  }
  return false;
}

const MAX_INDENT = 200;
const MAX_BLANKS = 20;
const START_OF_FILE_PENALTY = 1;
const END_OF_FILE_PENALTY = 21;
const TOTAL_BLANK_WEIGHT = -30;
const POST_BLANK_WEIGHT = 6;
const RELATIVE_INDENT_PENALTY = -4;
const RELATIVE_INDENT_WITH_BLANK_PENALTY = 10;
const RELATIVE_OUTDENT_PENALTY = 24;
const RELATIVE_OUTDENT_WITH_BLANK_PENALTY = 17;
const RELATIVE_DEDENT_PENALTY = 23;
const RELATIVE_DEDENT_WITH_BLANK_PENALTY = 17;
const INDENT_WEIGHT = 60;
const INDENT_HEURISTIC_MAX_SLIDING = 100;

/** Columns of leading whitespace (tabs to multiples of 8), or -1 for a blank line. */
function indentOf(line: string): number {
  let indent = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 0x20) indent += 1;
    else if (c === 0x09) indent += 8 - (indent % 8);
    else if (c !== 0x0a && c !== 0x0b && c !== 0x0c && c !== 0x0d) return indent;
    if (indent >= MAX_INDENT) return MAX_INDENT;
  }
  return -1;
}

interface SplitMeasurement {
  endOfFile: boolean;
  indent: number;
  preBlank: number;
  preIndent: number;
  postBlank: number;
  postIndent: number;
}

function measureSplit(side: Side, split: number): SplitMeasurement {
  const n = side.text.length;
  const m: SplitMeasurement = {
    endOfFile: split >= n,
    indent: split >= n ? -1 : indentOf(side.text[split]!),
    preBlank: 0,
    preIndent: -1,
    postBlank: 0,
    postIndent: -1,
  };
  for (let i = split - 1; i >= 0; i--) {
    m.preIndent = indentOf(side.text[i]!);
    if (m.preIndent !== -1) break;
    m.preBlank += 1;
    if (m.preBlank === MAX_BLANKS) {
      m.preIndent = 0;
      break;
    }
  }
  for (let i = split + 1; i < n; i++) {
    m.postIndent = indentOf(side.text[i]!);
    if (m.postIndent !== -1) break;
    m.postBlank += 1;
    if (m.postBlank === MAX_BLANKS) {
      m.postIndent = 0;
      break;
    }
  }
  return m;
}

interface SplitScore {
  effectiveIndent: number;
  penalty: number;
}

function scoreAddSplit(m: SplitMeasurement, s: SplitScore): void {
  if (m.preIndent === -1 && m.preBlank === 0) s.penalty += START_OF_FILE_PENALTY;
  if (m.endOfFile) s.penalty += END_OF_FILE_PENALTY;
  const postBlank = m.indent === -1 ? 1 + m.postBlank : 0;
  const totalBlank = m.preBlank + postBlank;
  s.penalty += TOTAL_BLANK_WEIGHT * totalBlank;
  s.penalty += POST_BLANK_WEIGHT * postBlank;
  const indent = m.indent !== -1 ? m.indent : m.postIndent;
  const anyBlanks = totalBlank !== 0;
  s.effectiveIndent += indent;
  if (indent === -1 || m.preIndent === -1) {
    // No adjustment.
  } else if (indent > m.preIndent) {
    s.penalty += anyBlanks ? RELATIVE_INDENT_WITH_BLANK_PENALTY : RELATIVE_INDENT_PENALTY;
  } else if (indent === m.preIndent) {
    // Same level as its predecessor.
  } else if (m.postIndent !== -1 && m.postIndent > indent) {
    s.penalty += anyBlanks ? RELATIVE_OUTDENT_WITH_BLANK_PENALTY : RELATIVE_OUTDENT_PENALTY;
  } else {
    s.penalty += anyBlanks ? RELATIVE_DEDENT_WITH_BLANK_PENALTY : RELATIVE_DEDENT_PENALTY;
  }
}

function scoreCmp(a: SplitScore, b: SplitScore): number {
  const cmpIndents =
    Number(a.effectiveIndent > b.effectiveIndent) - Number(a.effectiveIndent < b.effectiveIndent);
  return INDENT_WEIGHT * cmpIndents + (a.penalty - b.penalty);
}

function syncBroken(): never {
  throw new Error('text-diff: group sync broken while compacting changes');
}

/** Slides the changed runs of `side` to Git's preferred places; `other` is kept in step. */
function compact(side: Side, other: Side): void {
  const g = groupInit(side);
  const go = groupInit(other);
  while (true) {
    if (g.end !== g.start) {
      let groupSize: number;
      let earliestEnd: number;
      let endMatchingOther: number;
      do {
        groupSize = g.end - g.start;
        endMatchingOther = -1;
        while (groupSlideUp(side, g)) if (!groupPrevious(other, go)) syncBroken();
        earliestEnd = g.end;
        if (go.end > go.start) endMatchingOther = g.end;
        while (groupSlideDown(side, g)) {
          if (!groupNext(other, go)) syncBroken();
          if (go.end > go.start) endMatchingOther = g.end;
        }
      } while (groupSize !== g.end - g.start);

      if (g.end === earliestEnd) {
        // It cannot move.
      } else if (endMatchingOther !== -1) {
        while (go.end === go.start) {
          if (!groupSlideUp(side, g)) syncBroken();
          if (!groupPrevious(other, go)) syncBroken();
        }
      } else {
        let shift = Math.max(
          earliestEnd,
          g.end - groupSize - 1,
          g.end - INDENT_HEURISTIC_MAX_SLIDING,
        );
        let bestShift = -1;
        let best: SplitScore = { effectiveIndent: 0, penalty: 0 };
        for (; shift <= g.end; shift++) {
          const score: SplitScore = { effectiveIndent: 0, penalty: 0 };
          scoreAddSplit(measureSplit(side, shift), score);
          scoreAddSplit(measureSplit(side, shift - groupSize), score);
          if (bestShift === -1 || scoreCmp(score, best) <= 0) {
            best = score;
            bestShift = shift;
          }
        }
        while (g.end > bestShift) {
          if (!groupSlideUp(side, g)) syncBroken();
          if (!groupPrevious(other, go)) syncBroken();
        }
      }
    }
    if (!groupNext(side, g)) break;
    if (!groupNext(other, go)) syncBroken();
  }
}

// ---- hunks, as xdiff's xdl_emit_diff builds them ----

interface Change {
  readonly i1: number;
  readonly chg1: number;
  readonly i2: number;
  readonly chg2: number;
}

function changeScript(a: Side, b: Side): Change[] {
  const out: Change[] = [];
  const n = a.ids.length;
  const m = b.ids.length;
  let i1 = 0;
  let i2 = 0;
  while (i1 < n || i2 < m) {
    if (rchg(a, i1) || rchg(b, i2)) {
      const s1 = i1;
      const s2 = i2;
      while (rchg(a, i1)) i1++;
      while (rchg(b, i2)) i2++;
      out.push({ i1: s1, chg1: i1 - s1, i2: s2, chg2: i2 - s2 });
    } else {
      i1++;
      i2++;
    }
  }
  return out;
}

const FUNC_LINE_BYTES = 80;

/** Git's default hunk heading: the line as is (at most 80 bytes, trailing space trimmed). */
function funcLine(line: string): string | undefined {
  if (!/^[A-Za-z_$]/.test(line)) return undefined;
  const bytes = Buffer.from(line, 'utf8').subarray(0, FUNC_LINE_BYTES);
  let end = bytes.length;
  while (end > 0 && isSpaceByte(bytes[end - 1]!)) end--;
  return bytes.subarray(0, end).toString('utf8');
}

function isSpaceByte(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/**
 * The changed runs between two texts, as Git's xdiff computes them (after its
 * change compaction): old lines [i1, i1 + chg1) become new lines
 * [i2, i2 + chg2). Used by the three-way text merge.
 */
export function lineChanges(
  oldContent: string,
  newContent: string,
): { i1: number; chg1: number; i2: number; chg2: number }[] {
  const intern = new Map<string, number>();
  return compactedScript(splitLines(oldContent, intern), splitLines(newContent, intern));
}

function compactedScript(a: Lines, b: Lines): Change[] {
  const marks = markChanges(a, b);
  const oldSide: Side = { ids: a.ids, text: a.text, changed: marks.oldChanged };
  const newSide: Side = { ids: b.ids, text: b.text, changed: marks.newChanged };
  compact(oldSide, newSide);
  compact(newSide, oldSide);
  return changeScript(oldSide, newSide);
}

/**
 * Diffs two texts line by line. `context` is the number of unchanged lines
 * shown around each change (Git's default is 3).
 */
export function diffText(oldContent: string, newContent: string, context = 3): TextDiff {
  const intern = new Map<string, number>();
  const a = splitLines(oldContent, intern);
  const b = splitLines(newContent, intern);
  const script = compactedScript(a, b);
  let added = 0;
  let deleted = 0;
  for (const change of script) {
    added += change.chg2;
    deleted += change.chg1;
  }
  const n1 = a.text.length;
  const n2 = b.text.length;
  const line = (lines: Lines, index: number, prefix: string, out: string[]): void => {
    out.push(prefix + lines.text[index]!);
    if (index === lines.text.length - 1 && !lines.lastHasNewline) out.push(NO_NEWLINE);
  };
  const hunks: Hunk[] = [];
  let heading = '';
  let searchedFrom = -1;
  for (let first = 0; first < script.length;) {
    let last = first;
    while (
      last + 1 < script.length &&
      script[last + 1]!.i1 - (script[last]!.i1 + script[last]!.chg1) <= 2 * context
    )
      last++;
    const start = script[first]!;
    const end = script[last]!;
    const s1 = Math.max(start.i1 - context, 0);
    const s2 = Math.max(start.i2 - context, 0);
    const trailing = Math.min(context, n1 - (end.i1 + end.chg1), n2 - (end.i2 + end.chg2));
    const e1 = end.i1 + end.chg1 + trailing;
    const e2 = end.i2 + end.chg2 + trailing;
    // Search back from the hunk's first line to where the previous search began.
    for (let l = s1 - 1; l > searchedFrom; l--) {
      const found = funcLine(a.text[l]!);
      if (found !== undefined) {
        heading = found;
        break;
      }
    }
    searchedFrom = s1 - 1;
    const lines: string[] = [];
    let i1 = s1;
    for (let k = first; k <= last; k++) {
      const change = script[k]!;
      for (; i1 < change.i1; i1++) line(a, i1, ' ', lines);
      for (let d = 0; d < change.chg1; d++) line(a, change.i1 + d, '-', lines);
      for (let d = 0; d < change.chg2; d++) line(b, change.i2 + d, '+', lines);
      i1 = change.i1 + change.chg1;
    }
    for (; i1 < e1; i1++) line(a, i1, ' ', lines);
    const oldLines = e1 - s1;
    const newLines = e2 - s2;
    hunks.push({
      oldStart: oldLines === 0 ? s1 : s1 + 1,
      oldLines,
      newStart: newLines === 0 ? s2 : s2 + 1,
      newLines,
      heading,
      lines,
    });
    first = last + 1;
  }
  return { hunks, added, deleted };
}

/** The `@@ -a,b +c,d @@ heading` line of a hunk (",1" omitted as Git does). */
export function hunkHeader(hunk: Hunk): string {
  const range = (start: number, count: number): string =>
    count === 1 ? `${start}` : `${start},${count}`;
  const head = `@@ -${range(hunk.oldStart, hunk.oldLines)} +${range(hunk.newStart, hunk.newLines)} @@`;
  return hunk.heading === '' ? head : `${head} ${hunk.heading}`;
}
