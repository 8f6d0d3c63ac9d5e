/**
 * `mediagit lfs-transfer`: a git-lfs custom transfer agent (git-lfs's
 * docs/custom-transfers.md), so a stock git-lfs client moves chunks, not
 * whole files, to and from `mediagit serve` (docs/lfs-transfer-agent.md).
 *
 * git-lfs asks the server's Batch API for the `mediagit` transfer; a
 * MediaGit server picks it and answers with its usual actions (the object
 * URLs under `<repo>.git/info/lfs/`, and a transfer token). The agent gets
 * each object as a line of JSON on stdin and works out the repository's URL
 * from the action's href:
 *
 * - upload: a file of 4 MiB or more is cut as MediaGit cuts it (FastCDC),
 *   the server is asked which chunks it lacks (`chunks/check`, once per
 *   buffer of chunks), those are compressed and sent in cloud packs as they
 *   are made, and the manifest is bound to the OID last (the server checks
 *   the chunks hash to it). Nothing is written locally. Smaller files are
 *   sent whole, as `basic` would.
 * - download: the server's manifest for the OID, then only the chunks not
 *   found in objects already in `.git/lfs/objects` (located through the
 *   manifests this agent kept of what it moved, `.git/lfs/mediagit/`),
 *   written into a file in `.git/lfs/tmp` that git-lfs verifies and moves
 *   into its store. An object the server keeps whole comes as `basic` would.
 *
 * Errors of one object are answered on that object (git-lfs reports them);
 * only a broken conversation ends the agent.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { MediaGitError } from '../errors.ts';
import { DEFAULT_CHUNK_THRESHOLD, FileStore, type ChunkSink } from '../odb/file-store.ts';
import { decodeManifest, type Manifest } from '../odb/manifest.ts';
import { isObjectId, objectIdOf, type ObjectId } from '../odb/object-id.ts';
import { ObjectStore } from '../odb/object-store.ts';
import { decodeRecord } from '../odb/record.ts';
import { HttpTransport } from '../protocol/http-transport.ts';
import { AGENT_PACKS_IN_FLIGHT, PackStream, receiveFromPacks } from '../protocol/pack-transfer.ts';
import { profileFor } from '../repo/stage.ts';
import type { TlsClientOptions } from '../security/tls-client.ts';
import { tempName, writeFileAtomic } from '../storage/durable-file.ts';
import { LfsClient, type LfsAction } from './lfs-client.ts';

/** The transfer's name in the Batch API and in `lfs.customtransfer.<name>`. */
export const TRANSFER_NAME = 'mediagit';

/** A progress event at least this many bytes after the last one. */
const PROGRESS_STEP = 8 * 1024 * 1024;
/** Chunks read locally or asked of the server at once during a download. */
const LOCAL_READS = 4;

export interface TransferAgentOptions {
  /** The Git repository's git dir (git-lfs runs the agent in the repository). */
  readonly gitDir: string;
  readonly tls?: TlsClientOptions | undefined;
  /** Trace lines (MEDIAGIT_TRACE), to stderr. */
  readonly trace?: ((message: string) => void) | undefined;
}

interface TransferRequest {
  readonly event: 'upload' | 'download';
  readonly oid: ObjectId;
  readonly size: number;
  readonly path?: string | undefined;
  readonly action: LfsAction;
}

/** What one agent process moved (MEDIAGIT_TRACE prints it at the end). */
export interface TransferCounts {
  objects: number;
  failed: number;
  /** Bytes of chunk records and manifests sent, or of content received from the server. */
  bytesOverWire: number;
  /** Bytes of content found locally instead of downloaded. */
  bytesReused: number;
}

/**
 * Serves git-lfs's custom transfer protocol on `input`/`output` until
 * `terminate` or the end of input.
 */
export async function serveTransferAgent(
  input: Readable,
  output: Writable,
  options: TransferAgentOptions,
): Promise<TransferCounts> {
  const counts: TransferCounts = { objects: 0, failed: 0, bytesOverWire: 0, bytesReused: 0 };
  const send = (message: object): Promise<void> =>
    new Promise((resolve, reject) => {
      output.write(`${JSON.stringify(message)}\n`, (error) => (error ? reject(error) : resolve()));
    });
  const agent = new Agent(options, counts, send);
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let operation: 'upload' | 'download' | undefined;
  try {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw protocolError(`not a JSON line: ${line.slice(0, 80)}`);
      }
      const event = message['event'];
      if (event === 'terminate') break;
      if (event === 'init') {
        const op = message['operation'];
        if (op !== 'upload' && op !== 'download') {
          await send({ error: { code: 32, message: `unknown operation ${String(op)}` } });
          continue;
        }
        operation = op;
        await send({});
        continue;
      }
      if (event !== 'upload' && event !== 'download') {
        throw protocolError(`unknown event ${JSON.stringify(event)}`);
      }
      if (operation !== event) throw protocolError(`a ${event} request before its init`);
      const oid = String(message['oid'] ?? '');
      try {
        const request = transferRequest(message);
        if (event === 'upload') await agent.upload(request);
        else await send({ event: 'complete', oid, path: await agent.download(request) });
        counts.objects++;
        if (event === 'upload') await send({ event: 'complete', oid });
      } catch (error) {
        counts.failed++;
        options.trace?.(`${event} ${oid}: ${(error as Error).message}`);
        await send({ event: 'complete', oid, error: errorOf(error) });
      }
    }
  } finally {
    lines.close();
    await agent.close();
  }
  return counts;
}

