/**
 * Git's clean and smudge filters (gitattributes(5), "filter"): one file per
 * process (`filter clean` / `filter smudge`) or many through one
 * long-running process speaking protocol version 2 (`filter-process`), with
 * `delay` so that content to be downloaded is fetched several files at a
 * time while Git checks out the rest.
 *
 * Smudge never loses data: input that is not a valid pointer (any size,
 * any bytes) is written back unchanged, as git-lfs does, and a pointer whose
 * content cannot be had fails with a message naming the OID.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { MAX_POINTER_BYTES, parsePointer, type LfsPointer } from '../odb/lfs-pointer.ts';
import { tempName } from '../storage/durable-file.ts';
import type { ContentFetcher, GitMediaStore } from './media-store.ts';
import { pktError, PktReader, PktWriter } from './pkt-line.ts';

export interface SmudgeOptions {
  readonly fetch?: ContentFetcher | undefined;
  /** Write pointers out as they are (MEDIAGIT_SKIP_SMUDGE, like GIT_LFS_SKIP_SMUDGE). */
  readonly skip?: boolean | undefined;
}

/**
 * Reads content far enough to tell a pointer from ordinary content: a
 * pointer when it ends within MAX_POINTER_BYTES and parses, otherwise the
 * bytes read so far and an iterator for the rest.
 */
async function classify(
  content: AsyncIterable<Uint8Array>,
): Promise<
  | { pointer: LfsPointer; bytes: Buffer }
  | { pointer?: undefined; bytes: Buffer; rest: AsyncIterator<Uint8Array> | undefined }
> {
  const iterator = content[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  while (size <= MAX_POINTER_BYTES) {
    const next = await iterator.next();
    if (next.done) {
      const bytes = Buffer.concat(head);
      const parsed = parsePointer(bytes);
      return parsed.ok ? { pointer: parsed.pointer, bytes } : { bytes, rest: undefined };
    }
    head.push(Buffer.from(next.value));
    size += next.value.length;
  }
  return { bytes: Buffer.concat(head), rest: iterator };
}

/** The smudge filter for one file: the content behind a pointer, or the input unchanged. */
export async function smudge(
  store: GitMediaStore,
  content: AsyncIterable<Uint8Array>,
  write: (data: Uint8Array) => Promise<void>,
  options: SmudgeOptions = {},
): Promise<void> {
  await smudgeClassified(store, await classify(content), write, options);
}

async function smudgeClassified(
  store: GitMediaStore,
  input: Awaited<ReturnType<typeof classify>>,
  write: (data: Uint8Array) => Promise<void>,
  options: SmudgeOptions,
): Promise<void> {
  if (!input.pointer || options.skip) {
    await write(input.bytes);
    if (!input.pointer && input.rest) {
      for (let next = await input.rest.next(); !next.done; next = await input.rest.next())
        await write(next.value);
    }
    return;
  }
  // An empty file's pointer is empty: nothing to find, nothing to write.
  if (input.pointer.size === 0) return;
  const found = await store.ensure(input.pointer, options.fetch);
  await store.writeContent(found, write);
}

export interface FilterProcessOptions extends SmudgeOptions {
  /** Delayed downloads running at once. */
  readonly parallel?: number | undefined;
  /**
   * The work tree Git's paths are relative to: clean compares the content with
   * the working file there and stores from it when they are equal.
   */
  readonly workTree?: string | undefined;
  /** Content smaller than this is left as ordinary Git content (`track --min-size`). */
  readonly minSize?: number | undefined;
  /** Called with each failure's message (the CLI prints it on stderr, which Git shows). */
  readonly report?: ((message: string) => void) | undefined;
}

/** The packets of one file's content, up to its flush; drained if the reader stops early. */
class ContentPackets implements AsyncIterable<Uint8Array> {
  readonly #reader: PktReader;
  #finished = false;

  constructor(reader: PktReader) {
    this.#reader = reader;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    while (!this.#finished) {
      const packet = await this.#reader.read();
      if (packet === undefined) throw pktError('input ended inside file content');
      if (packet === null) {
        this.#finished = true;
        return;
      }
      yield packet;
    }
  }

  async drain(): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    for await (const _ of this) {
      /* discard */
    }
  }
}

