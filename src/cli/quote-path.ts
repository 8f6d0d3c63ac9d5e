/**
 * Paths as Git prints them (`core.quotePath`): C-quoted when they hold
 * control characters, `"` or `\`, and, with core.quotePath on (its
 * default), bytes outside ASCII as octal escapes.
 */
const C_ESCAPES: Record<string, string> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\v': '\\v',
  '\f': '\\f',
  '\r': '\\r',
  '"': '\\"',
  '\\': '\\\\',
};

/**
 * Git's `core.quotePath` (on by default): bytes outside ASCII are printed as
 * octal escapes. Off, they are printed as they are; control characters, `"`
 * and `\` are still escaped. Set once per command from the configuration
 * (context.ts), before anything prints a path.
 */
let quoteNonAscii = true;

export function setQuotePath(value: unknown): void {
  quoteNonAscii = !(value === false || ['false', 'no', 'off', '0'].includes(String(value)));
}

/** Whether Git would quote this path. */
export function needsQuoting(p: string): boolean {
  // eslint-disable-next-line no-control-regex
  return quoteNonAscii ? /[\x00-\x1f"\\\x7f-\uffff]/.test(p) : /[\x00-\x1f"\\\x7f]/.test(p);
}

function escapePath(p: string): string {
  let out = '';
  for (const ch of p) {
    const escape = C_ESCAPES[ch];
    const code = ch.codePointAt(0)!;
    if (escape !== undefined) out += escape;
    else if (code < 0x20 || code === 0x7f || (quoteNonAscii && code > 0x7f)) {
      for (const byte of Buffer.from(ch, 'utf8')) out += `\\${byte.toString(8).padStart(3, '0')}`;
    } else out += ch;
  }
  return out;
}

/** A path as Git prints it: C-quoted when it holds control or non-ASCII characters. */
export function quotePath(p: string, prefix = ''): string {
  return needsQuoting(p) ? `"${prefix}${escapePath(p)}"` : `${prefix}${p}`;
}
