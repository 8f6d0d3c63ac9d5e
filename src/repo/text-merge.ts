/**
 * Line-level three-way merge of text, with Git-style conflict markers.
 *
 * The base is diffed against each side as Git's diff does (text-diff.ts); a
 * region of the base that only one side changed takes that side's lines, one
 * both changed the same way takes them once, and one both changed differently
 * (overlapping or touching changes) is a conflict. As Git's default
 * ("zealous") level does, lines common to the start and end of both sides of
 * a conflict are moved out of it, and a conflict whose sides end up equal is
 * no conflict. Conflicts are written as
 *
 *   <<<<<<< <ours label>
 *   ours' lines
 *   =======
 *   theirs' lines
 *   >>>>>>> <theirs label>
 */
import { lineChanges } from './text-diff.ts';

export interface TextMergeResult {
  readonly text: string;
  readonly conflicts: number;
}

/** A run of base lines [start, end) replaced by `lines` on one side. */
interface Edit {
  readonly start: number;
  readonly end: number;
  readonly lines: readonly string[];
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/(?<=\n)/);
  return lines;
}

function editsBetween(base: string, side: string, sideLines: readonly string[]): Edit[] {
  return lineChanges(base, side).map((change) => ({
    start: change.i1,
    end: change.i1 + change.chg1,
    lines: sideLines.slice(change.i2, change.i2 + change.chg2),
  }));
}

export function mergeText(
  base: string,
  ours: string,
  theirs: string,
  labels: { readonly ours: string; readonly theirs: string },
): TextMergeResult {
  const b = splitLines(base);
  const o = splitLines(ours);
  const t = splitLines(theirs);
  const oursEdits = editsBetween(base, ours, o);
  const theirsEdits = editsBetween(base, theirs, t);
  const out: string[] = [];
  let conflicts = 0;
  let at = 0; // next base line to copy
  let oi = 0;
  let ti = 0;
  // The lines a side has for base range [start, end), applying its edits there.
  const sideLines = (
    edits: readonly Edit[],
    from: number,
    to: number,
    start: number,
    end: number,
  ) => {
    const lines: string[] = [];
    let pos = start;
    for (let k = from; k < to; k++) {
      const edit = edits[k]!;
      lines.push(...b.slice(pos, edit.start), ...edit.lines);
      pos = edit.end;
    }
    lines.push(...b.slice(pos, end));
    return lines;
  };
  while (oi < oursEdits.length || ti < theirsEdits.length) {
    const nextO = oursEdits[oi];
    const nextT = theirsEdits[ti];
    // Take the earliest edit, then grow the region while edits of either side overlap or touch it.
    const first = !nextT || (nextO && nextO.start <= nextT.start) ? nextO! : nextT;
    let start = first.start;
    let end = first.end;
    let oTo = oi;
    let tTo = ti;
    let grew = true;
    while (grew) {
      grew = false;
      while (oTo < oursEdits.length && overlaps(oursEdits[oTo]!, start, end)) {
        start = Math.min(start, oursEdits[oTo]!.start);
        end = Math.max(end, oursEdits[oTo]!.end);
        oTo++;
        grew = true;
      }
      while (tTo < theirsEdits.length && overlaps(theirsEdits[tTo]!, start, end)) {
        start = Math.min(start, theirsEdits[tTo]!.start);
        end = Math.max(end, theirsEdits[tTo]!.end);
        tTo++;
        grew = true;
      }
    }
    out.push(...b.slice(at, start));
    const oursLines = sideLines(oursEdits, oi, oTo, start, end);
    const theirsLines = sideLines(theirsEdits, ti, tTo, start, end);
    if (tTo === ti) out.push(...oursLines);
    else if (oTo === oi) out.push(...theirsLines);
    else conflicts += emitConflict(out, oursLines, theirsLines, labels);
    at = end;
    oi = oTo;
    ti = tTo;
  }
  out.push(...b.slice(at));
  return { text: out.join(''), conflicts };
}

/**
 * Whether an edit overlaps or touches base range [start, end): as in Git's
 * xdiff merge, changes on the two sides are independent only when one ends
 * strictly before the other starts, so edits to adjacent lines conflict.
 */
function overlaps(edit: Edit, start: number, end: number): boolean {
  return edit.start <= end && start <= edit.end;
}

/** Writes both sides, trimmed of their common start and end; returns 1 if they still differ. */
function emitConflict(
  out: string[],
  ours: string[],
  theirs: string[],
  labels: { readonly ours: string; readonly theirs: string },
): number {
  let head = 0;
  while (head < ours.length && head < theirs.length && ours[head] === theirs[head]) head++;
  let tail = 0;
  while (
    tail < ours.length - head &&
    tail < theirs.length - head &&
    ours[ours.length - 1 - tail] === theirs[theirs.length - 1 - tail]
  )
    tail++;
  out.push(...ours.slice(0, head));
  const o = ours.slice(head, ours.length - tail);
  const t = theirs.slice(head, theirs.length - tail);
  let conflict = 0;
  if (o.length > 0 || t.length > 0) {
    conflict = 1;
    out.push(`<<<<<<< ${labels.ours}\n`, ...withNewline(o), '=======\n', ...withNewline(t));
    out.push(`>>>>>>> ${labels.theirs}\n`);
  }
  out.push(...ours.slice(ours.length - tail));
  return conflict;
}

/** A side's last line may lack its newline; inside markers it needs one. */
function withNewline(lines: string[]): string[] {
  const last = lines.at(-1);
  return last === undefined || last.endsWith('\n') ? lines : [...lines.slice(0, -1), `${last}\n`];
}
