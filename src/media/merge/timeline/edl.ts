/**
 * CMX 3600 EDLs, described for `diff`: events added, removed, moved (their
 * record times changed) and changed (source times, transition or notes).
 * An event is known by what it plays, its reel, channels and source in/out,
 * not by its number, which renumbers whenever an event is inserted. Merging
 * stays the line merge: the strategy declines.
 */
import type { RandomAccess } from '../../info/random-access.ts';
import type { MergeStrategy } from '../../merge-strategy.ts';

const TC = String.raw`(\d\d[:;]\d\d[:;]\d\d[:;.]\d\d)`;
const EVENT = new RegExp(
  String.raw`^(\d{3,6})\s+(\S+)\s+(\S+)\s+(C|D|W\d{3}|K[BO]?)\s+(?:(\d+)\s+)?${TC}\s+${TC}\s+${TC}\s+${TC}\s*$`,
);

interface EdlEvent {
  readonly number: string;
  readonly key: string;
  readonly label: string;
  readonly record: string;
  /** Everything but the record times and the number: compared for "changed". */
  readonly content: string[];
}

interface Edl {
  readonly title: string;
  readonly events: readonly EdlEvent[];
}

/** The EDL's events, or undefined when the text has none. */
export function readEdl(text: string): Edl | undefined {
  let title = '';
  const events: { number: string; lines: string[]; match: RegExpMatchArray[] }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (line.startsWith('TITLE:')) title = line.slice(6).trim();
    const match = EVENT.exec(line);
    if (match) {
      const last = events.at(-1);
      // A dissolve's second line repeats its event number.
      if (last && last.number === match[1]) last.match.push(match);
      else events.push({ number: match[1]!, lines: [], match: [match] });
    } else if (events.length > 0 && line !== '') events.at(-1)!.lines.push(line);
  }
  if (events.length === 0) return undefined;
  const seen = new Map<string, number>();
  return {
    title,
    events: events.map(({ number, lines, match }) => {
      const plays = match.at(-1)!;
      const [reel, channel, srcIn, srcOut] = [plays[2]!, plays[3]!, plays[6]!, plays[7]!];
      const base = `${reel} ${channel} ${srcIn}-${srcOut}`;
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      return {
        number,
        key: n === 1 ? base : `${base} #${n}`,
        label: `event ${number} (${base})`,
        record: match.map((m) => `${m[8]!}-${m[9]!}`).join(', '),
        content: [
          ...match.map((m) => `${m[2]!} ${m[3]!} ${m[4]!} ${m[5] ?? ''} ${m[6]!} ${m[7]!}`),
          ...lines,
        ],
      };
    }),
  };
}

export function describeEdls(before: string, after: string): string[] {
  const [b, a] = [readEdl(before), readEdl(after)];
  if (!b || !a) return [];
  const lines: string[] = [];
  if (b.title !== a.title) lines.push(`title changed: '${b.title}' → '${a.title}'`);
  const was = new Map(b.events.map((event) => [event.key, event]));
  const now = new Set(a.events.map((event) => event.key));
  for (const event of b.events) if (!now.has(event.key)) lines.push(`${event.label} removed`);
  for (const event of a.events) {
    const old = was.get(event.key);
    if (!old) {
      lines.push(`${event.label} added at ${event.record}`);
      continue;
    }
    if (old.record !== event.record)
      lines.push(`${event.label} moved: ${old.record} → ${event.record}`);
    if (old.content.join('\n') !== event.content.join('\n')) lines.push(`${event.label} changed`);
  }
  return lines;
}

async function text(access: RandomAccess): Promise<string> {
  return (await access.read(0, access.size)).toString('utf8');
}

export const edlStrategy: MergeStrategy = {
  name: 'edl-events',
  accepts: (format) => format.format === 'edl',
  maxBytes: 16 * 1024 * 1024,
  merge: () => Promise.resolve({ declined: 'EDLs merge line by line' }),
  async describe(before, after) {
    if (Math.max(before.size, after.size) > 16 * 1024 * 1024) return [];
    return describeEdls(await text(before), await text(after));
  },
};
