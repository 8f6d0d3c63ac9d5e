/**
 * The frame every page shares: document head, top bar (who is signed in,
 * sign out), the repository's tabs, and the security headers pages are sent
 * with. Styles live in assets/ui.css and scripts in assets/ui.js; pages
 * work without the script (it adds the image comparison modes, waveforms
 * and the 3D viewer on top of plain HTML).
 */
import { readFileSync } from 'node:fs';
import { href, html, sha256Base64, trusted, type SafeHtml } from './html.ts';

export const ASSET_DIR = new URL('./assets/', import.meta.url);
/** The stylesheet, also inlined (by hash) into the sign-in page, which has no session for assets. */
export const STYLESHEET = readFileSync(new URL('ui.css', ASSET_DIR), 'utf8');
const STYLE_HASH = sha256Base64(STYLESHEET);

export interface Viewer {
  /** Who is signed in; undefined for an anonymous reader. */
  readonly user: string | undefined;
  /** The CSRF token forms must carry; undefined without a session. */
  readonly csrf: string | undefined;
  readonly scope: 'read' | 'write' | 'admin' | 'none';
}

export type RepoTab = 'files' | 'history' | 'refs' | 'locks' | 'activity' | 'stats';

export interface PageOptions {
  readonly title: string;
  readonly viewer?: Viewer | undefined;
  readonly repo?: string | undefined;
  readonly tab?: RepoTab | undefined;
  /** Load the page script (comparison, waveform, viewer). */
  readonly script?: boolean | undefined;
  /** Load the 3D viewer (model-viewer). */
  readonly modelViewer?: boolean | undefined;
  /** Inline the stylesheet instead of linking it (the sign-in page). */
  readonly inlineStyle?: boolean | undefined;
}

const TABS: readonly [RepoTab, string, string][] = [
  ['files', 'Files', ''],
  ['history', 'History', 'commits/HEAD'],
  ['refs', 'Branches and tags', 'refs'],
  ['locks', 'Locks', 'locks'],
  ['activity', 'Activity', 'activity'],
  ['stats', 'Storage', 'stats'],
];

export function repoHref(repo: string, ...rest: string[]): string {
  const base = href('/-/r', repo);
  return rest.length === 0 || rest.join('') === '' ? base : `${base}/${rest.join('/')}`;
}

export function csrfField(viewer: Viewer | undefined): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${viewer?.csrf ?? ''}" />`;
}

export function page(options: PageOptions, body: SafeHtml): string {
  const viewer = options.viewer;
  const account = viewer?.user
    ? html`<span class="who">Signed in as <strong>${viewer.user}</strong> (${viewer.scope})</span>
        <form method="post" action="/-/signout" class="inline">
          ${csrfField(viewer)}<button type="submit" class="link">Sign out</button>
        </form>`
    : html`<a href="/-/signin">Sign in</a>`;
  const tabs =
    options.repo === undefined
      ? ''
      : html`<nav class="tabs" aria-label="Repository">
          <ul>
            ${TABS.map(
              ([tab, label, rest]) =>
                html`<li>
                  <a
                    href="${repoHref(options.repo!, rest)}"
                    ${options.tab === tab ? html`aria-current="page"` : ''}
                    >${label}</a
                  >
                </li>`,
            )}
          </ul>
        </nav>`;
  const style = options.inlineStyle
    ? html`<style>
        ${trusted(STYLESHEET)}
      </style>`
    : html`<link rel="stylesheet" href="/-/assets/ui.css" />`;
  const doc = html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${options.title} · MediaGit</title>
        ${style} ${options.script ? html`<script src="/-/assets/ui.js" defer></script>` : ''}
        ${options.modelViewer ? html`<script type="module" src="/-/assets/model-viewer.min.js"></script>` : ''}
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/">MediaGit</a>
          ${options.repo !== undefined ? html`<span class="crumb">/ <a href="${repoHref(options.repo)}">${options.repo}</a></span>` : ''}
          <div class="account">${account}</div>
        </header>
        ${tabs}
        <main id="main" tabindex="-1">${body}</main>
      </body>
    </html>`;
  return doc.text;
}

/**
 * Headers of every HTML page: no inline script at all, styles only from
 * the server (or the sign-in page's one hashed block), nothing framed.
 */
export function pageHeaders(inlineStyle = false): Record<string, string> {
  const style = inlineStyle ? `'sha256-${STYLE_HASH}'` : "'self'";
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': [
      "default-src 'none'",
      // 'wasm-unsafe-eval': the 3D viewer compiles its WebAssembly decoders; JavaScript eval stays forbidden.
      "script-src 'self' 'wasm-unsafe-eval'",
      `style-src ${style}`,
      "img-src 'self' blob: data:",
      "media-src 'self' blob:",
      "connect-src 'self' blob: data:",
      "worker-src 'self' blob:",
      "font-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'same-origin',
    'cache-control': 'no-store',
  };
}
