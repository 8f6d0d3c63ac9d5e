/**
 * HTML built from tagged templates: every interpolated value is escaped
 * unless it is already `SafeHtml` (another template's output), so a file
 * name, a commit message or an author can never become markup. Pages hold
 * no inline script or style attribute: the Content-Security-Policy
 * (`pageHeaders`) forbids both, a second wall behind the escaping.
 */
import { createHash, randomBytes } from 'node:crypto';

export class SafeHtml {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

type Value = SafeHtml | string | number | boolean | null | undefined | readonly Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return (value as readonly Value[]).map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Markup this module did not build: only for output of trusted generators (highlight.js). */
export function trusted(text: string): SafeHtml {
  return new SafeHtml(text);
}

/** A URL path from literal parts and segments, each segment percent-encoded. */
export function href(base: string, ...segments: readonly string[]): string {
  return [base, ...segments.map((s) => encodeURIComponent(s))].join('/');
}

/** A repository path ("a/b c.png") as URL path segments, each encoded. */
export function pathHref(filePath: string): string {
  return filePath
    .split('/')
    .filter((part) => part !== '')
    .map((part) => encodeURIComponent(part))
    .join('/');
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** "2026-12-06 14:50 UTC" from seconds since the epoch. */
export function formatTime(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A random token for a per-response CSP nonce or a pre-session CSRF value. */
export function randomToken(bytes = 18): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256Base64(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}
