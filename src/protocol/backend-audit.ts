/**
 * The audit log of a server root on a storage backend: one object per event,
 * `<day>/<time>-<random>.json` (e.g. `2026-12-02/2026-12-02T18:53:56.123Z-
 * 3f9a….json`), written create-only before `append` resolves. Object stores
 * have no append, and one object per event needs no coordination between the
 * servers sharing the root; listing a day's prefix reads the events in time
 * order (ties broken by the random part).
 */
import { randomBytes } from 'node:crypto';
import type { StorageBackend } from '../storage/backend.ts';
import { auditRecord, type AuditEvent, type AuditSink } from '../security/audit.ts';

export class BackendAuditLog implements AuditSink {
  readonly backend: StorageBackend;

  constructor(backend: StorageBackend) {
    this.backend = backend;
  }

  async append(event: AuditEvent): Promise<void> {
    const line = auditRecord(event);
    const time = (JSON.parse(line) as { time: string }).time;
    const key = `${time.slice(0, 10)}/${time}-${randomBytes(6).toString('hex')}.json`;
    await this.backend.put(key, Buffer.from(`${line}\n`, 'utf8'), { ifNoneMatch: '*' });
  }

  async close(): Promise<void> {}

  /** Every event, oldest first (for tests and `mediagit audit`-style tools). */
  async *events(): AsyncIterable<Record<string, unknown>> {
    for await (const key of this.backend.list('')) {
      const bytes = await this.backend.get(key);
      yield JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    }
  }
}
