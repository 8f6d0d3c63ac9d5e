/**
 * The web interface's routes (docs/web-ui.md). Pages live under `/` and
 * `/-/…` (`-` starts no repository name, so no page can shadow a
 * repository's API routes). Every route goes through the server's checks
 * (server/app.ts): pages and assets need a signed-in session or an API key
 * unless the server allows anonymous reads; unlocking needs an admin key;
 * every POST carries the session's CSRF token.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MediaGitError } from '../../errors.ts';
import { detectFormat } from '../../media/detect.ts';
import { readMediaInfo } from '../../media/info/index.ts';
import { hasMergeStrategy, mergeStrategyFor } from '../../media/merge-strategy.ts';
import { isObjectId } from '../../odb/object-id.ts';
import type { TreeEntry } from '../../odb/tree.ts';
import type { BackendRepo } from '../../protocol/backend-repo.ts';
import { LockStore } from '../../protocol/lock-store.ts';
import { rootRepositories } from '../../protocol/root-stats.ts';
import type { ServerRoot } from '../../protocol/server-root.ts';
import type { RepoService } from '../../protocol/service.ts';
import { computeStats, type RepoStats } from '../../repo/stats.ts';
import { backendCensus } from '../../protocol/root-stats.ts';
import type { AuditEvent } from '../../security/audit.ts';
import type { Scope } from '../../security/api-keys.ts';
import { LRUCache } from 'lru-cache';
import { html, pathHref, randomToken, trusted, type SafeHtml } from './html.ts';
import { ASSET_DIR, page, pageHeaders, repoHref, STYLESHEET, type Viewer } from './layout.ts';
import {
  activityPage,
  commitPage,
  emptyRepoPage,
  errorPage,
  filePage,
  historyPage,
  locksPage,
  propertiesList,
  refsPage,
  repoListPage,
  revSegment,
  signinPage,
  statsPage,
  treePage,
  type CommitFile,
  type RepoSummary,
} from './pages.ts';
import { Previews, type PreviewKind, type PreviewPlan, type PreviewSource } from './preview.ts';
import {
  cookieHeader,
  csrfToken,
  parseCookies,
  safeNext,
  sameToken,
  SESSION_COOKIE,
  SESSION_SECONDS,
  SIGNIN_COOKIE,
} from './session.ts';
import {
  changedFiles,
  defaultBranch,
  entryAt,
  history,
  listRefs,
  notFound,
  readCommit,
  readTree,
  resolveRevision,
  StoredContent,
} from './stored.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A web page or asset: HTML errors, a redirect to sign in, CSRF checks on POST. */
    readonly ui?: boolean;
  }
}

export interface UiIdentity {
  readonly user: string;
  readonly keyId: string;
  readonly repo: string;
  readonly scope: Scope;
}

export interface UiContext {
  readonly root: ServerRoot;
  serviceFor(name: string): Promise<RepoService>;
  readonly allowAnonymousRead: boolean;
  /** Served over TLS: cookies are Secure. */
  readonly secure: boolean;
  /** The key's identity, or undefined when the key is wrong or revoked. */
  authenticate(key: string): Promise<UiIdentity | undefined>;
  /** A session token for an identity (a signed access token). */
  issueSession(identity: UiIdentity, ttlSeconds: number): Promise<string>;
  /** Records a failed sign-in: audited, and rate limited per IP (throws 429 past the limit). */
  signInFailed(request: FastifyRequest, reason: string): Promise<void>;
  audit(request: FastifyRequest, event: AuditEvent): Promise<void>;
  /** Recent audit events, newest first. */
  recentEvents(repo: string, limit: number): Promise<Record<string, unknown>[]>;
  readonly previewCacheDir: string;
}

/** Commits per history page. */
export const HISTORY_PAGE = 50;
/** Entries shown in a tree listing. */
const TREE_LIMIT = 5_000;
/** Sides larger than this get no semantic description on a commit page. */
const DESCRIBE_LIMIT = 64 * 1024 * 1024;

/** Types a file may be served inline as (for <img>, <video>, <audio>, the 3D viewer); anything else is an attachment. */
const INLINE_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  mp4: 'video/mp4',
  webm: 'video/webm',
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  flac: 'audio/flac',
  ogg: 'audio/ogg',
  glb: 'model/gltf-binary',
  gltf: 'model/gltf+json',
  bin: 'application/octet-stream',
};

const ASSETS: Record<string, { readonly file: URL; readonly type: string }> = {
  'ui.css': { file: new URL('ui.css', ASSET_DIR), type: 'text/css; charset=utf-8' },
  'ui.js': { file: new URL('ui.js', ASSET_DIR), type: 'text/javascript; charset=utf-8' },
  'model-viewer.min.js': {
    file: new URL(import.meta.resolve('@google/model-viewer/dist/model-viewer.min.js')),
    type: 'text/javascript; charset=utf-8',
  },
};