function protocolError(message: string): MediaGitError {
  return new MediaGitError('LFS_TRANSFER_PROTOCOL', `lfs-transfer: ${message}`, { kind: 'user' });
}

function transferRequest(message: Record<string, unknown>): TransferRequest {
  const { oid, size, action } = message;
  if (typeof oid !== 'string' || !isObjectId(oid)) throw badRequest('oid is not a SHA-256');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw badRequest('size is not a byte count');
  }
  const href = (action as { href?: unknown } | null | undefined)?.href;
  if (typeof href !== 'string') {
    throw badRequest('no action: is the server a MediaGit server offering this transfer?');
  }
  const filePath = message['path'];
  if (message['event'] === 'upload' && typeof filePath !== 'string') {
    throw badRequest('an upload needs a path');
  }
  return {
    event: message['event'] as 'upload' | 'download',
    oid,
    size,
    path: typeof filePath === 'string' ? filePath : undefined,
    action: action as LfsAction,
  };
}

function badRequest(message: string): MediaGitError {
  return new MediaGitError('LFS_TRANSFER_REQUEST', message, { kind: 'user' });
}

/** A complete event's error: the HTTP status where there was one, else 1. */
function errorOf(error: unknown): { code: number; message: string } {
  const status = error instanceof MediaGitError ? error.data['status'] : undefined;
  return {
    code: typeof status === 'number' ? status : 1,
    message: error instanceof Error ? error.message : String(error),
  };
}

/**
 * The repository URL and bearer token behind an action of a MediaGit
 * server: href `<repo>[.git]/info/lfs/objects/<oid>`, header
 * `Authorization: Bearer <token>` (anonymous reads carry none).
 */
function remoteOf(action: LfsAction, oid: ObjectId): { url: string; token: string | undefined } {
  const match = /^(https?:\/\/.+?)(?:\.git)?\/info\/lfs\/objects\/([0-9a-f]{64})$/.exec(
    action.href,
  );
  if (!match || match[2] !== oid) {
    throw badRequest(`${action.href} is not a MediaGit server's object URL`);
  }
  const auth = Object.entries(action.header ?? {}).find(
    ([key]) => key.toLowerCase() === 'authorization',
  )?.[1];
  const bearer = auth === undefined ? undefined : /^Bearer (\S+)$/i.exec(auth)?.[1];
  if (auth !== undefined && bearer === undefined) {
    throw badRequest('the action carries a credential other than a bearer token');
  }
  return { url: match[1]!, token: bearer };
}

class Agent {
  readonly #options: TransferAgentOptions;
  readonly #counts: TransferCounts;
  readonly #send: (message: object) => Promise<void>;
  readonly #lfsDir: string;
  readonly #manifestDir: string;
  #files: FileStore | undefined;
  /** Pack buffers free between uploads, for the next file's packs (PackStream). */
  readonly #packBuffers: Buffer[] = [];
  /** One transport per repository URL and token (a push or fetch names one). */
  readonly #transports = new Map<string, HttpTransport>();

  constructor(
    options: TransferAgentOptions,
    counts: TransferCounts,
    send: (message: object) => Promise<void>,
  ) {
    this.#options = options;
    this.#counts = counts;
    this.#send = send;
    this.#lfsDir = path.join(options.gitDir, 'lfs');
    this.#manifestDir = path.join(this.#lfsDir, 'mediagit', 'manifests');
  }

