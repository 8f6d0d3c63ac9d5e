/**
 * The pages, as functions from what a route read to HTML. They read
 * nothing themselves; every value goes through `html`'s escaping.
 */
import type { Commit } from '../../odb/commit.ts';
import type { TreeEntry } from '../../odb/tree.ts';
import type { FileLock } from '../../protocol/lock-store.ts';
import type { RepoStats } from '../../repo/stats.ts';
import { formatBytes, formatTime, html, pathHref, type SafeHtml } from './html.ts';
import { csrfField, page, repoHref, type Viewer } from './layout.ts';
import type { ChangedFile, HistoryEntry, Ref } from './stored.ts';

/** A revision as one URL path segment (a branch may hold `/`). */
export function revSegment(rev: string): string {
  return encodeURIComponent(rev);
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!.trim() || '(no message)';
}

function shortId(id: string): string {
  return id.slice(0, 12);
}

export function signinPage(options: {
  readonly next: string;
  readonly token: string;
  readonly error?: string | undefined;
}): string {
  return page(
    { title: 'Sign in', inlineStyle: true },
    html`<div class="signin">
      <h1>Sign in to MediaGit</h1>
      <p class="muted">
        Use an API key made with <code>mediagit token create</code> on the server.
      </p>
      ${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
      <form method="post" action="/-/signin">
        <input type="hidden" name="csrf" value="${options.token}" />
        <input type="hidden" name="next" value="${options.next}" />
        <label for="key">API key</label>
        <input id="key" name="key" type="password" autocomplete="current-password" required />
        <button class="button" type="submit">Sign in</button>
      </form>
    </div>`,
  );
}

export interface RepoSummary {
  readonly name: string;
  readonly branch: string | undefined;
  readonly encrypted: boolean;
  readonly tip?: { readonly id: string; readonly commit: Commit } | undefined;
}

export function repoListPage(viewer: Viewer, repos: readonly RepoSummary[]): string {
  const rows = repos.map(
    (repo) =>
      html`<tr>
        <td>
          <a href="${repoHref(repo.name)}">${repo.name}</a
          >${repo.encrypted ? html` <span class="badge">encrypted</span>` : ''}
        </td>
        <td>${repo.branch ?? ''}</td>
        <td>
          ${repo.tip ? firstLine(repo.tip.commit.message) : html`<span class="muted">empty</span>`}
        </td>
        <td class="hide-narrow">${repo.tip ? formatTime(repo.tip.commit.committer.time) : ''}</td>
      </tr>`,
  );
  return page(
    { title: 'Repositories', viewer },
    html`<h1>Repositories</h1>
      ${
        repos.length === 0
          ? html`<p class="notice">
              No repositories you can read. Make one with <code>mediagit init --bare</code> under
              the server root.
            </p>`
          : html`<table>
              <caption class="muted">
                ${repos.length} repositories
              </caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Default branch</th>
                  <th scope="col">Latest commit</th>
                  <th scope="col" class="hide-narrow">Updated</th>
                </tr>
              </thead>
              <tbody>
                ${rows}
              </tbody>
            </table>`
      }`,
  );
}

function revisionPicker(repo: string, rev: string, refs: readonly Ref[], target: string): SafeHtml {
  return html`<form method="get" action="${repoHref(repo, 'go')}" class="actions">
    <input type="hidden" name="to" value="${target}" />
    <label for="rev">Revision</label>
    <select id="rev" name="rev">
      ${refs.map((ref) => html`<option value="${ref.short}" ${ref.short === rev ? 'selected' : ''}>${ref.kind === 'tag' ? 'tag ' : ''}${ref.short}</option>`)}
      ${refs.some((ref) => ref.short === rev) ? '' : html`<option value="${rev}" selected>${rev}</option>`}
    </select>
    <button class="button secondary" type="submit">Go</button>
  </form>`;
}

function breadcrumbs(repo: string, rev: string, filePath: string): SafeHtml {
  const parts = filePath.split('/').filter((p) => p !== '');
  const links = parts.map((part, i) => {
    const sub = parts.slice(0, i + 1).join('/');
    return i === parts.length - 1
      ? html` / <span aria-current="page">${part}</span>`
      : html` / <a href="${repoHref(repo, 'tree', revSegment(rev), pathHref(sub))}">${part}</a>`;
  });
  return html`<nav aria-label="Path" class="path">
    <a href="${repoHref(repo, 'tree', revSegment(rev))}">${repo}</a>${links}
  </nav>`;
}

