import type { Command } from 'commander';
import { MediaGitError } from '../../errors.ts';
import { rootStats } from '../../protocol/root-stats.ts';
import { ServerRoot } from '../../protocol/server-root.ts';
import {
  CHUNK_SIZE_BUCKETS,
  repoStats,
  STATS_CATEGORIES,
  type RepoStats,
} from '../../repo/stats.ts';
import { printJson, type Cli } from '../context.ts';
import { formatBytes } from '../format-bytes.ts';
import { storageSettings } from '../storage-settings.ts';

/** Bad command-line usage: Git's exit code 129. */
function usage(message: string): MediaGitError {
  return new MediaGitError('STATS_USAGE', `error: ${message}`, {
    kind: 'usage',
    data: { exitCode: 129 },
  });
}

interface StatsFlags {
  json?: boolean;
  prometheus?: boolean;
  root?: string;
  repo?: string;
}

export function register(program: Command, cli: Cli): void {
  program
    .command('stats')
    .description(
      'Show logical and stored sizes, dedup, compression, deltas, chunks and packs (docs/stats.md)',
    )
    .option('--json', 'print the figures as JSON')
    .option('--prometheus', 'print the figures in the Prometheus text format')
    .option('--root <dir|url>', 'the repositories of a server root (a folder or storage URL)')
    .option('--repo <name>', 'with --root: only this repository')
    .action(async (opts: StatsFlags) => {
      if (opts.json && opts.prometheus) throw usage('--json and --prometheus exclude each other');
      if (opts.repo !== undefined && opts.root === undefined) throw usage('--repo needs --root');
      if (opts.root !== undefined) {
        const root = ServerRoot.open(opts.root, {
          cwd: cli.cwd,
          settings: await storageSettings(cli.env),
        });
        const result = await rootStats(root, { repo: opts.repo });
        if (opts.json) printJson(cli, result);
        else if (opts.prometheus) {
          write(
            cli,
            renderPrometheus(
              result.repositories.map((stats) => ({ labels: { repo: stats.name }, stats })),
            ),
          );
        } else {
          const blocks = result.repositories.map((stats) =>
            describe(`Repository ${stats.name} (${result.root})`, stats),
          );
          cli.out(blocks.length > 0 ? blocks.join('\n\n') : `no repositories in ${result.root}`);
        }
        return;
      }
      const repo = await cli.openRepo();
      const stats = await repoStats(repo);
      if (opts.json) printJson(cli, { repository: repo.gitDir, ...stats });
      else if (opts.prometheus) write(cli, renderPrometheus([{ labels: {}, stats }]));
      else cli.out(describe(`Repository ${repo.gitDir}`, stats));
    });
}

function write(cli: Cli, text: string): void {
  (cli.write ?? cli.out)(text);
}

