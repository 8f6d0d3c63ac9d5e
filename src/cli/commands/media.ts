import type { Command } from 'commander';
import {
  isStoredSpec,
  storedMediaInfo,
  workingFileMediaInfo,
  type MediaInfoReport,
} from '../../repo/media-info.ts';
import type { StreamInfo } from '../../media/info/index.ts';
import { printJson, type Cli } from '../context.ts';
import { formatBytes } from '../format-bytes.ts';
import { quotePath } from '../quote-path.ts';

export function register(program: Command, cli: Cli): void {
  const media = program
    .command('media')
    .description('Media tools: properties of media files (docs/media-info.md)');
  media
    .command('info')
    .description(
      'Show format, dimensions, duration, codecs, rates, layers and tags of a media file, ' +
        'from the working tree or stored (<rev>:<path>, :<path>) without checking it out',
    )
    .argument('<file>', 'a working-tree path, <rev>:<path> or :<path> (the index)')
    .option('--json', 'print one JSON object (field names in docs/media-info.md)')
    .action(async (spec: string, opts: { json?: boolean }) => {
      const options = { cwd: cli.cwd };
      const report = isStoredSpec(spec)
        ? await storedMediaInfo(await cli.openRepo(), spec, options)
        : await workingFileMediaInfo(spec, options);
      if (opts.json) printJson(cli, report);
      else cli.out(describe(report).join('\n'));
    });
}

function describe(info: MediaInfoReport): string[] {
  const lines: [string, string][] = [];
  const where =
    info.source === 'revision' ? `${info.revision}:` : info.source === 'index' ? ':' : '';
  lines.push(['file', `${where}${quotePath(info.path)}`]);
  lines.push(['format', `${info.format} (${info.mime})${info.brand ? `, ${info.brand}` : ''}`]);
  lines.push(['size', `${formatBytes(info.size)} (${info.size} bytes)`]);
  if (info.durationSeconds !== undefined) lines.push(['duration', `${info.durationSeconds} s`]);
  if (info.width !== undefined && info.height !== undefined)
    lines.push(['dimensions', `${info.width}x${info.height}`]);
  const image: string[] = [];
  if (info.colorSpace !== undefined) image.push(info.colorSpace);
  if (info.channels !== undefined) image.push(`${info.channels} channels`);
  if (info.bitDepth !== undefined) image.push(`${info.bitDepth}-bit`);
  if (info.hasAlpha) image.push('alpha');
  if (info.chromaSubsampling !== undefined) image.push(info.chromaSubsampling);
  if (info.progressive) image.push('progressive');
  if (info.interlaced) image.push('interlaced');
  if (info.compression !== undefined) image.push(info.compression);
  if (info.orientation !== undefined) image.push(`orientation ${info.orientation}`);
  if (image.length > 0 && info.streams === undefined) lines.push(['pixels', image.join(', ')]);
  for (const stream of info.streams ?? [])
    lines.push([`stream ${stream.index}`, describeStream(stream)]);
  if (info.layers !== undefined) {
    lines.push(['layers', String(info.layers.filter((l) => l.kind !== 'group-end').length)]);
    for (const layer of info.layers) {
      if (layer.kind === 'group-end') continue;
      const size = layer.width === undefined ? '' : `${layer.width}x${layer.height}`;
      const flags = [layer.kind === 'group' ? 'group' : `${size}+${layer.left}+${layer.top}`];
      if (layer.opacity !== 1) flags.push(`opacity ${layer.opacity}`);
      if (!layer.visible) flags.push('hidden');
      lines.push(['  layer', `${layer.name} (${flags.join(', ')})`]);
    }
  }
  if (info.scene !== undefined) {
    const s = info.scene;
    lines.push([
      'scene',
      `${s.nodes} nodes, ${s.meshes} meshes, ${s.materials} materials, ${s.animations} animations, ${s.scenes} scenes, ${s.textures} textures`,
    ]);
    if (s.generator !== undefined) lines.push(['generator', s.generator]);
  }
  for (const [key, value] of Object.entries(info.tags ?? {})) lines.push([`tag ${key}`, value]);
  if (!info.parsed) lines.push(['note', 'no parser for this format; only its type is known']);
  const width = Math.max(...lines.map(([label]) => label.length));
  return lines.map(([label, value]) => `${label.padEnd(width)}  ${value}`);
}

function describeStream(s: StreamInfo): string {
  const parts: string[] = [s.type, s.codec];
  if (s.width !== undefined && s.height !== undefined) parts.push(`${s.width}x${s.height}`);
  if (s.frameRate !== undefined) parts.push(`${s.frameRate} fps`);
  if (s.sampleRate !== undefined) parts.push(`${s.sampleRate} Hz`);
  if (s.channels !== undefined) parts.push(`${s.channels} ch`);
  if (s.bitsPerSample !== undefined) parts.push(`${s.bitsPerSample}-bit`);
  if (s.durationSeconds !== undefined) parts.push(`${s.durationSeconds} s`);
  if (s.language !== undefined) parts.push(s.language);
  return parts.join(', ');
}
