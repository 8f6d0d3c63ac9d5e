/**
 * The metadata merge and the splice: each metadata block is merged three
 * ways by its digest, and the merged file is the pixel side's segments in
 * their order with every block replaced by the merged version, dropped, or
 * inserted where the format wants a new one. Every segment is copied whole
 * from the side it comes from (a SidePiece), so the image data is
 * byte-identical to that side's and nothing is decoded or re-encoded.
 */
import type { SidePiece, Side } from '../../merge-strategy.ts';
import type { ImageLayout, MetadataBlock } from './layout.ts';
import { webpHeader } from './webp.ts';

export interface ChosenBlock {
  readonly side: Side;
  readonly block: MetadataBlock;
}

export interface MetadataMerge {
  /** The merged blocks, by key, in the order new ones are inserted. */
  readonly chosen: ReadonlyMap<string, ChosenBlock>;
  /** Labels of the blocks taken from theirs (changed, added or deleted there). */
  readonly fromTheirs: readonly string[];
  /** Labels of the blocks both sides changed differently. */
  readonly conflicts: readonly string[];
}

export interface SideBlocks {
  readonly layout: ImageLayout;
  readonly digests: ReadonlyMap<string, string>;
}

/**
 * Three-way merge of the metadata blocks: a block one side changed, added or
 * deleted takes that side's version; one both changed alike takes ours; one
 * both changed differently (including changed on one, deleted on the other)
 * is a conflict.
 */
export function mergeMetadata(sides: Record<Side, SideBlocks>): MetadataMerge {
  const keys = new Set([
    ...sides.ours.layout.blocks.keys(),
    ...sides.theirs.layout.blocks.keys(),
    ...sides.base.layout.blocks.keys(),
  ]);
  const chosen = new Map<string, ChosenBlock>();
  const fromTheirs: string[] = [];
  const conflicts: string[] = [];
  for (const key of keys) {
    const [b, o, t] = [sides.base, sides.ours, sides.theirs].map((s) => s.digests.get(key));
    const label = (sides.ours.layout.blocks.get(key) ??
      sides.theirs.layout.blocks.get(key) ??
      sides.base.layout.blocks.get(key))!.label;
    let side: Side;
    if (o === t || t === b) side = 'ours';
    else if (o === b) {
      side = 'theirs';
      fromTheirs.push(label);
    } else {
      conflicts.push(label);
      continue;
    }
    const block = sides[side].layout.blocks.get(key);
    if (block) chosen.set(key, { side, block });
  }
  return { chosen, fromTheirs, conflicts };
}

/** Where the image data comes from: a side's file, or freshly encoded bytes. */
export type PixelSource = Side | Buffer;

/**
 * The merged file: `layout` (of `source`) with its metadata blocks replaced
 * by `chosen`. Deterministic: the order is the pixel file's, new blocks
 * inserted in `chosen`'s order.
 */
export function splice(
  layout: ImageLayout,
  source: PixelSource,
  chosen: ReadonlyMap<string, ChosenBlock>,
): (Uint8Array | SidePiece)[] {
  const piece = (offset: number, length: number): Uint8Array | SidePiece =>
    typeof source === 'string'
      ? { side: source, offset, length }
      : source.subarray(offset, offset + length);
  const insert = new Map<number, ChosenBlock[]>();
  for (const [key, pick] of chosen) {
    if (layout.blocks.has(key)) continue;
    const at = layout.insertAt[pick.block.placement];
    insert.set(at, [...(insert.get(at) ?? []), pick]);
  }
  const out: (Uint8Array | SidePiece)[] = [];
  const emit = (pick: ChosenBlock) => {
    for (const s of pick.block.segments)
      out.push({ side: pick.side, offset: s.offset, length: s.length });
  };
  const done = new Set<string>();
  layout.segments.forEach((segment, i) => {
    for (const pick of insert.get(i) ?? []) emit(pick);
    if (segment.block === undefined) {
      out.push(piece(segment.offset, segment.length));
      return;
    }
    const pick = chosen.get(segment.block);
    if (!pick || done.has(segment.block)) return;
    done.add(segment.block);
    emit(pick);
  });
  for (const pick of insert.get(layout.segments.length) ?? []) emit(pick);
  if (layout.webp) {
    const length = out.reduce((sum, p) => sum + p.length, 0);
    out.unshift(webpHeader(layout.webp, length, new Set(chosen.keys())));
  }
  return out;
}