  async close(): Promise<void> {
    await this.#files?.close();
    await Promise.all([...this.#transports.values()].map((transport) => transport.close()));
  }

  #transport(url: string, token: string | undefined): HttpTransport {
    const key = `${url}\n${token ?? ''}`;
    let transport = this.#transports.get(key);
    if (!transport) {
      transport = new HttpTransport(url, { ...this.#options.tls, token, parallelism: 8 });
      this.#transports.set(key, transport);
    }
    return transport;
  }

  /** Reports progress of `oid` at most every PROGRESS_STEP bytes, and at the end. */
  #progress(oid: ObjectId, size: number): (bytesSoFar: number) => void {
    let last = 0;
    return (bytesSoFar) => {
      if (bytesSoFar - last < PROGRESS_STEP && bytesSoFar !== size) return;
      if (bytesSoFar === last) return;
      const since = bytesSoFar - last;
      last = bytesSoFar;
      void this.#send({ event: 'progress', oid, bytesSoFar, bytesSinceLast: since });
    };
  }

  async upload(request: TransferRequest): Promise<void> {
    const { oid, size } = request;
    const filePath = request.path!;
    const stat = await fs.stat(filePath);
    if (!stat.isFile() || stat.size !== size) {
      throw badRequest(`${filePath} is not the ${size}-byte file to upload`);
    }
    const remote = remoteOf(request.action, oid);
    const progress = this.#progress(oid, size);
    if (size < DEFAULT_CHUNK_THRESHOLD) {
      await this.#uploadWhole(request, remote.url, filePath);
      this.#counts.bytesOverWire += size;
      progress(size);
      return;
    }
    const transport = this.#transport(remote.url, remote.token);
    // The packs are numbered for the server, which hashes them in order
    // as they arrive (protocol/upload-hashes.ts): no second read to bind the OID.
    // Two uploads in flight: the server receives one pack while it hashes
    // and writes the one before (with one, each pack waited for the last to
    // be written and synced: ~150 ms per 48 MiB, the whole push's pace).
    const packs = new PackStream(transport, {
      file: oid,
      inFlight: AGENT_PACKS_IN_FLIGHT,
      buffers: this.#packBuffers,
    });
    let manifest: Buffer | undefined;
    const sink: ChunkSink = {
      missing: async (ids) => new Set(await transport.missing(ids)),
      append: (id, record, order) => packs.addInOrder(id, record, order),
      abort: (_order, error) => packs.abortOrder(error),
      finish: async (id, record) => {
        const stats = await packs.finish();
        this.#counts.bytesOverWire += stats.bytes + record.length;
        await transport.putManifest(oid, id, record);
        manifest = (await decodeRecord(id, record)).data;
      },
    };
    // No local store: the object store only says how records are encoded.
    this.#files ??= new FileStore(
      new ObjectStore(
        path.join(this.#lfsDir, 'mediagit', 'objects'),
        path.join(this.#lfsDir, 'tmp'),
      ),
    );
    try {
      await this.#files.storeFile(filePath, {
        chunkThreshold: DEFAULT_CHUNK_THRESHOLD,
        profile: (head, fileSize) => profileFor(head, '', fileSize, true),
        sink,
        // The server hashes the chunks it binds to the OID: not done twice.
        sha256: oid,
        onBytes: progress,
      });
    } catch (error) {
      await packs.abort();
      throw error;
    }
    if (manifest) await this.#keepManifest(oid, manifest);
  }

  async #uploadWhole(request: TransferRequest, url: string, filePath: string): Promise<void> {
    const client = new LfsClient(`${url}.git/info/lfs`, this.#options.tls);
    try {
      await client.upload(
        { oid: request.oid, size: request.size, actions: { upload: request.action } },
        async (write) => {
          const handle = await fs.open(filePath, constants.O_RDONLY);
          try {
            for await (const data of handle.createReadStream({ highWaterMark: 1024 * 1024 })) {
              await write(data as Buffer);
            }
          } finally {
            await handle.close();
          }
        },
      );
    } finally {
      client.close();
    }
  }

  /**
   * Remembers which chunks make `oid` (its manifest's text), for later
   * downloads to find them locally.
   */
  async #keepManifest(oid: ObjectId, manifest: Buffer): Promise<void> {
    await fs.mkdir(this.#manifestDir, { recursive: true });
    await writeFileAtomic(path.join(this.#manifestDir, oid), [manifest], {
      tmpDir: this.#manifestDir,
    });
  }

  /** Downloads `request` into a new file in `.git/lfs/tmp`; returns its path. */
  async download(request: TransferRequest): Promise<string> {
    const { oid, size } = request;
    const remote = remoteOf(request.action, oid);
    const tmpDir = path.join(this.#lfsDir, 'tmp');
    await fs.mkdir(tmpDir, { recursive: true });
    const target = tempName(tmpDir, `mediagit-${oid.slice(0, 12)}`);
    const transport = this.#transport(remote.url, remote.token);
    const got = size < DEFAULT_CHUNK_THRESHOLD ? undefined : await transport.getManifest(oid);
    try {
      if (!got) {
        const client = new LfsClient(`${remote.url}.git/info/lfs`, this.#options.tls);
        try {
          await client.download({ oid, size, actions: { download: request.action } }, target);
        } finally {
          client.close();
        }
        this.#counts.bytesOverWire += size;
        this.#progress(oid, size)(size);
        return target;
      }
      const object = await decodeRecord(got.id, got.record);
      const manifest = object.type === 'manifest' ? decodeManifest(got.id, object.data) : undefined;
      if (!manifest || manifest.sha256 !== oid || manifest.size !== size) {
        throw new MediaGitError(
          'LFS_BAD_DOWNLOAD',
          `the server's manifest for ${oid} does not describe it`,
          { kind: 'user' },
        );
      }
      await this.#assemble(transport, manifest, target, this.#progress(oid, size));
      await this.#keepManifest(oid, object.data);
      return target;
    } catch (error) {
      await fs.rm(target, { force: true });
      throw error;
    }
  }

  /** Writes the file `manifest` describes: chunks found locally, the rest from the server. */
  async #assemble(
    transport: HttpTransport,
    manifest: Manifest,
    target: string,
    progress: (bytes: number) => void,
  ): Promise<void> {
    const offsets = new Map<ObjectId, number[]>();
    let at = 0;
    for (const chunk of manifest.chunks) {
      const list = offsets.get(chunk.id);
      if (list) list.push(at);
      else offsets.set(chunk.id, [at]);
      at += chunk.length;
    }
    const lengths = new Map(manifest.chunks.map((c) => [c.id, c.length]));
    const handle = await fs.open(target, 'wx', 0o600);
    let done = 0;
    try {
      await handle.truncate(manifest.size);
      const place = async (id: ObjectId, data: Uint8Array): Promise<void> => {
        for (const offset of offsets.get(id)!) {
          await handle.write(data, 0, data.length, offset);
          done += data.length;
        }
        progress(done);
      };
      const local = await this.#localChunks(new Set(offsets.keys()));
      const wanted: ObjectId[] = [];
      const ids = [...offsets.keys()];
      for (let i = 0; i < ids.length; i += LOCAL_READS) {
        await Promise.all(
          ids.slice(i, i + LOCAL_READS).map(async (id) => {
            const data = await readLocal(local.get(id), id, lengths.get(id)!);
            if (!data) return void wanted.push(id);
            this.#counts.bytesReused += data.length;
            await place(id, data);
          }),
        );
      }
      await receiveFromPacks(transport, wanted, {
        sizeOf: (id) => lengths.get(id),
        onObject: async (id, record, object) => {
          if (object.type !== 'chunk') throw notAChunk(id);
          this.#counts.bytesOverWire += record.length;
          await place(id, object.data);
        },
        fetchLoose: async (id) => {
          const record = await transport.getChunk(id, lengths.get(id));
          try {
            const object = await decodeRecord(id, record, lengths.get(id));
            if (object.type !== 'chunk') throw notAChunk(id);
            this.#counts.bytesOverWire += record.length;
            await place(id, object.data);
          } finally {
            transport.release(record);
          }
        },
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Where chunks among `ids` are in objects git-lfs keeps: read from the
   * manifests this agent kept, for objects still in `.git/lfs/objects`.
   */
  async #localChunks(ids: Set<ObjectId>): Promise<Map<ObjectId, LocalChunk>> {
    const found = new Map<ObjectId, LocalChunk>();
    const names = await fs.readdir(this.#manifestDir).catch(() => [] as string[]);
    for (const oid of names) {
      if (found.size === ids.size) break;
      if (!isObjectId(oid)) continue;
      const file = path.join(this.#lfsDir, 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
      let manifest: Manifest;
      try {
        const data = await fs.readFile(path.join(this.#manifestDir, oid));
        manifest = decodeManifest(objectIdOf('manifest', data), data);
        await fs.access(file);
      } catch {
        continue; // gone from git-lfs's store (pruned), or unreadable: not a source
      }
      let offset = 0;
      for (const chunk of manifest.chunks) {
        if (ids.has(chunk.id) && !found.has(chunk.id)) found.set(chunk.id, { file, offset });
        offset += chunk.length;
      }
    }
    return found;
  }
}

interface LocalChunk {
  readonly file: string;
  readonly offset: number;
}

/** A chunk's bytes read from a local object, or undefined when they are not there (any more). */
async function readLocal(
  at: LocalChunk | undefined,
  id: ObjectId,
  length: number,
): Promise<Buffer | undefined> {
  if (!at) return undefined;
  try {
    const handle = await fs.open(at.file, constants.O_RDONLY);
    try {
      const data = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(data, 0, length, at.offset);
      return bytesRead === length && objectIdOf('chunk', data) === id ? data : undefined;
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
}

function notAChunk(id: ObjectId): MediaGitError {
  return new MediaGitError('LFS_BAD_DOWNLOAD', `object ${id} is not a chunk`, { kind: 'user' });
}
