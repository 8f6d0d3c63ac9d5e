/**
 * Rendering history and changes as Git prints them: commit headers, dates,
 * decorations, unified patches, `--stat` graphs, `--numstat`,
 * `--name-status` and `--name-only`. Shared by `log`, `show` and `diff`;
 * everything here is pure formatting of the repo layer's typed results.
 */
import type { Signature, Tag } from '../odb/commit.ts';
import type { DiffSide, FileDiff, UnmergedPath } from '../repo/diff.ts';
import type { LogEntry, RefDecoration } from '../repo/log.ts';
import { hunkHeader } from '../repo/text-diff.ts';
import { paint, type Cli } from './context.ts';
import { needsQuoting, quotePath } from './quote-path.ts';

export { quotePath } from './quote-path.ts';

const ABBREV = 7;
const NULL_ID = '0'.repeat(ABBREV);

// ---- paths ----

// ---- commits ----

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Git's default date format, in the signature's own time zone: "Fri Jan 5 10:00:00 2024 +0200". */
export function formatDate(sig: Signature): string {
  const local = new Date((sig.time + sig.tzOffset * 60) * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  const abs = Math.abs(sig.tzOffset);
  const tz = `${sig.tzOffset < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
  const time = `${two(local.getUTCHours())}:${two(local.getUTCMinutes())}:${two(local.getUTCSeconds())}`;
  return `${DAYS[local.getUTCDay()]} ${MONTHS[local.getUTCMonth()]} ${local.getUTCDate()} ${time} ${local.getUTCFullYear()} ${tz}`;
}

/** The subject: the message's first paragraph on one line. */
export function subjectOf(message: string): string {
  const lines = message.replace(/^\s*\n/, '').split('\n');
  const end = lines.findIndex((line) => line.trim() === '');
  return (end < 0 ? lines : lines.slice(0, end)).map((l) => l.trim()).join(' ');
}

/** Message lines indented by four spaces, without leading or trailing blank lines. */
function indentMessage(message: string): string[] {
  const lines = message.split('\n').map((line) => line.replace(/\s+$/, ''));
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines.map((line) => `    ${line}`);
}

export function formatDecorations(cli: Cli, decorations: readonly RefDecoration[]): string {
  const head = decorations.find((d) => d.kind === 'head');
  const parts: string[] = [];
  if (head) {
    parts.push(
      head.branch === undefined
        ? paint(cli, ['bold', 'cyan'], 'HEAD')
        : `${paint(cli, ['bold', 'cyan'], 'HEAD ->')} ${paint(cli, ['bold', 'green'], head.branch)}`,
    );
  }
  for (const d of decorations) {
    if (d.kind === 'branch' && d.name !== head?.branch)
      parts.push(paint(cli, ['bold', 'green'], d.name));
    else if (d.kind === 'tag') parts.push(paint(cli, ['bold', 'yellow'], `tag: ${d.name}`));
    else if (d.kind === 'remote') parts.push(paint(cli, ['bold', 'red'], d.name));
  }
  return parts.length === 0
    ? ''
    : ` ${paint(cli, 'yellow', '(')}${parts.join(paint(cli, 'yellow', ', '))}${paint(cli, 'yellow', ')')}`;
}

/** `log`'s default ("medium") header: commit line, Merge, Author, Date, indented message. */
export function formatCommit(
  cli: Cli,
  entry: Pick<LogEntry, 'id' | 'commit'>,
  decorations: readonly RefDecoration[] = [],
): string[] {
  const { id, commit } = entry;
  const lines = [`${paint(cli, 'yellow', `commit ${id}`)}${formatDecorations(cli, decorations)}`];
  if (commit.parents.length > 1)
    lines.push(`Merge: ${commit.parents.map((p) => p.slice(0, ABBREV)).join(' ')}`);
  lines.push(`Author: ${commit.author.name} <${commit.author.email}>`);
  lines.push(`Date:   ${formatDate(commit.author)}`);
  lines.push('', ...indentMessage(commit.message));
  return lines;
}

export function formatOneline(
  cli: Cli,
  entry: Pick<LogEntry, 'id' | 'commit'>,
  decorations: readonly RefDecoration[] = [],
): string {
  return `${paint(cli, 'yellow', entry.id.slice(0, ABBREV))}${formatDecorations(cli, decorations)} ${subjectOf(entry.commit.message)}`;
}

/** An annotated tag's header as `git show <tag>` prints it. */
export function formatTag(tag: Tag): string[] {
  const lines = [
    `tag ${tag.tag}`,
    `Tagger: ${tag.tagger.name} <${tag.tagger.email}>`,
    `Date:   ${formatDate(tag.tagger)}`,
    '',
  ];
  const message = tag.message.replace(/\n+$/, '');
  if (message !== '') lines.push(...message.split('\n'));
  return lines;
}

// ---- patches ----

const shortSha = (side: DiffSide | undefined): string =>
  side?.sha256 === undefined ? NULL_ID : side.sha256.slice(0, ABBREV);

function labelLine(marker: string, label: string): string {
  // Git ends the line with a tab when the name holds a space, for patch(1).
  return `${marker} ${label}${label.includes(' ') ? '\t' : ''}`;
}

function binarySummary(
  path: string,
  old: DiffSide | undefined,
  next: DiffSide | undefined,
): string {
  const oldType = old?.mediaType;
  const newType = next?.mediaType;
  const type =
    oldType !== undefined && newType !== undefined && oldType !== newType
      ? `${oldType} -> ${newType}`
      : (newType ?? oldType ?? 'application/octet-stream');
  return `# ${path}: ${old?.size ?? 0} -> ${next?.size ?? 0} bytes (${type})`;
}

function filePatch(
  cli: Cli,
  file: FileDiff,
  old: DiffSide | undefined,
  next: DiffSide | undefined,
  part: 'whole' | 'deletion' | 'creation',
): string[] {
  const meta = (text: string): string => paint(cli, 'bold', text);
  const oldPath = old?.path ?? next!.path;
  const newPath = next?.path ?? old!.path;
  const a = quotePath(oldPath, 'a/');
  const b = quotePath(newPath, 'b/');
  const lines = [meta(`diff --git ${a} ${b}`)];
  if (!old) lines.push(meta(`new file mode ${next!.mode}`));
  else if (!next) lines.push(meta(`deleted file mode ${old.mode}`));
  else if (old.mode !== next.mode) {
    lines.push(meta(`old mode ${old.mode}`), meta(`new mode ${next.mode}`));
  }
  if (file.status === 'R' && old && next) {
    lines.push(
      meta(`similarity index ${file.similarity ?? 100}%`),
      meta(`rename from ${quotePath(old.path)}`),
      meta(`rename to ${quotePath(next.path)}`),
    );
  }
  const sameContent = old && next && old.sha256 === next.sha256;
  if (!sameContent) {
    const mode = old && next && old.mode === next.mode ? ` ${old.mode}` : '';
    lines.push(meta(`index ${shortSha(old)}..${shortSha(next)}${mode}`));
  }
  if (sameContent) return lines;
  const oldLabel = old ? a : '/dev/null';
  const newLabel = next ? b : '/dev/null';
  if (file.binary) {
    lines.push(`Binary files ${oldLabel} and ${newLabel} differ`);
    lines.push(binarySummary(newPath, old, next));
    for (const line of file.semantic ?? []) lines.push(`#   ${line}`);
    return lines;
  }
  const hunks = file.hunks.filter((h) =>
    part === 'deletion' ? h.oldLines > 0 : part === 'creation' ? h.newLines > 0 : true,
  );
  if (hunks.length === 0) return lines;
  lines.push(meta(labelLine('---', oldLabel)), meta(labelLine('+++', newLabel)));
  for (const hunk of hunks) {
    const header = hunkHeader(hunk);
    const at = header.indexOf(' @@') + 3;
    lines.push(paint(cli, 'cyan', header.slice(0, at)) + header.slice(at));
    for (const line of hunk.lines) {
      if (line.startsWith('+')) lines.push(paint(cli, 'green', line));
      else if (line.startsWith('-')) lines.push(paint(cli, 'red', line));
      else lines.push(line);
    }
  }
  return lines;
}

/** Git's unified patch for a list of changed files. */
export function formatPatch(cli: Cli, files: readonly FileDiff[]): string[] {
  const lines: string[] = [];
  for (const file of files) {
    if (file.status === 'T') {
      lines.push(...filePatch(cli, file, file.old, undefined, 'deletion'));
      lines.push(...filePatch(cli, file, undefined, file.new, 'creation'));
    } else {
      lines.push(...filePatch(cli, file, file.old, file.new, 'whole'));
    }
  }
  return lines;
}

/**
 * A conflicted path as `git diff` shows it during a merge: its combined
 * diff (`diff --cc`, both sides against the working file), or
 * `* Unmerged path <p>` when a side has no such file.
 */
export function formatUnmerged(cli: Cli, file: UnmergedPath): string[] {
  const combined = file.combined;
  if (!combined) return [`* Unmerged path ${quotePath(file.path)}`];
  const meta = (text: string): string => paint(cli, 'bold', text);
  const [ours, theirs] = combined.sides.map((id) => id.slice(0, 7));
  const lines = [
    meta(`diff --cc ${quotePath(file.path)}`),
    meta(`index ${ours},${theirs}..0000000`),
  ];
  if (combined.binary) return [...lines, 'Binary files differ'];
  lines.push(meta(`--- ${quotePath(file.path, 'a/')}`), meta(`+++ ${quotePath(file.path, 'b/')}`));
  for (const line of combined.lines) {
    if (line.startsWith('@@@')) lines.push(paint(cli, 'cyan', line));
    else if (line.slice(0, 2).includes('-')) lines.push(paint(cli, 'red', line));
    else if (line.slice(0, 2).includes('+')) lines.push(paint(cli, 'green', line));
    else lines.push(line);
  }
  return lines;
}

// ---- name lists ----

/** Git's `pprint_rename`: "a/{b => c}/d" around the common prefix and suffix. */
export function renameName(from: string, to: string): string {
  if (needsQuoting(from) || needsQuoting(to)) return `${quotePath(from)} => ${quotePath(to)}`;
  let prefix = 0;
  for (let i = 0; i < from.length && i < to.length && from[i] === to[i]; i++) {
    if (from[i] === '/') prefix = i + 1;
  }
  let suffix = 0;
  const adjust = prefix ? 1 : 0;
  for (
    let i = from.length - 1, j = to.length - 1;
    i >= prefix - adjust && j >= prefix - adjust && from[i] === to[j];
    i--, j--
  ) {
    if (from[i] === '/') suffix = from.length - i;
  }
  const fromMid = from.slice(prefix, Math.max(prefix, from.length - suffix));
  const toMid = to.slice(prefix, Math.max(prefix, to.length - suffix));
  if (prefix + suffix === 0) return `${fromMid} => ${toMid}`;
  return `${from.slice(0, prefix)}{${fromMid} => ${toMid}}${from.slice(from.length - suffix)}`;
}

function displayName(file: FileDiff): string {
  if (file.status === 'R' && file.old) return renameName(file.old.path, file.path);
  return quotePath(file.path);
}

export function formatNameOnly(files: readonly FileDiff[]): string[] {
  return files.map((f) => quotePath(f.path));
}

export function formatNameStatus(files: readonly FileDiff[]): string[] {
  return files.map((f) =>
    f.status === 'R' && f.old
      ? `R${String(f.similarity ?? 100).padStart(3, '0')}\t${quotePath(f.old.path)}\t${quotePath(f.path)}`
      : `${f.status}\t${quotePath(f.path)}`,
  );
}

export function formatNumstat(files: readonly FileDiff[]): string[] {
  return files.map((f) =>
    f.binary ? `-\t-\t${displayName(f)}` : `${f.added}\t${f.deleted}\t${displayName(f)}`,
  );
}

// ---- --stat, after Git's diff.c show_stats ----

/** Columns for `--stat`: $COLUMNS, else the terminal's width, else 80 (as Git's term_columns). */
export function statWidth(cli: Cli): number {
  const fromEnv = Number(cli.env['COLUMNS']);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return process.stdout.isTTY ? process.stdout.columns || 80 : 80;
}

const decimalWidth = (n: number): number => String(n).length;

/** Display width: code points (Git counts East Asian wide characters as two; close enough). */
const widthOf = (text: string): number => [...text].length;

/** A binary file's stat numbers: bytes before and after, unless its content did not change. */
function binaryBytes(file: FileDiff): { before: number; after: number } | undefined {
  if (!file.binary) return undefined;
  if (file.old && file.new && file.old.sha256 !== undefined && file.old.sha256 === file.new.sha256)
    return undefined;
  return { before: file.old?.size ?? 0, after: file.new?.size ?? 0 };
}

export function formatStatSummary(files: readonly FileDiff[]): string {
  let insertions = 0;
  let deletions = 0;
  for (const f of files) {
    if (f.binary) continue;
    insertions += f.added;
    deletions += f.deleted;
  }
  if (files.length === 0) return ' 0 files changed';
  let out = ` ${files.length} file${files.length === 1 ? '' : 's'} changed`;
  if (insertions || deletions === 0)
    out += `, ${insertions} insertion${insertions === 1 ? '' : 's'}(+)`;
  if (deletions || insertions === 0)
    out += `, ${deletions} deletion${deletions === 1 ? '' : 's'}(-)`;
  return out;
}

/** `--stat` lines plus the summary line, fitted to `width` columns (80 when not a terminal). */
export function formatStat(cli: Cli, files: readonly FileDiff[], width = 80): string[] {
  if (files.length === 0) return [];
  const names = files.map(displayName);
  let maxLen = 0;
  let maxChange = 0;
  let numberWidth = 0;
  let binWidth = 0;
  for (const [i, file] of files.entries()) {
    maxLen = Math.max(maxLen, widthOf(names[i]!));
    if (file.binary) {
      const bytes = binaryBytes(file);
      const w = 14 + decimalWidth(bytes?.after ?? 0) + decimalWidth(bytes?.before ?? 0);
      binWidth = Math.max(binWidth, w);
      numberWidth = 3;
      continue;
    }
    maxChange = Math.max(maxChange, file.added + file.deleted);
  }
  numberWidth = Math.max(decimalWidth(maxChange), numberWidth);
  width = Math.max(width, 16 + 6 + numberWidth);
  let graphWidth = maxChange + 4 > binWidth ? maxChange : binWidth - 4;
  let nameWidth = maxLen;
  if (nameWidth + numberWidth + 6 + graphWidth > width) {
    if (graphWidth > Math.trunc((width * 3) / 8) - numberWidth - 6) {
      graphWidth = Math.trunc((width * 3) / 8) - numberWidth - 6;
      if (graphWidth < 6) graphWidth = 6;
    }
    if (nameWidth > width - numberWidth - 6 - graphWidth)
      nameWidth = width - numberWidth - 6 - graphWidth;
    else graphWidth = width - numberWidth - 6 - nameWidth;
  }
  const scale = (it: number): number =>
    it === 0 ? 0 : 1 + Math.trunc((it * (graphWidth - 1)) / maxChange);
  const lines: string[] = [];
  for (const [i, file] of files.entries()) {
    let name = names[i]!;
    let prefix = '';
    let len = nameWidth;
    if (nameWidth < widthOf(name)) {
      prefix = '...';
      len = Math.max(0, len - 3);
      const chars = [...name];
      name = chars.slice(chars.length - len).join('');
      const slash = name.indexOf('/');
      if (slash >= 0) name = name.slice(slash);
    }
    const padding = ' '.repeat(Math.max(0, len - widthOf(name)));
    const head = ` ${prefix}${name}${padding} | `;
    if (file.binary) {
      const bytes = binaryBytes(file);
      const bin = 'Bin'.padStart(numberWidth);
      lines.push(
        bytes
          ? `${head}${bin} ${paint(cli, 'red', String(bytes.before))} -> ${paint(cli, 'green', String(bytes.after))} bytes`
          : `${head}${bin}`,
      );
      continue;
    }
    let add = file.added;
    let del = file.deleted;
    if (graphWidth <= maxChange) {
      let total = scale(add + del);
      if (total < 2 && add && del) total = 2;
      if (add < del) {
        add = scale(add);
        del = total - add;
      } else {
        del = scale(del);
        add = total - del;
      }
    }
    const count = String(file.added + file.deleted).padStart(numberWidth);
    const graph = paint(cli, 'green', '+'.repeat(add)) + paint(cli, 'red', '-'.repeat(del));
    lines.push(`${head}${count}${file.added + file.deleted ? ' ' : ''}${graph}`);
  }
  lines.push(formatStatSummary(files));
  return lines;
}