export function treePage(options: {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly rev: string;
  readonly path: string;
  readonly refs: readonly Ref[];
  readonly entries: readonly TreeEntry[];
  readonly tip: { readonly id: string; readonly commit: Commit };
  readonly truncated: boolean;
}): string {
  const { repo, rev } = options;
  const dirs = options.entries.filter((e) => e.kind === 'tree');
  const files = options.entries.filter((e) => e.kind !== 'tree');
  const prefix = options.path === '' ? '' : `${options.path}/`;
  const row = (entry: TreeEntry) => {
    const isDir = entry.kind === 'tree';
    const target = repoHref(
      repo,
      isDir ? 'tree' : 'blob',
      revSegment(rev),
      pathHref(prefix + entry.name),
    );
    return html`<tr>
      <td>
        <a href="${target}">${entry.name}${isDir ? '/' : ''}</a
        >${isDir ? html`<span class="visually-hidden"> (folder)</span>` : ''}
      </td>
      <td class="num">${isDir ? '' : formatBytes(entry.size)}</td>
      <td class="hide-narrow muted">
        ${entry.mode === '100755' ? 'executable' : entry.mode === '120000' ? 'symlink' : ''}
      </td>
    </tr>`;
  };
  return page(
    {
      title: options.path === '' ? repo : options.path,
      viewer: options.viewer,
      repo,
      tab: 'files',
    },
    html`${revisionPicker(repo, rev, options.refs, `tree/${options.path}`)}
      <h1>${breadcrumbs(repo, rev, options.path)}</h1>
      <p class="panel">
        <a href="${repoHref(repo, 'commit', options.tip.id)}" class="oid"
          >${shortId(options.tip.id)}</a
        >
        ${firstLine(options.tip.commit.message)} — ${options.tip.commit.author.name},
        ${formatTime(options.tip.commit.committer.time)} ·
        <a
          href="${repoHref(repo, 'commits', revSegment(rev))}${options.path ? `?path=${encodeURIComponent(options.path)}` : ''}"
          >History</a
        >
      </p>
      <table>
        <caption class="muted">
          ${dirs.length} folders, ${files.length}
          files${options.truncated ? ' (first 5,000 shown)' : ''}
        </caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col" class="num">Size</th>
            <th scope="col" class="hide-narrow">Mode</th>
          </tr>
        </thead>
        <tbody>
          ${
            options.path !== ''
              ? html`<tr>
                  <td>
                    <a
                      href="${repoHref(repo, 'tree', revSegment(rev), pathHref(options.path.split('/').slice(0, -1).join('/')))}"
                      >..</a
                    >
                    <span class="muted">(parent folder)</span>
                  </td>
                  <td></td>
                  <td class="hide-narrow"></td>
                </tr>`
              : ''
          }
          ${dirs.map(row)}${files.map(row)}
        </tbody>
      </table>`,
  );
}

export function emptyRepoPage(viewer: Viewer, repo: string, encrypted: boolean): string {
  return page(
    { title: repo, viewer, repo, tab: 'files' },
    html`<h1>${repo}</h1>
      ${
        encrypted
          ? html`<p class="notice">
              This repository is encrypted at rest. The server holds only sealed objects, so its
              files, messages and branch names cannot be shown here; clone it with a key to read it.
            </p>`
          : html`<p class="notice">
              This repository has no commits yet. Push to it with <code>mediagit push</code>.
            </p>`
      }`,
  );
}

function propertyRows(properties: Record<string, unknown>, prefix = ''): SafeHtml[] {
  const rows: SafeHtml[] = [];
  for (const [key, value] of Object.entries(properties)) {
    if (value === undefined || value === null) continue;
    const label = prefix + key;
    if (Array.isArray(value)) {
      if (value.length === 0) continue;
      if (value.every((v) => typeof v !== 'object')) {
        rows.push(
          html`<dt>${label}</dt>
            <dd>${value.join(', ')}</dd>`,
        );
      } else {
        value.slice(0, 50).forEach((item, i) => {
          const text = Object.entries(item as Record<string, unknown>)
            .filter(([, v]) => v !== undefined && typeof v !== 'object')
            .map(([k, v]) => `${k}: ${String(v)}`)
            .join(', ');
          rows.push(
            html`<dt>${label} ${i}</dt>
              <dd>${text}</dd>`,
          );
        });
        if (value.length > 50)
          rows.push(
            html`<dt>${label}</dt>
              <dd>… ${value.length - 50} more</dd>`,
          );
      }
    } else if (typeof value === 'object') {
      rows.push(...propertyRows(value as Record<string, unknown>, `${label}.`));
    } else {
      rows.push(
        html`<dt>${label}</dt>
          <dd>${String(value)}</dd>`,
      );
    }
  }
  return rows;
}