const times = (ratio: number): string => `${ratio.toFixed(2)}x`;
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The figures laid out for people: totals, categories, objects, chunks, the store. */
function describe(title: string, s: RepoStats): string {
  const lines: string[] = [title];
  const row = (cells: string[], widths: number[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  lines.push(
    `Content: ${plural(s.files, 'file version')} in ${plural(s.commits, 'commit')} reachable from ${plural(s.refs, 'ref')}`,
    `  logical   ${formatBytes(s.logicalBytes)}`,
    `  unique    ${formatBytes(s.uniqueBytes)}  (dedup ratio ${times(s.dedupRatio)})`,
    `  stored    ${formatBytes(s.storedBytes)}  (logical/stored ${times(s.reductionRatio)})` +
      (s.allocatedBytes === null ? '' : `; ${formatBytes(s.allocatedBytes)} allocated on disk`),
  );
  const widths = [30, 7, 12, 12, 12];
  lines.push('', row(['By format category', 'files', 'logical', 'unique', 'stored'], widths));
  for (const c of s.categories) {
    lines.push(
      row(
        [
          `  ${c.category}`,
          String(c.files),
          formatBytes(c.logicalBytes),
          formatBytes(c.uniqueBytes),
          formatBytes(c.storedBytes),
        ],
        widths,
      ),
    );
  }
  const extra = (label: string, bytes: number): string =>
    row([`  ${label}`, '', '', '', formatBytes(bytes)], widths);
  lines.push(extra('metadata (commits, trees, tags)', s.metadata.storedBytes));
  if (s.unreachable.objects > 0)
    lines.push(
      extra(`unreachable (${plural(s.unreachable.objects, 'object')})`, s.unreachable.storedBytes),
    );
  if (s.duplicates.copies > 0)
    lines.push(extra(`duplicate copies (${s.duplicates.copies})`, s.duplicates.bytes));
  lines.push(extra('pack framing, indexes, other', s.overheadBytes));

  const objectWidths = [30, 9, 12, 12];
  lines.push('', row(['Objects', 'count', 'raw', 'stored'], objectWidths));
  for (const [type, t] of Object.entries(s.objects.byType)) {
    if (t.count === 0) continue;
    lines.push(
      row(
        [`  ${type}`, String(t.count), formatBytes(t.rawBytes), formatBytes(t.storedBytes)],
        objectWidths,
      ),
    );
  }
  lines.push(
    '',
    `Compression: ${times(s.compressionRatio)} over ${plural(s.compression.objects, 'object')} stored whole (${formatBytes(s.compression.rawBytes)} in ${formatBytes(s.compression.storedBytes)})`,
    `Deltas: ${plural(s.deltas.objects, 'object')}, ${formatBytes(s.deltas.rawBytes)} stored in ${formatBytes(s.deltas.storedBytes)} (saving ${formatBytes(s.deltas.savingsBytes)})`,
  );
  const c = s.chunks;
  lines.push(
    `Chunks: ${c.count} (${formatBytes(c.bytes)})` +
      (c.count === 0
        ? ''
        : `; min ${formatBytes(c.min)}, median ${formatBytes(c.median)}, p90 ${formatBytes(c.p90)}, p99 ${formatBytes(c.p99)}, max ${formatBytes(c.max)}`),
  );
  let previous = 0;
  for (const bucket of c.buckets) {
    const range =
      bucket.upTo === null ? `> ${formatBytes(previous)}` : `<= ${formatBytes(bucket.upTo)}`;
    if (bucket.count > 0) lines.push(`  ${range.padEnd(14)} ${bucket.count}`);
    previous = bucket.upTo ?? previous;
  }
  lines.push(
    '',
    `Store: ${plural(s.store.packs.count, 'pack')} (${formatBytes(s.store.packs.bytes)}, ${plural(s.store.packs.objects, 'object')}), ` +
      `${plural(s.store.loose.objects, 'loose object')} (${formatBytes(s.store.loose.bytes)}), ` +
      `${s.store.indexes.count} ${s.store.indexes.count === 1 ? 'index' : 'indexes'} (${formatBytes(s.store.indexes.bytes)}), ` +
      `${plural(s.store.other.count, 'other file')} (${formatBytes(s.store.other.bytes)})`,
  );
  if (s.promisedObjects) {
    lines.push(
      `Partial clone: ${plural(s.promisedObjects, 'reachable object')} absent, promised by the remote (not counted above)`,
    );
  }
  if (s.missingObjects > 0 || s.unreadableObjects > 0) {
    lines.push(
      `Damage: ${plural(s.missingObjects, 'reachable object')} missing, ${plural(s.unreadableObjects, 'stored object')} with an unreadable header (run mediagit fsck)`,
    );
  }
  return lines.join('\n');
}

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly samples: (stats: RepoStats) => [Labels, number][];
}

const one =
  (value: (s: RepoStats) => number) =>
  (s: RepoStats): [Labels, number][] => [[{}, value(s)]];

function byCategory(value: (c: RepoStats['categories'][number]) => number) {
  return (s: RepoStats): [Labels, number][] =>
    STATS_CATEGORIES.map((category) => {
      const found = s.categories.find((c) => c.category === category);
      return [{ category }, found ? value(found) : 0];
    });
}

function byType(value: (t: RepoStats['objects']['byType']['blob']) => number) {
  return (s: RepoStats): [Labels, number][] =>
    Object.entries(s.objects.byType).map(([type, t]) => [{ type }, value(t)]);
}

/** Every gauge (docs/stats.md, "Prometheus metrics"). */
const FAMILIES: readonly Family[] = [
  {
    name: 'mediagit_repo_refs',
    help: 'Refs the reachability walk started from',
    samples: one((s) => s.refs),
  },
  {
    name: 'mediagit_repo_commits',
    help: 'Commits reachable from the refs',
    samples: one((s) => s.commits),
  },
  {
    name: 'mediagit_repo_files',
    help: 'Distinct file versions reachable from the refs',
    samples: one((s) => s.files),
  },
  {
    name: 'mediagit_repo_logical_bytes',
    help: 'Sum of the sizes of the distinct reachable file versions',
    samples: one((s) => s.logicalBytes),
  },
  {
    name: 'mediagit_repo_unique_bytes',
    help: 'Raw bytes of the distinct blobs and chunks the reachable files use',
    samples: one((s) => s.uniqueBytes),
  },
  {
    name: 'mediagit_repo_stored_bytes',
    help: 'Bytes of every file of the object store',
    samples: one((s) => s.storedBytes),
  },
  {
    name: 'mediagit_repo_allocated_bytes',
    help: 'Blocks allocated to the object store on local disk (du -B1)',
    samples: (s) => (s.allocatedBytes === null ? [] : [[{}, s.allocatedBytes]]),
  },
  {
    name: 'mediagit_repo_dedup_ratio',
    help: 'Logical bytes over unique bytes',
    samples: one((s) => s.dedupRatio),
  },
  {
    name: 'mediagit_repo_compression_ratio',
    help: 'Raw bytes over stored bytes of the objects stored whole',
    samples: one((s) => s.compressionRatio),
  },
  {
    name: 'mediagit_repo_reduction_ratio',
    help: 'Logical bytes over stored bytes',
    samples: one((s) => s.reductionRatio),
  },
  {
    name: 'mediagit_repo_category_files',
    help: 'Distinct reachable file versions by format category',
    samples: byCategory((c) => c.files),
  },
  {
    name: 'mediagit_repo_category_logical_bytes',
    help: 'Logical bytes by format category',
    samples: byCategory((c) => c.logicalBytes),
  },
  {
    name: 'mediagit_repo_category_unique_bytes',
    help: 'Unique bytes by format category',
    samples: byCategory((c) => c.uniqueBytes),
  },
  {
    name: 'mediagit_repo_category_stored_bytes',
    help: 'Stored record bytes by format category',
    samples: byCategory((c) => c.storedBytes),
  },
  {
    name: 'mediagit_repo_metadata_stored_bytes',
    help: 'Stored record bytes of reachable commits, trees and tags',
    samples: one((s) => s.metadata.storedBytes),
  },
  {
    name: 'mediagit_repo_unreachable_objects',
    help: 'Stored objects no ref reaches',
    samples: one((s) => s.unreachable.objects),
  },
  {
    name: 'mediagit_repo_unreachable_stored_bytes',
    help: 'Stored record bytes of objects no ref reaches',
    samples: one((s) => s.unreachable.storedBytes),
  },
  {
    name: 'mediagit_repo_duplicate_stored_bytes',
    help: 'Bytes of second and further copies of stored objects',
    samples: one((s) => s.duplicates.bytes),
  },
  {
    name: 'mediagit_repo_overhead_bytes',
    help: 'Stored bytes outside object records: pack framing, indexes, other files',
    samples: one((s) => s.overheadBytes),
  },
  {
    name: 'mediagit_repo_missing_objects',
    help: 'Reachable objects stored nowhere',
    samples: one((s) => s.missingObjects),
  },
  {
    name: 'mediagit_repo_objects',
    help: 'Stored objects by type',
    samples: byType((t) => t.count),
  },
  {
    name: 'mediagit_repo_object_raw_bytes',
    help: 'Raw bytes of stored objects by type',
    samples: byType((t) => t.rawBytes),
  },
  {
    name: 'mediagit_repo_object_stored_bytes',
    help: 'Record bytes of stored objects by type',
    samples: byType((t) => t.storedBytes),
  },
  {
    name: 'mediagit_repo_delta_objects',
    help: 'Objects stored as deltas',
    samples: one((s) => s.deltas.objects),
  },
  {
    name: 'mediagit_repo_delta_raw_bytes',
    help: 'Raw bytes of the objects stored as deltas',
    samples: one((s) => s.deltas.rawBytes),
  },
  {
    name: 'mediagit_repo_delta_stored_bytes',
    help: 'Record bytes of the objects stored as deltas',
    samples: one((s) => s.deltas.storedBytes),
  },
  {
    name: 'mediagit_repo_delta_savings_bytes',
    help: 'Raw minus record bytes of the objects stored as deltas',
    samples: one((s) => s.deltas.savingsBytes),
  },
  { name: 'mediagit_repo_packs', help: 'Pack files', samples: one((s) => s.store.packs.count) },
  {
    name: 'mediagit_repo_pack_bytes',
    help: 'Bytes of the pack files',
    samples: one((s) => s.store.packs.bytes),
  },
  {
    name: 'mediagit_repo_packed_objects',
    help: 'Objects found in packs',
    samples: one((s) => s.store.packs.objects),
  },
  {
    name: 'mediagit_repo_loose_objects',
    help: 'Loose object files',
    samples: one((s) => s.store.loose.objects),
  },
  {
    name: 'mediagit_repo_loose_bytes',
    help: 'Bytes of the loose object files',
    samples: one((s) => s.store.loose.bytes),
  },
  {
    name: 'mediagit_repo_index_bytes',
    help: 'Bytes of the pack indexes and multi-pack indexes',
    samples: one((s) => s.store.indexes.bytes),
  },
];

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  return String(value);
}

