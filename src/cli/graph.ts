/**
 * `log --graph`: the commits in the order Git gives them with `--graph`, and
 * the lines of history drawn to their left, character for character as Git
 * (2.39, graph.c) draws them.
 *
 * Vocabulary, Git's:
 * - a *column* is a line of history waiting for the commit it leads to; the
 *   columns before a commit are `columns`, after it `newColumns`;
 * - each printed row is one kind of *line*: padding (`| |`), pre-commit (room
 *   made around an octopus merge), commit (`*`), post-merge (`|\` under a
 *   merge), collapsing (columns sliding left with `/` and `_`), or skip (`...`);
 * - the *mapping* says, for each character position of the row, which new
 *   column the line of history there is heading for (-1: none); a row is
 *   collapsing until every line has reached its column.
 *
 * The order (`graphLog`) is Git's with `--graph`: the whole range is walked
 * newest first by committer date, as `log` walks it, then sorted
 * topologically, always taking the commit made ready last, so the branch a
 * merge brought in is listed right under the merge. With paths, commits that
 * change nothing under them are hidden and the shown commits' parents are
 * rewritten past them (Git's parent rewriting), so the lines still connect.
 * `HistoryGraph` draws the rows; `GraphLayout` puts each entry's lines
 * beside them, with the blank and continuation rows Git prints.
 */
import { styleText } from 'node:util';
import type { Commit } from '../odb/commit.ts';
import type { ObjectId } from '../odb/object-id.ts';
import { treesEqualUnder } from '../repo/diff.ts';
import { unbornBranch, type LogOptions } from '../repo/log.ts';
import type { Pathspec } from '../repo/pathspec.ts';
import { Refs } from '../repo/refs.ts';
import type { Repository } from '../repo/repository.ts';
import { resolveCommit } from '../repo/revision.ts';
import { readCommit } from '../repo/tree-ops.ts';

// ---- the order ----

export interface GraphEntry {
  readonly id: ObjectId;
  /** With paths, its parents are the rewritten ones, which Git's `Merge:` line and `%P` show. */
  readonly commit: Commit;
  /** The parents that are shown too, in order: the lines leaving this commit downwards. */
  readonly lanes: readonly ObjectId[];
}

/** An interesting commit the walk went through. */
interface Walked {
  readonly commit: Commit;
  /** Its parents after simplification: only the one it matches under the paths, if any. */
  readonly parents: readonly ObjectId[];
  /** It changes nothing under the paths (never, without paths). */
  readonly treesame: boolean;
}

/** How many more commits Git's walk takes once only excluded ones are left (its SLOP). */
const SLOP = 5;

/**
 * The commits `log --graph` shows, in Git's graph order. `files` is not
 * supported (the caller refuses it). Unlike `log`, nothing is produced until
 * the whole range has been walked: a topological order needs all of it.
 *
 * The walk is Git's limit_list, flags and all, because with clocks that
 * disagree (a parent newer than its child) what it shows depends on the
 * order things are found in: excluded commits ("^a", "a..", older than
 * --since) pass their exclusion down to the ancestors read so far and to
 * those read later, and the walk stops a few commits after only excluded
 * ones are left.
 */
