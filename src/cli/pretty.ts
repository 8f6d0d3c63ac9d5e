/**
 * `log --format` / `--pretty` (Git's pretty formats) and the dates `--since`
 * and `--until` take.
 */
import type { Commit, Signature } from '../odb/commit.ts';
import { MediaGitError } from '../errors.ts';
import type { RefDecoration } from '../repo/log.ts';
import type { Cli } from './context.ts';
import { formatDate, formatDecorations, subjectOf } from './diff-format.ts';

const ABBREV = 7;

/** A `--pretty`/`--format` value: a named format, or `format:`/`tformat:`/a `%` string. */
export interface PrettyFormat {
  /** `oneline` and `medium` have their own renderers; others are templates. */
  readonly named?: 'oneline' | 'medium';
  readonly template?: string;
  /** `format:` separates entries (no newline after the last); `tformat:` terminates each. */
  readonly separator: boolean;
}

export function parsePretty(value: string): PrettyFormat {
  if (value === 'oneline' || value === 'medium') return { named: value, separator: false };
  if (value === 'short')
    return { template: 'commit %H%nAuthor: %an <%ae>%n%n    %s%n', separator: true };
  if (value.startsWith('format:')) return { template: value.slice(7), separator: true };
  if (value.startsWith('tformat:')) return { template: value.slice(8), separator: false };
  // `--format=` (empty): no header at all, as Git (`log --format= --stat` shows only stats).
  if (value === '' || value.includes('%')) return { template: value, separator: false };
  throw new MediaGitError(
    'BAD_PRETTY',
    `invalid --pretty format: ${value} (oneline, short, medium, format:<string>, tformat:<string>)`,
    { kind: 'usage', data: { exitCode: 128 } },
  );
}

/** Expands Git's placeholders for one commit. Unknown ones stay as typed, as in Git. */
export function expandFormat(
  cli: Cli,
  template: string,
  id: string,
  commit: Commit,
  decorations: readonly RefDecoration[],
  now = Date.now() / 1000,
): string {
  const subject = subjectOf(commit.message);
  const body = bodyOf(commit.message);
  const person = (sig: Signature, key: string): string | undefined => {
    switch (key) {
      case 'n':
        return sig.name;
      case 'e':
        return sig.email;
      case 'd':
        return formatDate(sig);
      case 'r':
        return relativeDate(sig.time, now);
      case 't':
        return String(sig.time);
      case 'i':
        return isoDate(sig, false);
      case 'I':
        return isoDate(sig, true);
      default:
        return undefined;
    }
  };
  return template.replace(/%(%|n|H|h|T|t|P|p|s|b|B|d|D|[ac][nedrtiI])/g, (match, key: string) => {
    switch (key) {
      case '%':
        return '%';
      case 'n':
        return '\n';
      case 'H':
        return id;
      case 'h':
        return id.slice(0, ABBREV);
      case 'T':
        return commit.tree;
      case 't':
        return commit.tree.slice(0, ABBREV);
      case 'P':
        return commit.parents.join(' ');
      case 'p':
        return commit.parents.map((p) => p.slice(0, ABBREV)).join(' ');
      case 's':
        return subject;
      case 'b':
        return body;
      case 'B':
        return commit.message.endsWith('\n') ? commit.message : `${commit.message}\n`;
      case 'd':
        return formatDecorations(cli, decorations);
      case 'D':
        return formatDecorations(cli, decorations).replace(/^ \((.*)\)$/, '$1');
      default: {
        const sig = key[0] === 'a' ? commit.author : commit.committer;
        return person(sig, key[1]!) ?? match;
      }
    }
  });
}

/** The message after its subject paragraph (Git's %b), ending in a newline when not empty. */
function bodyOf(message: string): string {
  const lines = message.replace(/^\s*\n/, '').split('\n');
  const end = lines.findIndex((line) => line.trim() === '');
  if (end < 0) return '';
  const rest = lines
    .slice(end + 1)
    .join('\n')
    .replace(/^\n+/, '');
  return rest === '' || rest.endsWith('\n') ? rest : `${rest}\n`;
}

function isoDate(sig: Signature, strict: boolean): string {
  const local = new Date((sig.time + sig.tzOffset * 60) * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  const abs = Math.abs(sig.tzOffset);
  const sign = sig.tzOffset < 0 ? '-' : '+';
  const date = `${local.getUTCFullYear()}-${two(local.getUTCMonth() + 1)}-${two(local.getUTCDate())}`;
  const time = `${two(local.getUTCHours())}:${two(local.getUTCMinutes())}:${two(local.getUTCSeconds())}`;
  return strict
    ? `${date}T${time}${sign}${two(Math.floor(abs / 60))}:${two(abs % 60)}`
    : `${date} ${time} ${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/** Git's relative dates: "5 seconds ago", "3 hours ago", "2 weeks ago", "4 months ago", "2 years ago". */
export function relativeDate(time: number, now: number): string {
  const diff = Math.max(0, Math.round(now - time));
  const unit = (n: number, name: string): string => `${n} ${name}${n === 1 ? '' : 's'} ago`;
  if (diff < 90) return unit(diff, 'second');
  const minutes = Math.round(diff / 60);
  if (minutes < 90) return unit(minutes, 'minute');
  const hours = Math.round(minutes / 60);
  if (hours < 36) return unit(hours, 'hour');
  const days = Math.round(hours / 24);
  if (days < 14) return unit(days, 'day');
  if (days < 70) return unit(Math.round(days / 7), 'week');
  if (days < 365) return unit(Math.round(days / 30), 'month');
  return unit(Math.round(days / 365), 'year');
}

const UNITS: Record<string, number> = {
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86_400,
  week: 604_800,
  month: 2_592_000,
  year: 31_536_000,
};

/**
 * A date for `--since`/`--until`, in seconds: an ISO date or date-time,
 * `@<seconds>`, `now`, `yesterday`, or `<n> <unit>[s] [ago]` (Git's approxidate
 * for the forms people type).
 */
export function parseDate(text: string, now = Date.now() / 1000): number {
  const value = text.trim().toLowerCase();
  if (/^@\d+$/.test(value)) return Number(value.slice(1));
  if (value === 'now') return Math.floor(now);
  if (value === 'yesterday') return Math.floor(now - UNITS['day']!);
  const relative = /^(\d+)[ .]?(second|minute|hour|day|week|month|year)s?( ago)?$/.exec(value);
  if (relative) return Math.floor(now - Number(relative[1]) * UNITS[relative[2]!]!);
  const parsed = Date.parse(text);
  if (!Number.isNaN(parsed)) return Math.floor(parsed / 1000);
  throw new MediaGitError(
    'BAD_DATE',
    `cannot read the date '${text}' (use e.g. 2026-12-01, "2 weeks ago", yesterday, @<seconds>)`,
    { kind: 'usage', data: { exitCode: 128 } },
  );
}

/** A date option as an instant (ms): `now`, `never`/`false`, `all`, or any `parseDate` form. */
export function expiryInstant(text: string | undefined, fallback: number, now: number): number {
  if (text === undefined) return fallback;
  const value = text.trim().toLowerCase();
  if (value === 'now' || value === 'all') return now + 1;
  if (value === 'never' || value === 'false') return -Infinity;
  // Git's dotted form: 2.weeks.ago
  const dotted = /^\d+\.[a-z]+\.ago$/.test(value) ? value.replaceAll('.', ' ') : value;
  return parseDate(dotted, now / 1000) * 1000;
}