interface Delayed {
  readonly pathname: string;
  readonly pointer: LfsPointer;
  readonly done: Promise<unknown>;
  settled: boolean;
}

/**
 * Serves Git's long-running filter protocol (version 2) on `input`/`output`
 * until Git closes the pipe. Returns the number of files filtered.
 */
export async function serveFilterProcess(
  store: GitMediaStore,
  input: Readable,
  output: Writable,
  options: FilterProcessOptions = {},
): Promise<{ cleaned: number; smudged: number; delayed: number; fetched: number }> {
  const reader = new PktReader(input);
  const writer = new PktWriter(output);
  const report = options.report ?? (() => undefined);
  const counts = { cleaned: 0, smudged: 0, delayed: 0, fetched: 0 };

  const hello = await reader.readList();
  if (!hello || hello[0] !== 'git-filter-client' || !hello.includes('version=2')) {
    throw pktError(`unexpected handshake ${JSON.stringify(hello)}`);
  }
  await writer.list(['git-filter-server', 'version=2']);
  const offered = (await reader.readList()) ?? [];
  const supported = ['capability=clean', 'capability=smudge', 'capability=delay'];
  await writer.list(supported.filter((c) => offered.includes(c)));
  const canDelay = offered.includes('capability=delay');

  const parallel = options.parallel ?? 4;
  const delayed = new Map<string, Delayed>();
  let running = 0;
  const slots: (() => void)[] = [];
  let wake: (() => void) | undefined;
  /** One download per OID, however many paths share the content. */
  const fetching = new Map<string, Promise<unknown>>();
  const fetchOnce = (pointer: LfsPointer): Promise<unknown> => {
    let done = fetching.get(pointer.oid);
    if (!done) {
      counts.fetched++;
      done = (async () => {
        while (running >= parallel) await new Promise<void>((resolve) => slots.push(resolve));
        running++;
        try {
          await store.ensure(pointer, options.fetch);
        } finally {
          running--;
          slots.shift()?.();
        }
      })();
      fetching.set(pointer.oid, done);
    }
    return done;
  };
  const startDelayed = (pathname: string, pointer: LfsPointer): void => {
    const entry: Delayed = {
      pathname,
      pointer,
      settled: false,
      done: fetchOnce(pointer),
    };
    entry.done
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        entry.settled = true;
        wake?.();
      });
    delayed.set(pathname, entry);
  };

  /** Sends content through `produce`, then the trailing status (error if it failed midway). */
  const answer = async (
    pathname: string,
    produce: (write: (data: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<boolean> => {
    let started = false;
    try {
      await produce(async (data) => {
        if (!started) {
          started = true;
          await writer.list(['status=success']);
        }
        await writer.content(data);
      });
    } catch (error) {
      report(`${pathname}: ${error instanceof Error ? error.message : String(error)}`);
      if (started) {
        await writer.flush();
        await writer.list(['status=error']);
      } else {
        await writer.list(['status=error']);
      }
      return false;
    }
    if (!started) await writer.list(['status=success']);
    await writer.flush();
    await writer.flush();
    return true;
  };

  for (;;) {
    const request = await reader.readList();
    if (request === undefined) break;
    const fields = new Map<string, string>();
    for (const line of request) {
      const eq = line.indexOf('=');
      if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
    }
    const command = fields.get('command');
    const pathname = fields.get('pathname') ?? '';
    if (command === 'list_available_blobs') {
      // Block until at least one delayed file is ready (or none is left).
      while (delayed.size > 0 && ![...delayed.values()].some((d) => d.settled)) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      const ready = [...delayed.values()].filter((d) => d.settled).map((d) => d.pathname);
      await writer.list(ready.map((p) => `pathname=${p}`));
      await writer.list(['status=success']);
      continue;
    }
    const content = new ContentPackets(reader);
    if (command === 'clean') {
      let pointer: Buffer | undefined;
      try {
        pointer = await store.clean(
          content,
          pathname,
          workFileOf(options.workTree, pathname),
          options.minSize,
        );
      } catch (error) {
        await content.drain();
        report(`${pathname}: ${error instanceof Error ? error.message : String(error)}`);
        await writer.list(['status=error']);
        continue;
      }
      counts.cleaned++;
      await answer(pathname, (write) => write(pointer));
    } else if (command === 'smudge') {
      const earlier = delayed.get(pathname);
      if (earlier) {
        // Git asks again for a file it was told was delayed: its content is local now.
        await content.drain();
        delayed.delete(pathname);
        const ok = await answer(pathname, async (write) => {
          await earlier.done;
          await store.writeContent(await store.ensure(earlier.pointer), write);
        });
        if (ok) counts.smudged++;
        continue;
      }
      const wantsDelay = canDelay && fields.get('can-delay') === '1';
      let input: Awaited<ReturnType<typeof classify>>;
      try {
        input = await classify(content);
      } catch (error) {
        await content.drain();
        throw error;
      }
      if (
        wantsDelay &&
        input.pointer &&
        input.pointer.size > 0 &&
        options.fetch &&
        !options.skip &&
        !(await store.hasLocally(input.pointer.oid))
      ) {
        // Content to download: fetched in the background, several at a time.
        startDelayed(pathname, input.pointer);
        counts.delayed++;
        await writer.list(['status=delayed']);
        continue;
      }
      if (!input.pointer && input.rest) {
        // Not a pointer, and large: Git sends the whole content before it reads
        // the answer, so it is read to the end (into a temp file) first.
        const ok = await answerSpooled(store, input.bytes, input.rest, pathname, answer);
        if (ok) counts.smudged++;
        continue;
      }
      const ok = await answer(pathname, (write) => smudgeClassified(store, input, write, options));
      await content.drain();
      if (ok) counts.smudged++;
    } else {
      await content.drain();
      report(`unknown filter command ${JSON.stringify(command)}`);
      await writer.list(['status=error']);
    }
  }
  return counts;
}

/**
 * Answers with content Git is still sending: spooled to a temp file to its
 * end, then sent back. Returns whether the answer was a success.
 */
async function answerSpooled(
  store: GitMediaStore,
  head: Buffer,
  rest: AsyncIterator<Uint8Array>,
  pathname: string,
  answer: (
    pathname: string,
    produce: (write: (data: Uint8Array) => Promise<void>) => Promise<void>,
  ) => Promise<boolean>,
): Promise<boolean> {
  const tmp = tempName(store.objects.tmpDir, 'smudge');
  const handle = await fs.open(tmp, 'wx+', 0o600);
  try {
    let failure: unknown;
    const keep = async (data: Uint8Array): Promise<void> => {
      if (failure !== undefined) return;
      try {
        for (let at = 0; at < data.length;) {
          at += (await handle.write(data, at, data.length - at)).bytesWritten;
        }
      } catch (error) {
        failure = error; // keep reading Git's content to its end regardless
      }
    };
    await keep(head);
    for (let next = await rest.next(); !next.done; next = await rest.next()) await keep(next.value);
    return await answer(pathname, async (write) => {
      if (failure !== undefined) throw failure;
      const buffer = Buffer.allocUnsafe(1024 * 1024);
      for (let position = 0; ;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        await write(buffer.subarray(0, bytesRead));
        position += bytesRead;
      }
    });
  } finally {
    await handle.close();
    await fs.rm(tmp, { force: true });
  }
}

/** The working file for a path Git names, if it lies inside the work tree. */
export function workFileOf(workTree: string | undefined, repoPath: string): string | undefined {
  if (!workTree || repoPath === '') return undefined;
  const full = path.resolve(workTree, repoPath);
  const relative = path.relative(workTree, full);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  return full;
}