export async function* graphLog(
  repo: Repository,
  options: LogOptions = {},
): AsyncGenerator<GraphEntry> {
  let revisions = options.revisions ?? [];
  if (revisions.length === 0) {
    const head = await new Refs(repo).head();
    if (!head.id) throw unbornBranch(head.branch);
    revisions = ['HEAD'];
  }
  const pathspecs = options.pathspecs ?? [];
  const parsed = new Map<ObjectId, Commit>();
  const parse = async (id: ObjectId): Promise<Commit> => {
    let commit = parsed.get(id);
    if (commit === undefined) {
      commit = await readCommit(repo.objects, id);
      parsed.set(id, commit);
    }
    return commit;
  };
  // Git's UNINTERESTING flag, and BOTTOM for the commits excluded by name.
  const excluded = new Set<ObjectId>();
  const bottoms = new Set<ObjectId>();
  const relevant = (id: ObjectId): boolean => !excluded.has(id) || bottoms.has(id);
  const exclude = (commit: Commit): void => {
    // Down through the commits already read; the others are marked when read.
    const stack = [...commit.parents];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (excluded.has(id)) continue;
      excluded.add(id);
      stack.push(...(parsed.get(id)?.parents ?? []));
    }
  };

  // Newest first by committer date, equal dates in the order found.
  const pending: ObjectId[] = [];
  const insert = (id: ObjectId): void => {
    const time = parsed.get(id)!.committer.time;
    let at = 0;
    while (at < pending.length && parsed.get(pending[at]!)!.committer.time >= time) at++;
    pending.splice(at, 0, id);
  };
  const seen = new Set<ObjectId>();
  for (const { id, bottom } of await startingPoints(repo, revisions)) {
    const commit = await parse(id);
    if (bottom) {
      excluded.add(id);
      bottoms.add(id);
      exclude(commit);
    }
    if (!seen.has(id)) {
      seen.add(id);
      insert(id);
    }
  }

  const walked = new Map<ObjectId, Walked>();
  // What Git's limit_list keeps, in walk order: the input of the topological sort.
  const listed: ObjectId[] = [];
  let listedTime = Infinity;
  let slop = SLOP;
  while (pending.length > 0) {
    options.signal?.throwIfAborted();
    const id = pending.shift()!;
    const commit = parsed.get(id)!;
    // --since ends each line of history there, as a "^" would.
    if (options.since !== undefined && commit.committer.time < options.since) excluded.add(id);
    if (excluded.has(id)) {
      for (const parent of commit.parents) {
        excluded.add(parent);
        exclude(await parse(parent));
        if (!seen.has(parent)) {
          seen.add(parent);
          insert(parent);
        }
      }
      exclude(commit);
      slop = stillInteresting(slop);
      if (slop > 0) continue;
      break;
    }
    const simplified =
      pathspecs.length === 0
        ? { commit, parents: commit.parents, treesame: false }
        : await simplify(repo, commit, pathspecs, relevant, parse);
    walked.set(id, simplified);
    for (const parent of simplified.parents) {
      await parse(parent);
      if (!seen.has(parent)) {
        seen.add(parent);
        insert(parent);
      }
    }
    // --until leaves newer commits out but walks past them.
    if (options.until !== undefined && commit.committer.time > options.until) continue;
    listedTime = commit.committer.time;
    listed.push(id);
  }

  /** Git's still_interesting: whether the walk may stop soon (0: now). */
  function stillInteresting(current: number): number {
    const next = pending[0];
    if (next === undefined) return 0;
    if (listedTime <= parsed.get(next)!.committer.time) return SLOP;
    if (pending.some((id) => !excluded.has(id))) return SLOP;
    return current - 1;
  }

  const listedSet = new Set(listed);
  const shown = new Set<ObjectId>();
  // Git's get_commit_action: whether a commit is shown, and so whether a line leads to it.
  const isShown = (id: ObjectId): boolean => {
    const item = walked.get(id);
    if (item === undefined || !listedSet.has(id) || excluded.has(id) || shown.has(id)) return false;
    if (!matchesFilters(item.commit, options)) return false;
    if (!item.treesame) return true;
    // A merge that changes nothing still ties two relevant lines of history together.
    return item.parents.filter(relevant).length >= 2;
  };
  const limit = options.maxCount ?? Infinity;
  for (const id of topologicalOrder(listed, walked)) {
    if (shown.size >= limit) return;
    if (!isShown(id)) continue;
    shown.add(id);
    const item = walked.get(id)!;
    if (pathspecs.length === 0) {
      yield { id, commit: item.commit, lanes: item.commit.parents.filter(isShown) };
      continue;
    }
    const parents = rewriteParents(item.parents, walked, excluded, relevant);
    yield { id, commit: { ...item.commit, parents }, lanes: parents.filter(isShown) };
  }
}

/**
 * Git's default history simplification for one commit: when it matches a
 * (relevant) parent under the paths, only that parent is followed and the
 * commit is hidden. A merge matching none of its relevant parents is kept.
 */
async function simplify(
  repo: Repository,
  commit: Commit,
  pathspecs: readonly Pathspec[],
  relevant: (id: ObjectId) => boolean,
  parse: (id: ObjectId) => Promise<Commit>,
): Promise<Walked> {
  if (commit.parents.length === 0) {
    const treesame = await treesEqualUnder(repo, undefined, commit.tree, pathspecs);
    return { commit, parents: [], treesame };
  }
  let relevantParents = 0;
  let relevantChange = false;
  let irrelevantChange = false;
  for (const parent of commit.parents) {
    const isRelevant = relevant(parent);
    if (isRelevant) relevantParents++;
    const parentTree = (await parse(parent)).tree;
    if (await treesEqualUnder(repo, parentTree, commit.tree, pathspecs)) {
      // The same as an irrelevant (excluded) parent: keep the other lines.
      if (!isRelevant) continue;
      return { commit, parents: [parent], treesame: true };
    }
    if (isRelevant) relevantChange = true;
    else irrelevantChange = true;
  }
  const treesame = relevantParents > 0 ? !relevantChange : !irrelevantChange;
  return { commit, parents: commit.parents, treesame };
}