/** The Prometheus text exposition format (0.0.4) of one or more repositories' figures. */
export function renderPrometheus(items: readonly { labels: Labels; stats: RepoStats }[]): string {
  const lines: string[] = [];
  for (const family of FAMILIES) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} gauge`);
    for (const { labels, stats } of items) {
      for (const [extra, value] of family.samples(stats)) {
        lines.push(`${family.name}${formatLabels({ ...labels, ...extra })} ${formatValue(value)}`);
      }
    }
  }
  const chunk = 'mediagit_repo_chunk_size_bytes';
  lines.push(`# HELP ${chunk} Raw sizes of the stored chunks`, `# TYPE ${chunk} histogram`);
  for (const { labels, stats } of items) {
    let cumulative = 0;
    stats.chunks.buckets.forEach((bucket, i) => {
      cumulative += bucket.count;
      const le = i < CHUNK_SIZE_BUCKETS.length ? String(CHUNK_SIZE_BUCKETS[i]) : '+Inf';
      lines.push(`${chunk}_bucket${formatLabels({ ...labels, le })} ${cumulative}`);
    });
    lines.push(`${chunk}_sum${formatLabels(labels)} ${stats.chunks.bytes}`);
    lines.push(`${chunk}_count${formatLabels(labels)} ${stats.chunks.count}`);
  }
  return `${lines.join('\n')}\n`;
}
