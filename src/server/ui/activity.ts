/**
 * Recent activity of a repository for the web interface: the newest events
 * of the root's audit log (security/audit.ts) that name it. A local root
 * keeps one append-only file, read from its end; a root on object storage
 * keeps one object per event under a day prefix (protocol/backend-audit.ts),
 * read from today back over the last week.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { SERVER_STATE_DIR, type ServerRoot } from '../../protocol/server-root.ts';

/** The tail of a local audit log read for the page. */
const TAIL_BYTES = 2 * 1024 * 1024;
const DAYS_BACK = 7;

export async function recentAuditEvents(
  root: ServerRoot,
  repo: string,
  limit: number,
): Promise<Record<string, unknown>[]> {
  const events: Record<string, unknown>[] = [];
  const take = (line: string): boolean => {
    try {
      const event = JSON.parse(line) as Record<string, unknown>;
      if (event['repo'] === repo) events.push(event);
    } catch {
      // A torn last line (a crash mid-append) is skipped.
    }
    return events.length >= limit;
  };
  if (root.localDir !== undefined) {
    const file = path.join(root.localDir, SERVER_STATE_DIR, 'audit.log');
    const handle = await fs.open(file, 'r').catch(() => undefined);
    if (!handle) return events;
    try {
      const { size } = await handle.stat();
      const start = Math.max(0, size - TAIL_BYTES);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      const lines = buffer.toString('utf8').split('\n');
      if (start > 0) lines.shift(); // cut mid-line
      for (let i = lines.length - 1; i >= 0; i--) {
        if (lines[i]!.trim() !== '' && take(lines[i]!)) break;
      }
    } finally {
      await handle.close();
    }
    return events;
  }
  const audit = root.state.child('audit');
  for (let day = 0; day < DAYS_BACK && events.length < limit; day++) {
    const prefix = `${new Date(Date.now() - day * 86_400_000).toISOString().slice(0, 10)}/`;
    const keys: string[] = [];
    for await (const key of audit.list(prefix)) keys.push(key);
    keys.sort();
    for (let i = keys.length - 1; i >= 0; i--) {
      const text = Buffer.from(await audit.get(keys[i]!)).toString('utf8');
      if (take(text.trim())) break;
    }
  }
  return events;
}