/**
 * Git's sort_in_topological_order in graph order: every commit after all its
 * children; the starting tips in walk order; then always the commit made
 * ready last, so after a merge its last parent's line comes first.
 */
function topologicalOrder(
  listed: readonly ObjectId[],
  walked: ReadonlyMap<ObjectId, Walked>,
): ObjectId[] {
  // 1 + the number of listed children still to print; 0 once printed (or not listed).
  const waiting = new Map<ObjectId, number>();
  for (const id of listed) waiting.set(id, 1);
  for (const id of listed) {
    for (const parent of walked.get(id)!.parents) {
      const count = waiting.get(parent);
      if (count) waiting.set(parent, count + 1);
    }
  }
  const ready = listed.filter((id) => waiting.get(id) === 1).reverse();
  const order: ObjectId[] = [];
  while (ready.length > 0) {
    const id = ready.pop()!;
    for (const parent of walked.get(id)!.parents) {
      const count = waiting.get(parent);
      if (!count) continue;
      waiting.set(parent, count - 1);
      if (count - 1 === 1) ready.push(parent);
    }
    waiting.set(id, 0);
    order.push(id);
  }
  return order;
}

/**
 * Git's rewrite_parents: each parent that is hidden for changing nothing
 * under the paths is replaced by its own (sole relevant) parent, until a
 * shown or excluded commit; a hidden root drops out. Duplicates go.
 */
function rewriteParents(
  parents: readonly ObjectId[],
  walked: ReadonlyMap<ObjectId, Walked>,
  excluded: ReadonlySet<ObjectId>,
  relevant: (id: ObjectId) => boolean,
): ObjectId[] {
  const out: ObjectId[] = [];
  for (let parent of parents) {
    let dropped = false;
    while (!excluded.has(parent)) {
      const item = walked.get(parent);
      if (item === undefined || !item.treesame) break;
      if (item.parents.length === 0) {
        dropped = true;
        break;
      }
      const next = soleRelevantParent(item.parents, relevant);
      if (next === undefined) break;
      parent = next;
    }
    if (!dropped && !out.includes(parent)) out.push(parent);
  }
  return out;
}

function soleRelevantParent(
  parents: readonly ObjectId[],
  relevant: (id: ObjectId) => boolean,
): ObjectId | undefined {
  if (parents.length === 1) return parents[0];
  const found = parents.filter(relevant);
  return found.length === 1 ? found[0] : undefined;
}

/** `--author` and `--grep`; the dates are applied by the walk, as in Git. */
function matchesFilters(commit: Commit, options: LogOptions): boolean {
  if (options.author && !options.author.test(`${commit.author.name} <${commit.author.email}>`))
    return false;
  return !options.grep || options.grep.test(commit.message);
}

/**
 * The commits named, in the order given: "a..b" is "^a b"; "^a" names a
 * bottom, whose history is excluded.
 */
async function startingPoints(
  repo: Repository,
  revisions: readonly string[],
): Promise<{ id: ObjectId; bottom: boolean }[]> {
  const named: { id: ObjectId; bottom: boolean }[] = [];
  for (const rev of revisions) {
    const range = /^(.*?)\.\.(?!\.)(.*)$/.exec(rev);
    if (range && !rev.includes('...')) {
      named.push({ id: await resolveCommit(repo, range[1] || 'HEAD'), bottom: true });
      named.push({ id: await resolveCommit(repo, range[2] || 'HEAD'), bottom: false });
    } else if (rev.startsWith('^')) {
      named.push({ id: await resolveCommit(repo, rev.slice(1)), bottom: true });
    } else named.push({ id: await resolveCommit(repo, rev), bottom: false });
  }
  return named;
}

// ---- the drawing ----

type LineKind = 'padding' | 'skip' | 'pre-commit' | 'commit' | 'post-merge' | 'collapsing';

