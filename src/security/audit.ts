/**
 * The server's audit log: one JSON object per line, appended, never rewritten.
 *
 * Contract: each event becomes one line `{"time": <ISO>, ...event}` written
 * with a single write(2) on a descriptor opened with O_APPEND, then
 * fdatasync'd before `append` resolves, so an acknowledged event survives a
 * crash and lines from concurrent appends never interleave (appends from one
 * process are also queued, so they land in call order). The file is created
 * 0600 and its folder 0700: it names users and addresses.
 *
 * Secrets are redacted before writing, defensively (callers should never pass
 * them): any string value holding an API key, a JWT or a `Bearer ` header
 * becomes '[redacted]', at any depth.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface AuditRefUpdate {
  ref: string;
  old: string | null;
  new: string | null;
  result: string;
}

export interface AuditEvent {
  action: string;
  outcome: 'ok' | 'denied' | 'failed';
  user?: string;
  keyId?: string;
  repo?: string;
  ip?: string;
  refs?: AuditRefUpdate[];
  reason?: string;
  /** The x-request-id of the server request that caused the event (docs/observability.md). */
  requestId?: string;
}

export const REDACTED = '[redacted]';

const API_KEY_LIKE = /mgk_[A-Za-z0-9_-]{16,}/;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;
const BEARER = /^\s*bearer\s/i;

/** Whether a string value carries something that must never reach a log. */
export function looksSecret(value: string): boolean {
  return BEARER.test(value) || API_KEY_LIKE.test(value) || JWT_LIKE.test(value);
}

/** A copy of `value` with every secret-looking string replaced by '[redacted]'. */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === 'string') return looksSecret(value) ? REDACTED : value;
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, redactSecrets(v)]),
    );
  }
  return value;
}

/** Where audit events go: a local file (AuditLog) or a storage backend (protocol/backend-audit.ts). */
export interface AuditSink {
  /** Resolves once the event is durable. */
  append(event: AuditEvent): Promise<void>;
  close(): Promise<void>;
}

/** One event as it is stored: a time stamp first, secrets redacted. */
export function auditRecord(event: AuditEvent): string {
  return JSON.stringify(redactSecrets({ time: new Date().toISOString(), ...event }));
}

export class AuditLog implements AuditSink {
  readonly file: string;
  #handle: Promise<fs.FileHandle> | undefined;
  /** The last queued append; each append waits for it so lines keep call order. */
  #tail: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = path.resolve(file);
  }

  /** Resolves once the event's line is on disk (fdatasync'd). */
  append(event: AuditEvent): Promise<void> {
    const line = `${auditRecord(event)}\n`;
    const bytes = Buffer.from(line, 'utf8');
    const result = this.#tail.then(() => this.#write(bytes));
    // A failed append must not stop the ones queued after it.
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Waits for queued appends, then closes the file; a later append reopens it. */
  async close(): Promise<void> {
    await this.#tail;
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) await (await handle).close();
  }

  async #write(bytes: Buffer): Promise<void> {
    const handle = await this.#open();
    let offset = 0;
    // A regular file takes the whole line in one write; the loop only guards
    // against a short write (a full disk), which then fails on the next call.
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
      offset += bytesWritten;
    }
    await handle.datasync();
  }

  #open(): Promise<fs.FileHandle> {
    if (!this.#handle) {
      const opening = (async () => {
        await fs.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
        const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;
        return fs.open(this.file, flags, 0o600);
      })();
      this.#handle = opening;
      // Let a later append retry after a failed open (say, a folder made meanwhile).
      opening.catch(() => {
        if (this.#handle === opening) this.#handle = undefined;
      });
    }
    return this.#handle;
  }
}