export function registerUiRoutes(app: FastifyInstance, ctx: UiContext): void {
  const previews = new Previews({ cacheDir: ctx.previewCacheDir });
  const stats = new LRUCache<string, { stats: RepoStats }>({ max: 64, ttl: 60_000 });
  const read = { config: { scope: 'read', ui: true } } as const;
  const open = { config: { scope: 'none', ui: true } } as const;

  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 64 * 1024 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );

  const sessionOf = (request: FastifyRequest): string | undefined =>
    parseCookies(request.headers.cookie).get(SESSION_COOKIE);

  const viewerOf = (request: FastifyRequest): Viewer => {
    const identity = request.identity;
    const session = sessionOf(request);
    if (!identity)
      return { user: undefined, csrf: undefined, scope: ctx.allowAnonymousRead ? 'read' : 'none' };
    return {
      user: identity.user,
      csrf: session !== undefined ? csrfToken(session) : undefined,
      scope: identity.scope,
    };
  };

  // Every POST of a page carries the session's CSRF token (the sign-in form its own).
  app.addHook('preHandler', async (request) => {
    if (!request.routeOptions.config.ui || request.method !== 'POST') return;
    if (request.routeOptions.url === '/-/signin') return;
    const sent = (request.body as Record<string, unknown> | undefined)?.['csrf'];
    const session = sessionOf(request);
    if (session === undefined || typeof sent !== 'string' || !sameToken(sent, csrfToken(session))) {
      throw new MediaGitError(
        'CSRF',
        'the form is missing its CSRF token or it is wrong; reload the page and try again',
        {
          kind: 'user',
          data: { status: 403 },
        },
      );
    }
  });

  const sendPage = (reply: FastifyReply, body: string, status = 200, inlineStyle = false) =>
    reply.status(status).headers(pageHeaders(inlineStyle)).send(body);

  const repoFor = async (request: FastifyRequest): Promise<BackendRepo> =>
    (await ctx.serviceFor(request.repoName!)).repo;

  // ---- sign in and out ----

  app.get('/-/signin', open, async (request, reply) => {
    const token = randomToken();
    const next = safeNext((request.query as Record<string, unknown>)['next']);
    reply.header(
      'set-cookie',
      cookieHeader(SIGNIN_COOKIE, token, { secure: ctx.secure, maxAge: 3600 }),
    );
    return sendPage(reply, signinPage({ next, token }), 200, true);
  });

  app.post('/-/signin', open, async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, unknown>;
    const expected = parseCookies(request.headers.cookie).get(SIGNIN_COOKIE);
    const next = safeNext(form['next']);
    const again = (status: number, error: string) => {
      const token = randomToken();
      reply.header(
        'set-cookie',
        cookieHeader(SIGNIN_COOKIE, token, { secure: ctx.secure, maxAge: 3600 }),
      );
      return sendPage(reply, signinPage({ next, token, error }), status, true);
    };
    if (typeof form['csrf'] !== 'string' || !sameToken(form['csrf'], expected)) {
      return again(403, 'The sign-in form expired or came from another site. Try again.');
    }
    const key = typeof form['key'] === 'string' ? form['key'].trim() : '';
    const identity = key === '' ? undefined : await ctx.authenticate(key);
    if (!identity) {
      await ctx.signInFailed(request, 'web sign-in: invalid or revoked API key');
      return again(401, 'That API key is not valid (wrong, or revoked).');
    }
    const session = await ctx.issueSession(identity, SESSION_SECONDS);
    await ctx.audit(request, {
      action: 'signin',
      outcome: 'ok',
      user: identity.user,
      keyId: identity.keyId,
      ip: request.ip,
    });
    reply.header('set-cookie', [
      cookieHeader(SESSION_COOKIE, session, { secure: ctx.secure, maxAge: SESSION_SECONDS }),
      cookieHeader(SIGNIN_COOKIE, '', { secure: ctx.secure, maxAge: 0 }),
    ]);
    return reply.redirect(next, 303);
  });

  app.post('/-/signout', open, async (_request, reply) => {
    reply.header('set-cookie', cookieHeader(SESSION_COOKIE, '', { secure: ctx.secure, maxAge: 0 }));
    return reply.redirect('/-/signin', 303);
  });

  // ---- assets ----

  app.get('/-/assets/:name', read, async (request, reply) => {
    const asset = ASSETS[(request.params as { name: string }).name];
    if (!asset) throw notFound('no such asset');
    const body = asset.file.pathname.endsWith('ui.css')
      ? STYLESHEET
      : await fs.readFile(asset.file);
    return reply
      .header('content-type', asset.type)
      .header('cache-control', 'private, max-age=3600')
      .header('x-content-type-options', 'nosniff')
      .send(body);
  });

  // ---- repositories ----

  app.get('/', read, async (request, reply) => {
    const identity = request.identity;
    const names = (await rootRepositories(ctx.root)).filter(
      (name) => !identity || identity.repo === '*' || identity.repo === name,
    );
    const repos: RepoSummary[] = [];
    for (const name of names) {
      const repo = (await ctx.serviceFor(name)).repo;
      const encrypted = await repo.encrypted();
      const branch = encrypted ? undefined : await defaultBranch(repo);
      let tip: RepoSummary['tip'];
      if (branch !== undefined) {
        const id = await resolveRevision(repo, branch).catch(() => undefined);
        if (id !== undefined) tip = { id, commit: await readCommit(repo, id) };
      }
      repos.push({ name, branch, encrypted, tip });
    }
    return sendPage(reply, repoListPage(viewerOf(request), repos));
  });

  /** The repository and the commit a revision names, or an empty-repository page. */
  const openRevision = async (request: FastifyRequest, reply: FastifyReply, rev: string) => {
    const repo = await repoFor(request);
    if (await repo.encrypted()) {
      await sendPage(reply, emptyRepoPage(viewerOf(request), request.repoName!, true));
      return undefined;
    }
    if (
      rev === 'HEAD' &&
      (await repo.readRef((await repo.head()) ?? 'HEAD').catch(() => undefined))?.id === undefined
    ) {
      await sendPage(reply, emptyRepoPage(viewerOf(request), request.repoName!, false));
      return undefined;
    }
    const id = await resolveRevision(repo, rev);
    return { repo, id, commit: await readCommit(repo, id) };
  };

  const showTree = async (
    request: FastifyRequest,
    reply: FastifyReply,
    rev: string,
    treePath: string,
  ) => {
    const opened = await openRevision(request, reply, rev);
    if (!opened) return reply;
    const { repo, id, commit } = opened;
    const entry = await entryAt(repo, commit.tree, treePath);
    if (!entry) throw notFound(`no ${treePath} at ${rev}`);
    if (entry.kind !== 'tree')
      return reply.redirect(
        repoHref(request.repoName!, 'blob', revSegment(rev), pathHref(treePath)),
      );
    const entries = await readTree(repo, entry.id);
    return sendPage(
      reply,
      treePage({
        viewer: viewerOf(request),
        repo: request.repoName!,
        rev,
        path: treePath.replace(/^\/+|\/+$/g, ''),
        refs: await listRefs(repo),
        entries: entries.slice(0, TREE_LIMIT),
        truncated: entries.length > TREE_LIMIT,
        tip: { id, commit },
      }),
    );
  };

  app.get('/-/r/:repo', read, async (request, reply) => showTree(request, reply, 'HEAD', ''));
  app.get('/-/r/:repo/tree/:rev', read, async (request, reply) =>
    showTree(request, reply, (request.params as { rev: string }).rev, ''),
  );
  app.get('/-/r/:repo/tree/:rev/*', read, async (request, reply) => {
    const params = request.params as { rev: string; '*': string };
    return showTree(request, reply, params.rev, params['*']);
  });

  // The revision picker's form: back to the same view at another revision.
  app.get('/-/r/:repo/go', read, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const rev = typeof query['rev'] === 'string' && query['rev'] !== '' ? query['rev'] : 'HEAD';
    const to = typeof query['to'] === 'string' ? query['to'] : 'tree/';
    const [view, ...rest] = to.split('/');
    const known = ['tree', 'blob', 'commits'];
    const target = known.includes(view!) ? view! : 'tree';
    const filePath = target === 'commits' ? '' : rest.join('/');
    return reply.redirect(
      `${repoHref(request.repoName!, target, revSegment(rev))}${filePath ? `/${pathHref(filePath)}` : ''}`,
      303,
    );
  });

  /** A stored file as the preview engine sees it. */
  const sourceOf = async (
    repo: BackendRepo,
    id: string,
    name: string,
  ): Promise<PreviewSource & { content: StoredContent }> => {
    const content = await StoredContent.open(repo, id);
    return {
      id,
      name,
      size: content.size,
      content,
      access: async () => content,
      stream: (write) => content.stream(write),
    };
  };

  const previewUrl = (repo: string, kind: PreviewKind, id: string, name: string) =>
    repoHref(repo, 'preview', kind, id, encodeURIComponent(name));

  const previewBlock = async (
    repoName: string,
    rev: string,
    filePath: string,
    entry: TreeEntry,
    source: PreviewSource,
    plan: PreviewPlan,
  ): Promise<SafeHtml> => {
    const name = filePath.split('/').at(-1)!;
    const raw = `${repoHref(repoName, 'raw', revSegment(rev), pathHref(filePath))}?inline=1`;
    if (plan.refused) {
      return html`<p class="placeholder" role="note">No preview: ${plan.refused}</p>`;
    }
    switch (plan.family) {
      case 'image':
        return html`<figure class="preview">
          <a href="${previewUrl(repoName, 'full', entry.id, name)}"
            ><img
              src="${previewUrl(repoName, 'full', entry.id, name)}"
              alt="Preview of ${name}"
              loading="lazy"
          /></a>
          <figcaption>Preview at up to 2048 pixels; download for the original.</figcaption>
        </figure>`;
      case 'video':
        return html`<figure class="preview">
          <video
            controls
            muted
            playsinline
            preload="metadata"
            poster="${previewUrl(repoName, 'poster', entry.id, name)}"
            aria-label="Low-resolution preview of ${name}"
          >
            <source src="${previewUrl(repoName, 'clip', entry.id, name)}" type="video/webm" />
          </video>
          <figcaption>
            A short low-resolution preview of the first seconds, without sound.
          </figcaption>
        </figure>`;
      case 'audio':
        return html`<figure class="preview">
          <canvas
            class="waveform"
            data-peaks="${previewUrl(repoName, 'peaks', entry.id, name)}"
            role="img"
            aria-label="Waveform of ${name}"
            width="1200"
            height="120"
          ></canvas>
          <audio controls preload="none" src="${raw}" aria-label="Play ${name}"></audio>
          <figcaption>Waveform from peaks computed on the server.</figcaption>
        </figure>`;
      case 'model':
        return html`<figure class="preview">
          <model-viewer
            src="${raw}"
            camera-controls
            touch-action="pan-y"
            alt="3D model ${name}"
            shadow-intensity="0.6"
            ><span slot="ar-button" hidden></span><span slot="exit-webxr-ar-button" hidden></span
          ></model-viewer>
          <figcaption>Drag to orbit, scroll to zoom. The viewer needs JavaScript.</figcaption>
        </figure>`;
      case 'text': {
        const highlighted = await previews.highlight(source);
        if (!highlighted)
          return html`<p class="placeholder">Too large to show as text; download it.</p>`;
        return html`<pre class="code"><code class="hljs">${trusted(highlighted.html)}</code></pre>`;
      }
      default:
        return html`<p class="placeholder">No preview for this kind of file; download it.</p>`;
    }
  };

  app.get('/-/r/:repo/blob/:rev/*', read, async (request, reply) => {
    const params = request.params as { rev: string; '*': string };
    const opened = await openRevision(request, reply, params.rev);
    if (!opened) return reply;
    const { repo, id } = opened;
    const filePath = params['*'].replace(/^\/+|\/+$/g, '');
    const entry = await entryAt(repo, opened.commit.tree, filePath);
    if (!entry) throw notFound(`no ${filePath} at ${params.rev}`);
    if (entry.kind === 'tree')
      return reply.redirect(
        repoHref(request.repoName!, 'tree', revSegment(params.rev), pathHref(filePath)),
      );
    const name = filePath.split('/').at(-1)!;
    const source = await sourceOf(repo, entry.id, name);
    const plan = await previews.plan(source);
    let format = detectFormat(await source.content.read(0, 4096), name).format;
    let properties: Record<string, unknown> | undefined;
    try {
      const info = await readMediaInfo(source.content, name);
      format = info.format.format;
      if (info.parsed) properties = info.properties as Record<string, unknown>;
    } catch (error) {
      properties = { error: error instanceof Error ? error.message : String(error) };
    }
    const versions = await history(repo, id, { path: filePath, skip: 0, limit: 20 });
    return sendPage(
      reply,
      filePage({
        viewer: viewerOf(request),
        repo: request.repoName!,
        rev: params.rev,
        path: filePath,
        refs: await listRefs(repo),
        entry,
        commit: id,
        format,
        properties,
        preview: await previewBlock(request.repoName!, id, filePath, entry, source, plan),
        versions: versions.entries,
        script: plan.family === 'audio',
        modelViewer: plan.family === 'model' && !plan.refused,
      }),
    );
  });

  app.get('/-/r/:repo/raw/:rev/*', read, async (request, reply) => {
    const params = request.params as { rev: string; '*': string };
    const repo = await repoFor(request);
    if (await repo.encrypted())
      throw notFound('an encrypted repository cannot be read on the server');
    const commit = await readCommit(repo, await resolveRevision(repo, params.rev));
    const filePath = params['*'].replace(/^\/+|\/+$/g, '');
    const entry = await entryAt(repo, commit.tree, filePath);
    if (!entry || entry.kind === 'tree') throw notFound(`no file ${filePath} at ${params.rev}`);
    const content = await StoredContent.open(repo, entry.id);
    const name = filePath.split('/').at(-1)!;
    const inline = (request.query as Record<string, unknown>)['inline'] === '1';
    const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
    const type = inline
      ? (INLINE_TYPES[ext === 'jpeg' ? 'jpg' : ext] ?? 'application/octet-stream')
      : 'application/octet-stream';
    reply
      .header('content-type', type)
      .header('content-length', content.size)
      .header(
        'content-disposition',
        `${inline ? 'inline' : 'attachment'}; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      )
      // Never a document of this origin: a stored HTML or SVG file runs nothing here.
      .header('content-security-policy', "sandbox; default-src 'none'")
      .header('x-content-type-options', 'nosniff')
      .header(
        'cache-control',
        isObjectId(params.rev) ? 'private, max-age=86400' : 'private, no-cache',
      );
    return reply.send(streamOf(content));
  });

  app.get('/-/r/:repo/preview/:kind/:id/:name', read, async (request, reply) => {
    const params = request.params as { kind: string; id: string; name: string };
    const kinds: readonly string[] = ['thumb', 'full', 'poster', 'clip', 'peaks'];
    if (!kinds.includes(params.kind) || !isObjectId(params.id)) throw notFound('no such preview');
    const repo = await repoFor(request);
    if (await repo.encrypted())
      throw notFound('an encrypted repository cannot be previewed on the server');
    const source = await sourceOf(repo, params.id, params.name);
    const result = await previews.get(source, params.kind as PreviewKind);
    return sendPreview(reply, result, params.kind === 'peaks');
  });

  app.get('/-/r/:repo/difference/:a/:b/:name', read, async (request, reply) => {
    const params = request.params as { a: string; b: string; name: string };
    if (!isObjectId(params.a) || !isObjectId(params.b)) throw notFound('no such preview');
    const repo = await repoFor(request);
    const result = await previews.difference(
      await sourceOf(repo, params.a, params.name),
      await sourceOf(repo, params.b, params.name),
    );
    return sendPreview(reply, result, false);
  });

  const sendPreview = (
    reply: FastifyReply,
    result: Awaited<ReturnType<Previews['get']>>,
    json: boolean,
  ) => {
    if (result.kind === 'placeholder') {
      // Still an image (or JSON) a page can show, saying why there is no preview.
      reply
        .header('x-mediagit-preview', 'placeholder')
        .header('cache-control', 'private, max-age=60');
      if (json)
        return reply.status(422).send({ error: { code: 'NO_PREVIEW', message: result.reason } });
      return reply
        .status(422)
        .header('content-type', 'image/svg+xml')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
        .send(placeholderSvg(result.reason));
    }
    return reply
      .header('content-type', result.type)
      .header('content-length', result.size)
      .header('cache-control', 'private, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .send(createReadStream(result.path));
  };

  // ---- history and commits ----

  app.get('/-/r/:repo/commits/:rev', read, async (request, reply) => {
    const rev = (request.params as { rev: string }).rev;
    const query = request.query as Record<string, unknown>;
    const filter =
      typeof query['path'] === 'string' && query['path'].trim() !== ''
        ? query['path'].trim()
        : undefined;
    const pageNo = Math.max(
      1,
      Math.min(100_000, Number.parseInt(String(query['page'] ?? '1'), 10) || 1),
    );
    const perPage = Math.max(
      1,
      Math.min(200, Number.parseInt(String(query['per_page'] ?? HISTORY_PAGE), 10) || HISTORY_PAGE),
    );
    const opened = await openRevision(request, reply, rev);
    if (!opened) return reply;
    const found = await history(opened.repo, opened.id, {
      path: filter,
      skip: (pageNo - 1) * perPage,
      limit: perPage,
    });
    return sendPage(
      reply,
      historyPage({
        viewer: viewerOf(request),
        repo: request.repoName!,
        rev,
        refs: await listRefs(opened.repo),
        path: filter,
        page: pageNo,
        perPage,
        entries: found.entries,
        more: found.more,
      }),
    );
  });

  app.get('/-/r/:repo/commit/:id', read, async (request, reply) => {
    const commitId = (request.params as { id: string }).id;
    const opened = await openRevision(request, reply, commitId);
    if (!opened) return reply;
    const { repo, id, commit } = opened;
    const parent = commit.parents[0];
    const parentTree =
      parent !== undefined && (await repo.has(parent))
        ? (await readCommit(repo, parent)).tree
        : undefined;
    const { files, truncated } = await changedFiles(repo, parentTree, commit.tree);
    const described: CommitFile[] = [];
    for (const file of files) {
      described.push({ ...file, semantic: await describe(repo, file.path, file.old, file.new) });
    }
    return sendPage(
      reply,
      commitPage({
        viewer: viewerOf(request),
        repo: request.repoName!,
        id,
        commit,
        files: described,
        truncated,
        parent,
      }),
    );
  });

  /** The format's own account of a change (what `diff` prints under a binary summary). */
  const describe = async (
    repo: BackendRepo,
    filePath: string,
    old: TreeEntry | undefined,
    next: TreeEntry | undefined,
  ): Promise<string[] | undefined> => {
    if (!old || !next || Math.max(old.size, next.size) > DESCRIBE_LIMIT) return undefined;
    const format = detectFormat(new Uint8Array(0), filePath);
    if (!hasMergeStrategy(format)) return undefined;
    try {
      const strategy = await mergeStrategyFor(format);
      if (!strategy?.describe) return undefined;
      const lines = await strategy.describe(
        await StoredContent.open(repo, old.id),
        await StoredContent.open(repo, next.id),
        format,
      );
      return lines.length > 0 ? lines : undefined;
    } catch {
      return undefined;
    }
  };

  app.get('/-/r/:repo/refs', read, async (request, reply) => {
    const repo = await repoFor(request);
    if (await repo.encrypted())
      return sendPage(reply, emptyRepoPage(viewerOf(request), request.repoName!, true));
    const refs = [];
    for (const ref of await listRefs(repo))
      refs.push({ ...ref, commitInfo: await readCommit(repo, ref.commit) });
    return sendPage(
      reply,
      refsPage({
        viewer: viewerOf(request),
        repo: request.repoName!,
        defaultBranch: await defaultBranch(repo),
        refs,
      }),
    );
  });

  // ---- compare ----

  app.get('/-/r/:repo/compare', read, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const filePath =
      typeof query['path'] === 'string' ? query['path'].replace(/^\/+|\/+$/g, '') : '';
    const revA = typeof query['a'] === 'string' ? query['a'] : '';
    const revB = typeof query['b'] === 'string' ? query['b'] : '';
    if (filePath === '' || revA === '' || revB === '')
      throw notFound('compare needs a path and two revisions (a, b)');
    const repo = await repoFor(request);
    if (await repo.encrypted())
      return sendPage(reply, emptyRepoPage(viewerOf(request), request.repoName!, true));
    const repoName = request.repoName!;
    const sides = [];
    for (const rev of [revA, revB]) {
      const id = await resolveRevision(repo, rev);
      const commit = await readCommit(repo, id);
      const entry = await entryAt(repo, commit.tree, filePath);
      if (!entry || entry.kind === 'tree') throw notFound(`no file ${filePath} at ${rev}`);
      const name = filePath.split('/').at(-1)!;
      const source = await sourceOf(repo, entry.id, name);
      let properties: Record<string, unknown> | undefined;
      try {
        const info = await readMediaInfo(source.content, name);
        if (info.parsed) properties = info.properties as Record<string, unknown>;
      } catch (error) {
        properties = { error: error instanceof Error ? error.message : String(error) };
      }
      sides.push({ rev, id, commit, entry, source, plan: await previews.plan(source), properties });
    }
    const [a, b] = sides as [(typeof sides)[0], (typeof sides)[0]];
    const name = filePath.split('/').at(-1)!;
    const label = (side: typeof a) =>
      `${side.id.slice(0, 12)} — ${side.commit.message.split('\n', 1)[0]}`;
    let body: SafeHtml;
    if (a.plan.family === 'image' && !a.plan.refused && !b.plan.refused) {
      const srcA = previewUrl(repoName, 'full', a.entry.id, name);
      const srcB = previewUrl(repoName, 'full', b.entry.id, name);
      body = html`<div data-compare="image">
        <fieldset class="modes">
          <legend>View</legend>
          <label><input type="radio" name="mode" value="two-up" checked /> 2-up</label>
          <label><input type="radio" name="mode" value="swipe" /> Swipe</label>
          <label><input type="radio" name="mode" value="onion" /> Onion skin</label>
          <label><input type="radio" name="mode" value="difference" /> Difference</label>
        </fieldset>
        <section class="mode-panel" data-mode="two-up" aria-label="2-up">
          <div class="compare-grid">
            <figure>
              <img src="${srcA}" alt="${name} at ${a.id.slice(0, 12)} (before)" />
              <figcaption>Before: ${label(a)}</figcaption>
            </figure>
            <figure>
              <img src="${srcB}" alt="${name} at ${b.id.slice(0, 12)} (after)" />
              <figcaption>After: ${label(b)}</figcaption>
            </figure>
          </div>
        </section>
        <section class="mode-panel" data-mode="swipe" aria-label="Swipe" hidden>
          <div class="range">
            <label for="swipe-at">Swipe position</label
            ><input id="swipe-at" type="range" min="0" max="100" value="50" />
          </div>
          <div class="stage">
            <img src="${srcB}" alt="${name} after" />
            <div class="over"><img src="${srcA}" alt="${name} before" /></div>
            <div class="divider"></div>
          </div>
        </section>
        <section class="mode-panel" data-mode="onion" aria-label="Onion skin" hidden>
          <div class="range">
            <label for="onion-at">Opacity of the after image</label
            ><input id="onion-at" type="range" min="0" max="100" value="50" />
          </div>
          <div class="stage">
            <img src="${srcA}" alt="${name} before" />
            <div class="over"><img src="${srcB}" alt="${name} after" /></div>
          </div>
        </section>
        <section class="mode-panel" data-mode="difference" aria-label="Difference">
          <figure>
            <img
              src="${repoHref(repoName, 'difference', a.entry.id, b.entry.id, encodeURIComponent(name))}"
              alt="Difference of the two versions of ${name}: black where equal"
            />
            <figcaption>
              Difference: black where the pixels are equal, bright where they changed.
            </figcaption>
          </figure>
        </section>
      </div>`;
    } else if (a.plan.family === 'audio' && !a.plan.refused && !b.plan.refused) {
      body = html`<div data-compare="audio">
        <div class="range">
          <label for="zoom">Zoom (shared)</label
          ><input id="zoom" type="range" min="1" max="64" value="1" />
        </div>
        <div class="range">
          <label for="scroll">Position (shared)</label
          ><input id="scroll" type="range" min="0" max="1000" value="0" />
        </div>
        ${(
          [
            ['Before', a],
            ['After', b],
          ] as const
        ).map(
          ([when, side]) =>
            html`<figure>
              <canvas
                class="waveform"
                data-peaks="${previewUrl(repoName, 'peaks', side.entry.id, name)}"
                role="img"
                aria-label="Waveform ${when.toLowerCase()}"
                width="1200"
                height="120"
              ></canvas>
              <figcaption>${when}: ${label(side)}</figcaption>
            </figure>`,
        )}
      </div>`;
    } else {
      const blockA = await previewBlock(repoName, a.id, filePath, a.entry, a.source, a.plan);
      const blockB = await previewBlock(repoName, b.id, filePath, b.entry, b.source, b.plan);
      body = html`<div class="compare-grid">
        <div>
          <h2>Before</h2>
          ${blockA}
        </div>
        <div>
          <h2>After</h2>
          ${blockB}
        </div>
      </div>`;
    }
    const semantic = await describe(repo, filePath, a.entry, b.entry);
    return sendPage(
      reply,
      page(
        {
          title: `Compare ${name}`,
          viewer: viewerOf(request),
          repo: repoName,
          tab: 'files',
          script: true,
          modelViewer: a.plan.family === 'model',
        },
        html`<h1>Compare <span class="path">${filePath}</span></h1>
          <p>
            Before:
            <a class="oid" href="${repoHref(repoName, 'commit', a.id)}">${a.id.slice(0, 12)}</a>
            (${a.entry.size} bytes) · After:
            <a class="oid" href="${repoHref(repoName, 'commit', b.id)}">${b.id.slice(0, 12)}</a>
            (${b.entry.size} bytes)
          </p>
          ${
            semantic
              ? html`<ul class="semantic panel">
                  ${semantic.map((line) => html`<li>${line}</li>`)}
                </ul>`
              : ''
          }
          ${a.entry.id === b.entry.id ? html`<p class="notice">The two versions are identical.</p>` : ''}
          ${body}
          <h2>Metadata side by side</h2>
          ${metadataTable(a.properties, b.properties)}`,
      ),
    );
  });

  // ---- locks, activity, storage ----

  app.get('/-/r/:repo/locks', read, async (request, reply) => {
    const repo = await repoFor(request);
    const message = (request.query as Record<string, unknown>)['done'];
    return sendPage(
      reply,
      locksPage({
        viewer: viewerOf(request),
        repo: request.repoName!,
        locks: await new LockStore(repo).list(),
        message: typeof message === 'string' ? `Unlocked ${message}.` : undefined,
      }),
    );
  });

  app.post(
    '/-/r/:repo/locks/:id/unlock',
    { config: { scope: 'admin', ui: true } },
    async (request, reply) => {
      const id = (request.params as { id: string }).id;
      const store = new LockStore(await repoFor(request));
      const lock = await store.find(id);
      if (!lock) throw notFound(`no lock with ID ${id} (released already?)`);
      if (!(await store.remove(lock))) throw notFound(`lock ${id} was released meanwhile`);
      await ctx.audit(request, {
        action: 'unlock',
        outcome: 'ok',
        user: request.identity!.user,
        keyId: request.identity!.keyId,
        repo: request.repoName!,
        ip: request.ip,
        reason: `${lock.path} (lock ${lock.id}, from the web interface${lock.owner.name !== request.identity!.user ? `, forced, owner ${lock.owner.name}` : ''})`,
      });
      return reply.redirect(
        `${repoHref(request.repoName!, 'locks')}?done=${encodeURIComponent(lock.path)}`,
        303,
      );
    },
  );

  app.get('/-/r/:repo/activity', read, async (request, reply) => {
    await repoFor(request);
    return sendPage(
      reply,
      activityPage({
        viewer: viewerOf(request),
        repo: request.repoName!,
        events: await ctx.recentEvents(request.repoName!, 100),
      }),
    );
  });

  app.get('/-/r/:repo/stats', read, async (request, reply) => {
    const name = request.repoName!;
    const repo = await repoFor(request);
    let cached = stats.get(name);
    if (!cached) {
      const backend = repo.backend;
      const localObjects =
        ctx.root.localDir === undefined ? undefined : `${ctx.root.localDir}/${name}/objects`;
      const computed = await computeStats({
        census: backendCensus(backend, localObjects),
        tips: (await repo.listRefs()).map((ref) => ref.id),
        read: (id) => repo.read(id),
      });
      cached = { stats: computed };
      stats.set(name, cached);
    }
    return sendPage(
      reply,
      statsPage({ viewer: viewerOf(request), repo: name, stats: cached.stats }),
    );
  });
}

/** A UI route's error as a page (HTML), for the server's error handler. */
export function uiErrorPage(request: FastifyRequest, status: number, message: string): string {
  const identity = request.identity;
  const viewer: Viewer | undefined = identity
    ? { user: identity.user, csrf: undefined, scope: identity.scope }
    : undefined;
  return errorPage(viewer, status, message);
}

export { pageHeaders };

/**
 * A stored file as a readable stream for a reply: chunks are handed over as
 * the socket takes them (back-pressure), and a closed connection stops the reads.
 */
function streamOf(content: StoredContent): PassThrough {
  const out = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
  content
    .stream(async (data) => {
      if (out.destroyed) throw new Error('the connection closed');
      if (out.write(data)) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    })
    .then(
      () => out.end(),
      (error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))),
    );
  return out;
}

function placeholderSvg(reason: string): string {
  const text = reason.length > 90 ? `${reason.slice(0, 87)}...` : reason;
  const escaped = text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="120" viewBox="0 0 640 120" role="img" aria-label="No preview: ${escaped}"><rect width="640" height="120" fill="#f4f6f8" stroke="#6e7781" stroke-dasharray="6 4"/><text x="20" y="50" font-family="sans-serif" font-size="16" fill="#1b1f24">No preview</text><text x="20" y="80" font-family="sans-serif" font-size="13" fill="#4f5862">${escaped}</text></svg>`;
}

function metadataTable(
  a: Record<string, unknown> | undefined,
  b: Record<string, unknown> | undefined,
): SafeHtml {
  const flat = (value: Record<string, unknown> | undefined) => {
    const out = new Map<string, string>();
    const walk = (v: unknown, key: string) => {
      if (v === undefined || v === null) return;
      if (Array.isArray(v)) v.slice(0, 50).forEach((item, i) => walk(item, `${key}[${i}]`));
      else if (typeof v === 'object')
        for (const [k, x] of Object.entries(v)) walk(x, key ? `${key}.${k}` : k);
      else out.set(key, String(v));
    };
    walk(value, '');
    return out;
  };
  const x = flat(a);
  const y = flat(b);
  const keys = [...new Set([...x.keys(), ...y.keys()])];
  if (keys.length === 0) return propertiesList(undefined);
  return html`<table>
    <thead>
      <tr>
        <th scope="col">Property</th>
        <th scope="col">Before</th>
        <th scope="col">After</th>
      </tr>
    </thead>
    <tbody>
      ${keys.map((key) => {
        const changed = x.get(key) !== y.get(key);
        return html`<tr${changed ? html` class="changed"` : ''}><th scope="row">${key}${changed ? html` <span class="badge">changed</span>` : ''}</th><td>${x.get(key) ?? '—'}</td><td>${y.get(key) ?? '—'}</td></tr>`;
      })}
    </tbody>
  </table>`;
}