interface Column {
  /** The commit this line of history leads to. */
  readonly commit: ObjectId;
  /** An index into COLUMN_COLORS. */
  readonly color: number;
}

/** Git's default `log.graphColors`, taken in turn by new lines of history. */
const COLUMN_COLORS: readonly Parameters<typeof styleText>[0][] = [
  'red',
  'green',
  'yellow',
  'blue',
  'magenta',
  'cyan',
  ['bold', 'red'],
  ['bold', 'green'],
  ['bold', 'yellow'],
  ['bold', 'blue'],
  ['bold', 'magenta'],
  ['bold', 'cyan'],
];

/** The first-parent edge, then the others, of a post-merge line, by merge layout. */
const MERGE_EDGES = ['/', '|', '\\'] as const;

/** One row of graph being drawn, and its width in characters (colours take none). */
class Row {
  text = '';
  width = 0;
  readonly #colored: boolean;

  constructor(colored: boolean) {
    this.#colored = colored;
  }

  add(text: string): void {
    this.text += text;
    this.width += text.length;
  }

  edge(column: Column | undefined, char: string): void {
    const style = COLUMN_COLORS[column?.color ?? -1];
    this.text +=
      this.#colored && style !== undefined
        ? styleText(style, char, { validateStream: false })
        : char;
    this.width += 1;
  }
}

/**
 * The graph beside `log`'s entries. Call `update` with each shown commit in
 * order, then take its rows: `nextLine` until the commit's own row, one per
 * further line of the entry, and the rest until `isCommitFinished`.
 */
export class HistoryGraph {
  readonly #colored: boolean;
  #commit: ObjectId | undefined;
  /** The commit's shown parents; a merge has two or more. */
  #parents: readonly ObjectId[] = [];
  /** Every row of this commit is padded to this many characters. */
  #width = 0;
  #expansionRow = 0;
  #state: LineKind = 'padding';
  #prevState: LineKind = 'padding';
  #commitIndex = 0;
  #prevCommitIndex = 0;
  /** 0: the first parent is in a column left of the merge (`|/|\`); 1: it takes the merge's column. */
  #mergeLayout = 0;
  /** Columns this commit adds to the right (-1: a new one joined the next column at once). */
  #edgesAdded = 0;
  #prevEdgesAdded = 0;
  #columns: Column[] = [];
  #newColumns: Column[] = [];
  /** Kept between commits, as Git keeps its arrays: a commit row reads the last collapse's. */
  #mapping: number[] = [];
  #oldMapping: number[] = [];
  #mappingSize = 0;
  #color = COLUMN_COLORS.length - 1;

  constructor(options: { colored?: boolean } = {}) {
    this.#colored = options.colored ?? false;
  }

  get isCommitFinished(): boolean {
    return this.#state === 'padding';
  }

