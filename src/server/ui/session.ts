/**
 * Web sessions. Signing in trades an API key for a session cookie: an
 * access token (security/jwt.ts) signed by the root's key ring, so every
 * server on the root accepts it and none keeps session state. The cookie
 * is HttpOnly and SameSite=Strict, and Secure under TLS.
 *
 * CSRF: every state-changing form carries a token derived from the session
 * cookie (a hash a page on another site cannot compute, since it cannot
 * read the cookie); the sign-in form, which has no session yet, uses a
 * double-submit cookie. Requests without the right token are refused (403).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'mediagit_session';
export const SIGNIN_COOKIE = 'mediagit_signin';
/** How long a web session lasts. */
export const SESSION_SECONDS = 12 * 3600;

export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (!cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}

export function cookieHeader(
  name: string,
  value: string,
  options: { readonly secure: boolean; readonly maxAge?: number | undefined },
): string {
  const parts = [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict'];
  if (options.maxAge !== undefined) parts.push(`Max-Age=${options.maxAge}`);
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}

/** The CSRF token of a session: what its forms must send back. */
export function csrfToken(session: string): string {
  return createHash('sha256').update('mediagit-csrf\0').update(session).digest('base64url');
}

export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || a.length === 0) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A local path to go back to after signing in; anything else (another site, `//host`) becomes `/`. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//')) return '/';
  if (/[\\\r\n\0]/.test(next)) return '/';
  return next;
}
