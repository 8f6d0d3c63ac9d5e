/**
 * `.gitattributes` lines that route paths through the MediaGit filter, as
 * `git lfs track` writes them: `<pattern> filter=mediagit diff=mediagit
 * merge=mediagit -text`. Only lines carrying `filter=mediagit` are touched;
 * the rest of the file is kept byte for byte.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { MediaGitError, hasErrnoCode } from '../errors.ts';
import { writeFileAtomic } from '../storage/durable-file.ts';

export const FILTER_NAME = 'mediagit';
const ATTRIBUTES = `filter=${FILTER_NAME} diff=${FILTER_NAME} merge=${FILTER_NAME} -text`;
/** Keeps a broad pattern (`*`, `.*`) from routing .gitattributes through the filter. */
const SELF_EXEMPT = '.gitattributes !filter !diff !merge text';

/** A pattern as written in .gitattributes: spaces become [[:space:]] (Git has no quoting for them). */
export function escapePattern(pattern: string): string {
  return pattern.replaceAll(' ', '[[:space:]]');
}

function unescapePattern(pattern: string): string {
  return pattern.replaceAll('[[:space:]]', ' ');
}

/** Git config key: files smaller than this stay ordinary Git content (`track --min-size`). */
export const MIN_SIZE_KEY = 'mediagit.minsize';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** "10MB" (10^7), "10MiB" (10 × 2^20), "512k", "4096": bytes. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Math.round(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new MediaGitError(
      'BAD_SIZE',
      `not a size: ${JSON.stringify(text)} (use e.g. 10MB, 512KiB)`,
      {
        kind: 'usage',
      },
    );
  }
  return bytes;
}

export function checkPattern(pattern: string): string {
  if (
    pattern === '' ||
    pattern.includes('\n') ||
    pattern.includes('\0') ||
    pattern.startsWith('#') ||
    pattern.startsWith('!')
  ) {
    throw new MediaGitError(
      'BAD_PATTERN',
      `cannot track ${JSON.stringify(pattern)}: not a usable pattern`,
      {
        kind: 'usage',
      },
    );
  }
  return pattern;
}

async function readLines(file: string): Promise<string[]> {
  try {
    const text = await fs.readFile(file, 'utf8');
    if (text === '') return [];
    return (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
  } catch (error) {
    if (hasErrnoCode(error, 'ENOENT')) return [];
    throw error;
  }
}

/** The pattern of a line that sets filter=mediagit, or undefined. */
function trackedPattern(line: string): string | undefined {
  const fields = line.trim().split(/\s+/);
  if (fields.length < 2 || fields[0]!.startsWith('#')) return undefined;
  return fields.slice(1).includes(`filter=${FILTER_NAME}`)
    ? unescapePattern(fields[0]!)
    : undefined;
}

export interface TrackedPattern {
  readonly pattern: string;
  /** The attributes file, relative to the work tree. */
  readonly source: string;
}

/** Patterns routed through the filter, from the work tree's .gitattributes files and info/attributes. */
export async function listTracked(workTree: string, gitDir: string): Promise<TrackedPattern[]> {
  const found: TrackedPattern[] = [];
  const visit = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name === '.git') continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await visit(full);
      else if (entry.name === '.gitattributes') {
        for (const line of await readLines(full)) {
          const pattern = trackedPattern(line);
          if (pattern !== undefined) found.push({ pattern, source: path.relative(workTree, full) });
        }
      }
    }
  };
  await visit(workTree);
  for (const line of await readLines(path.join(gitDir, 'info', 'attributes'))) {
    const pattern = trackedPattern(line);
    if (pattern !== undefined)
      found.push({
        pattern,
        source: path.relative(workTree, path.join(gitDir, 'info', 'attributes')),
      });
  }
  return found;
}

async function writeLines(file: string, lines: readonly string[]): Promise<void> {
  await writeFileAtomic(file, [Buffer.from(lines.length ? `${lines.join('\n')}\n` : '', 'utf8')], {
    tmpDir: path.dirname(file),
    mode: 0o644,
  });
}

/**
 * Adds patterns to the work tree's root .gitattributes; returns those newly
 * added. With `lockable`, the lines carry git-lfs's `lockable` attribute
 * (files checked out read-only until locked: docs/locks.md), added to a
 * line already there too.
 */
export async function track(
  workTree: string,
  patterns: readonly string[],
  lockable = false,
): Promise<string[]> {
  const file = path.join(workTree, '.gitattributes');
  const lines = await readLines(file);
  const present = new Set(lines.map(trackedPattern).filter((p) => p !== undefined));
  const added: string[] = [];
  for (const pattern of patterns.map(checkPattern)) {
    if (present.has(pattern)) {
      if (!lockable) continue;
      const at = lines.findIndex((line) => trackedPattern(line) === pattern);
      if (at >= 0 && !lines[at]!.trim().split(/\s+/).includes('lockable')) {
        lines[at] = `${lines[at]!.trimEnd()} lockable`;
        added.push(pattern);
      }
      continue;
    }
    lines.push(`${escapePattern(pattern)} ${ATTRIBUTES}${lockable ? ' lockable' : ''}`);
    present.add(pattern);
    added.push(pattern);
  }
  // Git must read .gitattributes itself as it is, never through the filter:
  // the exemption stays last, so that it wins over every pattern above it.
  if (added.length > 0) {
    const at = lines.indexOf(SELF_EXEMPT);
    if (at >= 0) lines.splice(at, 1);
    lines.push(SELF_EXEMPT);
  }
  if (added.length > 0) await writeLines(file, lines);
  return added;
}

/** Removes patterns from the root .gitattributes; returns those removed. */
export async function untrack(workTree: string, patterns: readonly string[]): Promise<string[]> {
  const file = path.join(workTree, '.gitattributes');
  const lines = await readLines(file);
  const wanted = new Set(patterns);
  const removed: string[] = [];
  const kept = lines.filter((line) => {
    const pattern = trackedPattern(line);
    if (pattern === undefined || !wanted.has(pattern)) return true;
    removed.push(pattern);
    return false;
  });
  if (removed.length > 0) await writeLines(file, kept);
  return removed;
}