  /** Moves to the next shown commit; `parents` are its shown parents, in order. */
  update(commit: ObjectId, parents: readonly ObjectId[]): void {
    this.#commit = commit;
    this.#parents = parents;
    this.#prevCommitIndex = this.#commitIndex;
    this.#updateColumns();
    this.#expansionRow = 0;
    // No row of the new state has been printed, so the previous state stands.
    if (this.#state !== 'padding') this.#state = 'skip';
    else if (this.#needsPreCommitLine()) this.#state = 'pre-commit';
    else this.#state = 'commit';
  }

  /** The next row, and whether it was the commit's own row (`*`). */
  nextLine(): { text: string; commitLine: boolean } {
    if (this.#commit === undefined) return { text: '', commitLine: false };
    const row = new Row(this.#colored);
    const commitLine = this.#state === 'commit';
    switch (this.#state) {
      case 'padding':
        for (const column of this.#newColumns) {
          row.edge(column, '|');
          row.add(' ');
        }
        break;
      case 'skip':
        row.add('...');
        this.#setState(this.#needsPreCommitLine() ? 'pre-commit' : 'commit');
        break;
      case 'pre-commit':
        this.#preCommitLine(row);
        break;
      case 'commit':
        this.#commitLine(row);
        break;
      case 'post-merge':
        this.#postMergeLine(row);
        break;
      case 'collapsing':
        this.#collapsingLine(row);
        break;
    }
    this.#pad(row);
    return { text: row.text, commitLine };
  }

  /**
   * A row that only continues the lines downwards, for a blank line between
   * entries; before the commit's own row is drawn it stands in for it.
   */
  paddingLine(): string {
    if (this.#state !== 'commit') return this.nextLine().text;
    const row = new Row(this.#colored);
    for (const column of this.#columns) {
      row.edge(column, '|');
      const octopus = column.commit === this.#commit && this.#parents.length > 2;
      row.add(octopus ? ' '.repeat((this.#parents.length - 2) * 2) : ' ');
    }
    this.#pad(row);
    this.#prevState = 'padding';
    return row.text;
  }

  #setState(state: LineKind): void {
    this.#prevState = this.#state;
    this.#state = state;
  }

  #pad(row: Row): void {
    if (row.width < this.#width) row.add(' '.repeat(this.#width - row.width));
  }

  #map(i: number): number {
    return this.#mapping[i] ?? -1;
  }

  #updateColumns(): void {
    this.#columns = this.#newColumns;
    this.#newColumns = [];
    this.#mappingSize = 2 * (this.#columns.length + this.#parents.length);
    while (this.#mapping.length < this.#mappingSize) this.#mapping.push(-1);
    while (this.#oldMapping.length < this.#mappingSize) this.#oldMapping.push(-1);
    this.#mapping.fill(-1, 0, this.#mappingSize);
    this.#width = 0;
    this.#prevEdgesAdded = this.#edgesAdded;
    this.#edgesAdded = 0;
    // The existing columns keep their order; the commit's parents take its place.
    let seenThis = false;
    let inColumns = true;
    for (let i = 0; i <= this.#columns.length; i++) {
      let commit: ObjectId;
      if (i === this.#columns.length) {
        if (seenThis) break;
        inColumns = false;
        commit = this.#commit!;
      } else commit = this.#columns[i]!.commit;
      if (commit !== this.#commit) {
        this.#insertIntoNewColumns(commit, -1);
        continue;
      }
      seenThis = true;
      this.#commitIndex = i;
      this.#mergeLayout = -1;
      for (const parent of this.#parents) {
        // A merge's parents, or a new line of history, each take the next colour.
        if (this.#parents.length > 1 || !inColumns)
          this.#color = (this.#color + 1) % COLUMN_COLORS.length;
        this.#insertIntoNewColumns(parent, i);
      }
      // The commit takes two characters even with no parent shown.
      if (this.#parents.length === 0) this.#width += 2;
    }
    while (this.#mappingSize > 1 && this.#map(this.#mappingSize - 1) < 0) this.#mappingSize--;
  }

  /** `commitIndex` is the merge's column for its parents, -1 for other columns. */
  #insertIntoNewColumns(commit: ObjectId, commitIndex: number): void {
    let i = this.#newColumns.findIndex((column) => column.commit === commit);
    if (i < 0) {
      i = this.#newColumns.length;
      const existing = this.#columns.find((column) => column.commit === commit);
      this.#newColumns.push({ commit, color: existing?.color ?? this.#color });
    }
    let at: number;
    if (this.#parents.length > 1 && commitIndex > -1 && this.#mergeLayout === -1) {
      // A merge's first parent: the layout depends on whether it lies to the left.
      const distance = commitIndex - i;
      const shift = distance > 1 ? 2 * distance - 3 : 1;
      this.#mergeLayout = distance > 0 ? 0 : 1;
      this.#edgesAdded = this.#parents.length + this.#mergeLayout - 2;
      at = this.#width + (this.#mergeLayout - 1) * shift;
      this.#width += 2 * this.#mergeLayout;
    } else if (this.#edgesAdded > 0 && i === this.#map(this.#width - 2)) {
      // A merge's new edge that joins the column right of it at once: `|\|`, not `|\ \`.
      at = this.#width - 2;
      this.#edgesAdded = -1;
    } else {
      at = this.#width;
      this.#width += 2;
    }
    this.#mapping[at] = i;
  }

  #dashedParents(): number {
    return this.#parents.length + this.#mergeLayout - 3;
  }

  /** An octopus merge with columns to its right first widens the gap for its edges. */
  #needsPreCommitLine(): boolean {
    return (
      this.#parents.length >= 3 &&
      this.#commitIndex < this.#columns.length - 1 &&
      this.#expansionRow < this.#dashedParents() * 2
    );
  }

  #isMappingCorrect(): boolean {
    // A line one to the right of its column is drawn `/` and arrives on the next row.
    for (let i = 0; i < this.#mappingSize; i++) {
      const target = this.#map(i);
      if (target >= 0 && target !== Math.floor(i / 2)) return false;
    }
    return true;
  }

  #preCommitLine(row: Row): void {
    let seenThis = false;
    this.#columns.forEach((column, i) => {
      if (column.commit === this.#commit) {
        seenThis = true;
        row.edge(column, '|');
        row.add(' '.repeat(this.#expansionRow));
      } else if (seenThis && this.#expansionRow === 0) {
        // Lines that left the previous merge as `\` keep that slant.
        const slanted = this.#prevState === 'post-merge' && this.#prevCommitIndex < i;
        row.edge(column, slanted ? '\\' : '|');
      } else if (seenThis) row.edge(column, '\\');
      else row.edge(column, '|');
      row.add(' ');
    });
    this.#expansionRow++;
    if (!this.#needsPreCommitLine()) this.#setState('commit');
  }

  #commitLine(row: Row): void {
    let seenThis = false;
    for (let i = 0; i <= this.#columns.length; i++) {
      const column = this.#columns[i];
      if (i === this.#columns.length && seenThis) break;
      if (column === undefined || column.commit === this.#commit) {
        seenThis = true;
        row.add('*');
        if (this.#parents.length > 2) this.#octopusDashes(row);
      } else if (seenThis && this.#edgesAdded > 1) row.edge(column, '\\');
      else if (seenThis && this.#edgesAdded === 1) {
        // The first row of a right-skewed merge: keep a `\` arriving from the last merge.
        const slanted =
          this.#prevState === 'post-merge' && this.#prevEdgesAdded > 0 && this.#prevCommitIndex < i;
        row.edge(column, slanted ? '\\' : '|');
      } else if (
        this.#prevState === 'collapsing' &&
        (this.#oldMapping[2 * i + 1] ?? -1) === i &&
        this.#map(2 * i) < i
      ) {
        row.edge(column, '/');
      } else row.edge(column, '|');
      row.add(' ');
    }
    if (this.#parents.length > 1) this.#setState('post-merge');
    else this.#setState(this.#isMappingCorrect() ? 'padding' : 'collapsing');
  }

  /** `*-.` / `*---.`: dashes towards the columns an octopus merge's later parents take. */
  #octopusDashes(row: Row): void {
    const dashed = this.#dashedParents();
    for (let i = 0; i < dashed; i++) {
      const column = this.#newColumns[this.#map((this.#commitIndex + i + 2) * 2)];
      row.edge(column, '-');
      row.edge(column, i === dashed - 1 ? '.' : '-');
    }
  }

  #postMergeLine(row: Row): void {
    const firstParent = this.#parents[0];
    let firstParentColumn: Column | undefined;
    let seenThis = false;
    for (let i = 0; i <= this.#columns.length; i++) {
      const column = this.#columns[i];
      if (i === this.#columns.length && seenThis) break;
      const commit = column?.commit ?? this.#commit;
      if (commit === this.#commit) {
        seenThis = true;
        let edge = this.#mergeLayout;
        this.#parents.forEach((parent, j) => {
          const target = this.#newColumns.find((c) => c.commit === parent);
          row.edge(target, MERGE_EDGES[edge]!);
          if (edge < 2) edge++;
          else if (this.#edgesAdded > 0 || j < this.#parents.length - 1) row.add(' ');
        });
        if (this.#edgesAdded === 0) row.add(' ');
      } else if (seenThis) {
        row.edge(column, this.#edgesAdded > 0 ? '\\' : '|');
        row.add(' ');
      } else {
        row.edge(column, '|');
        // Between the first parent's column and the merge, its edge runs along `_`.
        if (this.#mergeLayout !== 0 || i !== this.#commitIndex - 1) {
          if (firstParentColumn) row.edge(firstParentColumn, '_');
          else row.add(' ');
        }
      }
      if (commit === firstParent) firstParentColumn = column;
    }
    this.#setState(this.#isMappingCorrect() ? 'padding' : 'collapsing');
  }

  /**
   * Moves every line one step towards its column: straight down when there,
   * else one left (`/`), crossing at most one other line per row and letting
   * one line run left along `_` when it has far to go.
   */
  #collapsingLine(row: Row): void {
    [this.#mapping, this.#oldMapping] = [this.#oldMapping, this.#mapping];
    const size = this.#mappingSize;
    const mapping = this.#mapping;
    const old = this.#oldMapping;
    mapping.fill(-1, 0, size);
    let horizontalEdge = -1;
    let horizontalTarget = -1;
    const runLeft = (target: number, from: number): void => {
      for (let j = target * 2 + 3; j < from - 2; j += 2) mapping[j] = target;
    };
    for (let i = 0; i < size; i++) {
      const target = old[i] ?? -1;
      if (target < 0) continue;
      // Lines only ever move left, so crossings are easy to read.
      if (target * 2 === i) mapping[i] = target;
      else if ((mapping[i - 1] ?? -1) < 0) {
        mapping[i - 1] = target;
        if (horizontalEdge === -1) {
          horizontalEdge = i;
          horizontalTarget = target;
          runLeft(target, i);
        }
      } else if (mapping[i - 1] === target) {
        // Joins the line to its left, which leads to the same commit.
      } else {
        // Crosses the line to its left.
        mapping[i - 2] = target;
        if (horizontalEdge === -1) {
          horizontalTarget = target;
          horizontalEdge = i - 1;
          runLeft(target, i);
        }
      }
    }
    for (let i = 0; i < size; i++) old[i] = mapping[i]!;
    if ((mapping[size - 1] ?? -1) < 0) this.#mappingSize--;
    let usedHorizontal = false;
    for (let i = 0; i < this.#mappingSize; i++) {
      const target = mapping[i] ?? -1;
      const column = this.#newColumns[target];
      if (target < 0) row.add(' ');
      else if (target * 2 === i) row.edge(column, '|');
      else if (target === horizontalTarget && i !== horizontalEdge - 1) {
        // Only the first `_` segment carries on to the next row.
        if (i !== target * 2 + 3) mapping[i] = -1;
        usedHorizontal = true;
        row.edge(column, '_');
      } else {
        if (usedHorizontal && i < horizontalEdge) mapping[i] = -1;
        row.edge(column, '/');
      }
    }
    if (this.#isMappingCorrect()) this.#setState('padding');
  }
}

// ---- entries beside the graph ----

/**
 * How a format ends its entries, as Git's log-tree: `separate` puts a line
 * between entries (medium, `format:`), `terminate` ends each one (oneline,
 * `tformat:`), `none` neither (an empty `--format=`).
 */
export type EntryEnd = 'separate' | 'terminate' | 'none';

/** Lays out `log` entries beside a `HistoryGraph`, as Git's show_log does. */
export class GraphLayout {
  readonly #graph: HistoryGraph;
  readonly #end: EntryEnd;
  #shownOne = false;
  #missingNewline = false;

  constructor(end: EntryEnd, options: { colored?: boolean } = {}) {
    this.#graph = new HistoryGraph(options);
    this.#end = end;
  }

  /**
   * The output for one entry: `text` is the entry as it prints without a
   * graph (its first line goes beside the commit's `*`). Returns exactly the
   * characters to write, newlines included.
   */
  entry(id: ObjectId, lanes: readonly ObjectId[], text: string): string {
    const graph = this.#graph;
    graph.update(id, lanes);
    let out = '';
    if (this.#shownOne && this.#end === 'separate') {
      // A blank separator line still carries the lines of history.
      if (!this.#missingNewline) out += graph.paddingLine();
      out += '\n';
    }
    this.#shownOne = true;
    for (let line = graph.nextLine(); ; line = graph.nextLine()) {
      out += line.text;
      if (line.commitLine) break;
      out += '\n';
    }
    this.#missingNewline = !text.endsWith('\n');
    // Each further line of the entry gets the graph's next row before it.
    let rest = text;
    while (rest !== '') {
      const end = rest.indexOf('\n');
      if (end < 0) {
        out += rest;
        break;
      }
      out += rest.slice(0, end + 1);
      rest = rest.slice(end + 1);
      if (rest !== '') out += graph.nextLine().text;
    }
    if (!graph.isCommitFinished) {
      // The rows still needed before the next commit (a merge's `|\`, a collapse).
      const remainder: string[] = [];
      do remainder.push(graph.nextLine().text);
      while (!graph.isCommitFinished);
      out += this.#missingNewline ? `\n${remainder.join('\n')}` : `${remainder.join('\n')}\n`;
    }
    if (this.#end === 'terminate') {
      if (!this.#missingNewline) out += graph.paddingLine();
      out += '\n';
    }
    return out;
  }
}
