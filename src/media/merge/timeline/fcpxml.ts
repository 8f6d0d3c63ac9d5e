/**
 * Final Cut Pro XML, described for `diff`: clips (asset-clip, clip, ref-clip,
 * mc-clip, sync-clip, title, gap, video, audio, transition) added, removed,
 * moved (their offset changed) and changed (other attributes or their
 * content). A clip is known by its element, the asset it plays (ref) and
 * where in that asset it starts (start), else by its name. Merging stays the
 * line merge: the strategy declines.
 */
import type { RandomAccess } from '../../info/random-access.ts';
import type { MergeStrategy } from '../../merge-strategy.ts';

const CLIP_ELEMENTS = new Set([
  'asset-clip',
  'clip',
  'ref-clip',
  'mc-clip',
  'sync-clip',
  'title',
  'gap',
  'video',
  'audio',
  'transition',
]);

interface FcpClip {
  readonly key: string;
  readonly label: string;
  readonly attributes: ReadonlyMap<string, string>;
  /** The element's text without its offset: compared for "changed". */
  readonly content: string;
}

const TAG = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
const ATTRIBUTE = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

/** The clips in document order, or undefined when the text is not FCPXML. */
export function readFcpxml(text: string): FcpClip[] | undefined {
  if (!/<fcpxml\b/.test(text)) return undefined;
  const clips: FcpClip[] = [];
  const open: { name: string; start: number; attributes: Map<string, string> }[] = [];
  const seen = new Map<string, number>();
  const finish = (name: string, attributes: Map<string, string>, element: string) => {
    const id = attributes.get('ref') ?? '';
    const start = attributes.get('start') ?? '';
    const base =
      id !== '' ? `${name} ${id}@${start}` : `${name} '${attributes.get('name') ?? ''}'@${start}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const named = attributes.get('name');
    clips.push({
      key: n === 1 ? base : `${base} #${n}`,
      label: named ? `${name} '${named}'` : `${name} ${id || '(unnamed)'}`,
      attributes,
      content: element.replace(/\soffset\s*=\s*("[^"]*"|'[^']*')/, '').replace(/\s+/g, ' '),
    });
  };
  for (const match of text.matchAll(TAG)) {
    const [whole, closing, name, attrText, selfClosing] = match;
    if (!CLIP_ELEMENTS.has(name!)) continue;
    if (closing) {
      const at = open.findLastIndex((element) => element.name === name);
      if (at < 0) return undefined;
      const element = open[at]!;
      open.splice(at);
      finish(name!, element.attributes, text.slice(element.start, match.index + whole.length));
      continue;
    }
    const attributes = new Map<string, string>();
    for (const a of attrText!.matchAll(ATTRIBUTE)) attributes.set(a[1]!, a[2] ?? a[3] ?? '');
    if (selfClosing) finish(name!, attributes, whole);
    else open.push({ name: name!, start: match.index, attributes });
  }
  return open.length === 0 ? clips : undefined;
}

export function describeFcpxmls(before: string, after: string): string[] {
  const [b, a] = [readFcpxml(before), readFcpxml(after)];
  if (!b || !a) return [];
  const lines: string[] = [];
  const was = new Map(b.map((clip) => [clip.key, clip]));
  const now = new Set(a.map((clip) => clip.key));
  for (const clip of b) if (!now.has(clip.key)) lines.push(`${clip.label} removed`);
  for (const clip of a) {
    const old = was.get(clip.key);
    if (!old) {
      lines.push(`${clip.label} added`);
      continue;
    }
    const [from, to] = [old.attributes.get('offset'), clip.attributes.get('offset')];
    if (from !== to) lines.push(`${clip.label} moved: offset ${from ?? '-'} → ${to ?? '-'}`);
    if (old.content !== clip.content) {
      const changed = [...new Set([...old.attributes.keys(), ...clip.attributes.keys()])].filter(
        (key) => key !== 'offset' && old.attributes.get(key) !== clip.attributes.get(key),
      );
      const what = changed.map(
        (key) => `${key} ${old.attributes.get(key) ?? '-'} → ${clip.attributes.get(key) ?? '-'}`,
      );
      lines.push(`${clip.label} changed${what.length > 0 ? `: ${what.join(', ')}` : ''}`);
    }
  }
  return lines;
}

async function text(access: RandomAccess): Promise<string> {
  return (await access.read(0, access.size)).toString('utf8');
}

export const fcpxmlStrategy: MergeStrategy = {
  name: 'fcpxml-clips',
  accepts: (format) => format.format === 'fcpxml',
  maxBytes: 32 * 1024 * 1024,
  merge: () => Promise.resolve({ declined: 'FCPXML merges line by line' }),
  async describe(before, after) {
    if (Math.max(before.size, after.size) > 32 * 1024 * 1024) return [];
    return describeFcpxmls(await text(before), await text(after));
  },
};
