/** How push and fetch report what moved, in Git's words. */
import type { ObjectId } from '../../odb/object-id.ts';
import type { TransferStats } from '../../protocol/fetch.ts';
import { shortId } from '../../repo/revision.ts';

export function shortRef(ref: string): string {
  return ref.replace(/^refs\/(heads|tags|remotes)\//, '');
}

export function refLine(
  flag: string,
  summary: string,
  from: string,
  to: string,
  note?: string,
): string {
  return ` ${flag} ${summary.padEnd(17)} ${from} -> ${to}${note ? ` (${note})` : ''}`;
}

export function rangeSummary(old: ObjectId | null, now: ObjectId | null, forced = false): string {
  if (old === null) return '';
  if (now === null) return '';
  return `${shortId(old)}${forced ? '...' : '..'}${shortId(now)}`;
}

export function statsLine(stats: TransferStats, verb: 'sent' | 'received'): string {
  const mib = (stats.bytes / 1048576).toFixed(2);
  return (
    `${stats.objects} objects, ${stats.chunks} chunks ${verb}, ` +
    `${stats.chunksSkipped} chunks already there, ${mib} MiB transferred`
  );
}