export function propertiesList(properties: Record<string, unknown> | undefined): SafeHtml {
  if (!properties) return html`<p class="muted">No media properties read.</p>`;
  const rows = propertyRows(properties);
  return rows.length === 0
    ? html`<p class="muted">No media properties read.</p>`
    : html`<dl class="props">${rows}</dl>`;
}

export interface FileView {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly rev: string;
  readonly path: string;
  readonly refs: readonly Ref[];
  readonly entry: TreeEntry;
  readonly commit: string;
  readonly format: string;
  readonly properties?: Record<string, unknown> | undefined;
  /** The preview block (built by the route from the preview plan). */
  readonly preview: SafeHtml;
  /** Commits that changed this file, newest first (for compare). */
  readonly versions: readonly HistoryEntry[];
  readonly script: boolean;
  readonly modelViewer: boolean;
}

export function filePage(view: FileView): string {
  const { repo, rev, path: filePath } = view;
  const raw = repoHref(repo, 'raw', revSegment(view.commit), pathHref(filePath));
  const name = filePath.split('/').at(-1)!;
  // The newest commit that changed the file made the version shown; the ones before it made older ones.
  const older = view.versions.slice(1);
  return page(
    {
      title: name,
      viewer: view.viewer,
      repo,
      tab: 'files',
      script: view.script,
      modelViewer: view.modelViewer,
    },
    html`${revisionPicker(repo, rev, view.refs, `blob/${filePath}`)}
      <h1>${breadcrumbs(repo, rev, filePath)}</h1>
      <div class="actions">
        <a class="button" href="${raw}" download="${name}">Download</a>
        <a
          class="button secondary"
          href="${repoHref(repo, 'commits', revSegment(rev))}?path=${encodeURIComponent(filePath)}"
          >History</a
        >
        <span class="muted"
          >${formatBytes(view.entry.size)} · ${view.format} ·
          <span class="oid" data-object="${view.entry.id}"
            >${view.entry.id.slice(0, 16)}</span
          ></span
        >
      </div>
      <section aria-labelledby="preview-h">
        <h2 id="preview-h">Preview</h2>
        ${view.preview}
      </section>
      <section aria-labelledby="props-h">
        <h2 id="props-h">Media properties</h2>
        ${propertiesList(view.properties)}
      </section>
      <section aria-labelledby="compare-h">
        <h2 id="compare-h">Compare with another version</h2>
        ${
          older.length === 0
            ? html`<p class="muted">No other version of this file in this revision's history.</p>`
            : html`<form method="get" action="${repoHref(repo, 'compare')}" class="actions">
                <input type="hidden" name="path" value="${filePath}" />
                <input type="hidden" name="b" value="${view.commit}" />
                <label for="cmp-a">Older version</label>
                <select id="cmp-a" name="a">
                  ${older.map((v) => html`<option value="${v.id}">${shortId(v.id)} — ${firstLine(v.commit.message)} (${formatTime(v.commit.committer.time)})</option>`)}
                </select>
                <button class="button" type="submit">Compare</button>
              </form>`
        }
      </section>`,
  );
}

export function historyPage(options: {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly rev: string;
  readonly refs: readonly Ref[];
  readonly path: string | undefined;
  readonly page: number;
  readonly perPage: number;
  readonly entries: readonly HistoryEntry[];
  readonly more: boolean;
}): string {
  const { repo, rev } = options;
  const query = (pageNo: number) => {
    const params = new URLSearchParams();
    if (options.path) params.set('path', options.path);
    if (pageNo > 1) params.set('page', String(pageNo));
    if (options.perPage !== 50) params.set('per_page', String(options.perPage));
    const text = params.toString();
    return `${repoHref(repo, 'commits', revSegment(rev))}${text ? `?${text}` : ''}`;
  };
  const rows = options.entries.map(
    ({ id, commit }) =>
      html`<tr>
        <td>
          <a href="${repoHref(repo, 'commit', id)}">${firstLine(commit.message)}</a
          >${commit.parents.length > 1 ? html` <span class="badge">merge</span>` : ''}
        </td>
        <td>${commit.author.name}</td>
        <td class="hide-narrow">${formatTime(commit.author.time)}</td>
        <td>
          <a
            class="oid"
            href="${repoHref(repo, 'tree', id)}"
            aria-label="Browse files at ${shortId(id)}"
            >${shortId(id)}</a
          >
        </td>
      </tr>`,
  );
  return page(
    { title: `History of ${options.path || rev}`, viewer: options.viewer, repo, tab: 'history' },
    html`${revisionPicker(repo, rev, options.refs, 'commits')}
      <h1>
        History of ${rev}${options.path ? html` — <span class="path">${options.path}</span>` : ''}
      </h1>
      <form
        method="get"
        action="${repoHref(repo, 'commits', revSegment(rev))}"
        class="actions"
        role="search"
      >
        <label for="path-filter">Only commits that changed</label>
        <input
          id="path-filter"
          name="path"
          type="search"
          value="${options.path ?? ''}"
          placeholder="path/to/file-or-folder"
        />
        <button class="button secondary" type="submit">Filter</button>
        ${options.perPage !== 50 ? html`<input type="hidden" name="per_page" value="${options.perPage}" />` : ''}
        ${options.path ? html`<a href="${repoHref(repo, 'commits', revSegment(rev))}">Clear</a>` : ''}
      </form>
      ${
        options.entries.length === 0
          ? html`<p class="notice">No commits${options.path ? ' changed this path' : ''}.</p>`
          : html`<table>
              <caption class="muted">
                Page ${options.page}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Message</th>
                  <th scope="col">Author</th>
                  <th scope="col" class="hide-narrow">Date</th>
                  <th scope="col">Commit</th>
                </tr>
              </thead>
              <tbody>
                ${rows}
              </tbody>
            </table>`
      }
      <nav class="pager" aria-label="Pages">
        ${options.page > 1 ? html`<a rel="prev" href="${query(options.page - 1)}">← Newer</a>` : ''}
        ${options.more ? html`<a rel="next" href="${query(options.page + 1)}">Older →</a>` : ''}
      </nav>`,
  );
}

export interface CommitFile extends ChangedFile {
  readonly semantic?: readonly string[] | undefined;
}

export function commitPage(options: {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly id: string;
  readonly commit: Commit;
  readonly files: readonly CommitFile[];
  readonly truncated: boolean;
  readonly parent: string | undefined;
}): string {
  const { repo, id, commit } = options;
  const [subject, ...rest] = commit.message.split('\n');
  const body = rest.join('\n').trim();
  const sizeText = (file: CommitFile) =>
    file.status === 'A'
      ? formatBytes(file.new!.size)
      : file.status === 'D'
        ? formatBytes(file.old!.size)
        : `${formatBytes(file.old!.size)} → ${formatBytes(file.new!.size)}`;
  const rows = options.files.map((file) => {
    const link = file.new
      ? html`<a href="${repoHref(repo, 'blob', id, pathHref(file.path))}">${file.path}</a>`
      : html`${file.path}`;
    const compare =
      file.status === 'M' && options.parent
        ? html` ·
            <a
              href="${repoHref(repo, 'compare')}?path=${encodeURIComponent(file.path)}&amp;a=${options.parent}&amp;b=${id}"
              >compare</a
            >`
        : '';
    return html`<tr>
      <td>
        <span class="status-${file.status}" title="${STATUS[file.status]}">${file.status}</span
        ><span class="visually-hidden"> ${STATUS[file.status]}</span>
      </td>
      <td class="path">
        ${link}${compare}
        ${
          file.semantic && file.semantic.length > 0
            ? html`<ul class="semantic">
                ${file.semantic.map((line) => html`<li>${line}</li>`)}
              </ul>`
            : ''
        }
      </td>
      <td class="num">${sizeText(file)}</td>
    </tr>`;
  });
  return page(
    { title: firstLine(commit.message), viewer: options.viewer, repo, tab: 'history' },
    html`<h1>${subject}</h1>
      ${body ? html`<pre class="panel">${body}</pre>` : ''}
      <dl class="props panel">
        <dt>Commit</dt>
        <dd class="oid">${id}</dd>
        <dt>Author</dt>
        <dd>
          ${commit.author.name} &lt;${commit.author.email}&gt;, ${formatTime(commit.author.time)}
        </dd>
        <dt>Committer</dt>
        <dd>${commit.committer.name}, ${formatTime(commit.committer.time)}</dd>
        <dt>Parents</dt>
        <dd>
          ${commit.parents.length === 0 ? 'none (root commit)' : commit.parents.map((p, i) => html`${i > 0 ? ', ' : ''}<a class="oid" href="${repoHref(repo, 'commit', p)}">${shortId(p)}</a>`)}
        </dd>
        <dt>Files</dt>
        <dd><a href="${repoHref(repo, 'tree', id)}">Browse the tree at this commit</a></dd>
      </dl>
      <h2>
        ${options.files.length} ${options.files.length === 1 ? 'file' : 'files'}
        changed${options.truncated ? ' (list cut short)' : ''}${commit.parents.length > 1 ? ' (against the first parent)' : ''}
      </h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Change</th>
            <th scope="col">File</th>
            <th scope="col" class="num">Size</th>
          </tr>
        </thead>
        <tbody>
          ${rows}
        </tbody>
      </table>`,
  );
}

const STATUS: Record<ChangedFile['status'], string> = {
  A: 'added',
  D: 'deleted',
  M: 'modified',
  T: 'mode changed',
};

export function refsPage(options: {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly defaultBranch: string | undefined;
  readonly refs: readonly (Ref & { readonly commitInfo: Commit })[];
}): string {
  const { repo } = options;
  const table = (kind: 'branch' | 'tag', caption: string) => {
    const refs = options.refs.filter((r) => r.kind === kind);
    if (refs.length === 0)
      return html`<h2>${caption}</h2>
        <p class="muted">None.</p>`;
    return html`<h2>${caption}</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Latest commit</th>
            <th scope="col" class="hide-narrow">Date</th>
            <th scope="col">Commit</th>
          </tr>
        </thead>
        <tbody>
          ${refs.map(
            (ref) =>
              html`<tr>
                <td>
                  <a href="${repoHref(repo, 'tree', revSegment(ref.short))}">${ref.short}</a
                  >${ref.short === options.defaultBranch && kind === 'branch' ? html` <span class="badge">default</span>` : ''}
                </td>
                <td>${firstLine(ref.commitInfo.message)}</td>
                <td class="hide-narrow">${formatTime(ref.commitInfo.committer.time)}</td>
                <td>
                  <a class="oid" href="${repoHref(repo, 'commit', ref.commit)}"
                    >${shortId(ref.commit)}</a
                  >
                </td>
              </tr>`,
          )}
        </tbody>
      </table>`;
  };
  return page(
    { title: `Branches and tags of ${repo}`, viewer: options.viewer, repo, tab: 'refs' },
    html`<h1>Branches and tags</h1>
      ${table('branch', 'Branches')}${table('tag', 'Tags')}`,
  );
}

export function locksPage(options: {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly locks: readonly FileLock[];
  readonly message?: string | undefined;
}): string {
  const { repo, viewer } = options;
  const admin = viewer.scope === 'admin' && viewer.csrf !== undefined;
  return page(
    { title: `Locks of ${repo}`, viewer, repo, tab: 'locks' },
    html`<h1>Locks</h1>
      ${options.message ? html`<p class="notice" role="status">${options.message}</p>` : ''}
      ${
        options.locks.length === 0
          ? html`<p class="muted">No file is locked.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">File</th>
                  <th scope="col">Held by</th>
                  <th scope="col">Branch</th>
                  <th scope="col" class="hide-narrow">Since</th>
                  ${admin ? html`<th scope="col">Admin</th>` : ''}
                </tr>
              </thead>
              <tbody>
                ${options.locks.map(
                  (lock) =>
                    html`<tr>
                      <td class="path">${lock.path}</td>
                      <td>${lock.owner.name}</td>
                      <td>
                        ${lock.ref ? lock.ref.name.replace(/^refs\/heads\//, '') : html`<span class="muted">every branch</span>`}
                      </td>
                      <td class="hide-narrow">
                        ${lock.locked_at.replace('T', ' ').slice(0, 16)} UTC
                      </td>
                      ${
                        admin
                          ? html`<td>
                              <form
                                method="post"
                                action="${repoHref(repo, 'locks', encodeURIComponent(lock.id), 'unlock')}"
                                class="inline"
                              >
                                ${csrfField(viewer)}<button
                                  type="submit"
                                  class="button secondary"
                                  aria-label="Unlock ${lock.path}"
                                >
                                  Unlock
                                </button>
                              </form>
                            </td>`
                          : ''
                      }
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
      ${admin ? '' : html`<p class="muted">Unlocking someone else's lock needs an admin key.</p>`}`,
  );
}

export function activityPage(options: {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly events: readonly Record<string, unknown>[];
}): string {
  const text = (value: unknown) => (value === undefined || value === null ? '' : String(value));
  return page(
    {
      title: `Activity in ${options.repo}`,
      viewer: options.viewer,
      repo: options.repo,
      tab: 'activity',
    },
    html`<h1>Recent activity</h1>
      ${
        options.events.length === 0
          ? html`<p class="muted">No recorded activity.</p>`
          : html`<table>
              <caption class="muted">
                The latest ${options.events.length} events of the audit log for this repository,
                newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">What</th>
                  <th scope="col">Who</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                ${options.events.map((event) => {
                  const refs = Array.isArray(event['refs'])
                    ? (event['refs'] as { ref?: string; new?: string | null; result?: string }[])
                        .map(
                          (r) =>
                            `${text(r.ref)} → ${r.new ? r.new.slice(0, 12) : 'deleted'}${r.result && r.result !== 'ok' ? ` (${r.result})` : ''}`,
                        )
                        .join(', ')
                    : '';
                  return html`<tr>
                    <td>${text(event['time']).replace('T', ' ').slice(0, 19)}</td>
                    <td>${text(event['action'])}</td>
                    <td>${text(event['user'])}</td>
                    <td>${text(event['outcome'])}</td>
                    <td class="path">
                      ${refs}${refs && event['reason'] ? ' · ' : ''}${text(event['reason'])}
                    </td>
                  </tr>`;
                })}
              </tbody>
            </table>`
      }`,
  );
}

export function statsPage(options: {
  readonly viewer: Viewer;
  readonly repo: string;
  readonly stats: RepoStats;
}): string {
  const s = options.stats;
  const ratio = (value: number) => `${value.toFixed(2)}×`;
  return page(
    {
      title: `Storage of ${options.repo}`,
      viewer: options.viewer,
      repo: options.repo,
      tab: 'stats',
    },
    html`<h1>Storage</h1>
      <dl class="props panel">
        <dt>Commits</dt>
        <dd>${s.commits}</dd>
        <dt>File versions</dt>
        <dd>${s.files}</dd>
        <dt>Logical size</dt>
        <dd>${formatBytes(s.logicalBytes)}</dd>
        <dt>Unique after dedup</dt>
        <dd>${formatBytes(s.uniqueBytes)}</dd>
        <dt>Stored</dt>
        <dd>${formatBytes(s.storedBytes)}</dd>
        <dt>Dedup</dt>
        <dd>${ratio(s.dedupRatio)}</dd>
        <dt>Compression</dt>
        <dd>${ratio(s.compressionRatio)}</dd>
        <dt>Overall reduction</dt>
        <dd>${ratio(s.reductionRatio)}</dd>
        <dt>Chunks</dt>
        <dd>${s.chunks.count}</dd>
        <dt>Packs</dt>
        <dd>${s.store.packs.count} (${formatBytes(s.store.packs.bytes)})</dd>
        <dt>Unreachable</dt>
        <dd>${s.unreachable.objects} objects, ${formatBytes(s.unreachable.storedBytes)}</dd>
      </dl>
      <h2>By kind of file</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Kind</th>
            <th scope="col" class="num">Files</th>
            <th scope="col" class="num">Logical</th>
            <th scope="col" class="num">Stored</th>
          </tr>
        </thead>
        <tbody>
          ${s.categories.map(
            (c) =>
              html`<tr>
                <td>${c.category}</td>
                <td class="num">${c.files}</td>
                <td class="num">${formatBytes(c.logicalBytes)}</td>
                <td class="num">${formatBytes(c.storedBytes)}</td>
              </tr>`,
          )}
        </tbody>
      </table>`,
  );
}

export function errorPage(viewer: Viewer | undefined, status: number, message: string): string {
  const title =
    status === 404
      ? 'Not found'
      : status === 403
        ? 'Forbidden'
        : status >= 500
          ? 'Server error'
          : 'Error';
  return page(
    { title, viewer },
    html`<h1>${title}</h1>
      <p class="error" role="alert">${message}</p>
      <p><a href="/">Back to the repositories</a></p>`,
  );
}
