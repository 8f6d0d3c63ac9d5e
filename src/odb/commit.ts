/**
 * Commit and annotated tag objects, in Git's text layout.
 *
 * Commit:  tree <id> / parent <id> (zero or more) / author <ident> /
 *          committer <ident> / blank line / message
 * Tag:     object <id> / type <type> / tag <name> / tagger <ident> /
 *          blank line / message
 * An ident is "Name <email> <unix seconds> <+hhmm>".
 */
import { corruptObject } from '../errors.ts';
import { isObjectId, type ObjectId } from './object-id.ts';

export interface Signature {
  readonly name: string;
  readonly email: string;
  /** Seconds since the epoch. */
  readonly time: number;
  /** Offset from UTC in minutes (east positive). */
  readonly tzOffset: number;
}

export interface Commit {
  readonly tree: ObjectId;
  readonly parents: readonly ObjectId[];
  readonly author: Signature;
  readonly committer: Signature;
  readonly message: string;
}

export interface Tag {
  readonly object: ObjectId;
  readonly type: string;
  readonly tag: string;
  readonly tagger: Signature;
  readonly message: string;
}

/** A signature for `name` and `email` at `date`, in the local time zone's offset. */
export function signatureAt(name: string, email: string, date: Date): Signature {
  return {
    name,
    email,
    time: Math.floor(date.getTime() / 1000),
    tzOffset: -date.getTimezoneOffset(),
  };
}

export function formatSignature(sig: Signature): string {
  const sign = sig.tzOffset < 0 ? '-' : '+';
  const abs = Math.abs(sig.tzOffset);
  const tz = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  return `${sig.name} <${sig.email}> ${sig.time} ${tz}`;
}

export function parseSignature(text: string): Signature | undefined {
  const match = /^(.*) <([^>]*)> (\d+) ([+-])(\d\d)(\d\d)$/.exec(text);
  if (!match) return undefined;
  const [, name = '', email = '', time = '0', sign, hh = '0', mm = '0'] = match;
  const offset = Number(hh) * 60 + Number(mm);
  return { name, email, time: Number(time), tzOffset: sign === '-' ? -offset : offset };
}

function sanitize(value: string): string {
  return value.replace(/[<>\n]/g, '');
}

export function encodeCommit(commit: Commit): Buffer {
  const lines = [`tree ${commit.tree}`];
  for (const parent of commit.parents) lines.push(`parent ${parent}`);
  const author = {
    ...commit.author,
    name: sanitize(commit.author.name),
    email: sanitize(commit.author.email),
  };
  const committer = {
    ...commit.committer,
    name: sanitize(commit.committer.name),
    email: sanitize(commit.committer.email),
  };
  lines.push(`author ${formatSignature(author)}`, `committer ${formatSignature(committer)}`);
  return Buffer.from(`${lines.join('\n')}\n\n${commit.message}`, 'utf8');
}

function splitHeaders(
  id: ObjectId,
  data: Buffer,
): { headers: [string, string][]; message: string } {
  const text = data.toString('utf8');
  const split = text.indexOf('\n\n');
  if (split < 0) throw corruptObject(id, 'no blank line after headers');
  const headers: [string, string][] = [];
  for (const line of text.slice(0, split).split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) throw corruptObject(id, 'bad header line');
    headers.push([line.slice(0, space), line.slice(space + 1)]);
  }
  return { headers, message: text.slice(split + 2) };
}

export function decodeCommit(id: ObjectId, data: Buffer): Commit {
  const { headers, message } = splitHeaders(id, data);
  let tree: string | undefined;
  const parents: ObjectId[] = [];
  let author: Signature | undefined;
  let committer: Signature | undefined;
  for (const [key, value] of headers) {
    if (key === 'tree') tree = value;
    else if (key === 'parent') parents.push(value);
    else if (key === 'author') author = parseSignature(value);
    else if (key === 'committer') committer = parseSignature(value);
  }
  if (!tree || !isObjectId(tree) || !author || !committer || !parents.every(isObjectId)) {
    throw corruptObject(id, 'bad commit');
  }
  return { tree, parents, author, committer, message };
}

export function encodeTag(tag: Tag): Buffer {
  const tagger = {
    ...tag.tagger,
    name: sanitize(tag.tagger.name),
    email: sanitize(tag.tagger.email),
  };
  return Buffer.from(
    `object ${tag.object}\ntype ${tag.type}\ntag ${tag.tag}\ntagger ${formatSignature(tagger)}\n\n${tag.message}`,
    'utf8',
  );
}

export function decodeTag(id: ObjectId, data: Buffer): Tag {
  const { headers, message } = splitHeaders(id, data);
  const get = (key: string): string | undefined => headers.find(([k]) => k === key)?.[1];
  const object = get('object');
  const type = get('type');
  const name = get('tag');
  const tagger = parseSignature(get('tagger') ?? '');
  if (!object || !isObjectId(object) || !type || !name || !tagger)
    throw corruptObject(id, 'bad tag');
  return { object, type, tag: name, tagger, message };
}
