/**
 * The format table: every format MediaGit names, with its category, MIME
 * type, whether its payload is already compressed, the container structure
 * the chunker can follow, and the file extensions that name it.
 *
 * A format's id is its canonical extension ("mp4", "psd", "safetensors"), or a
 * short name when it has no extension of its own ("mpegts", "cfb", "txt").
 * Ids are stable: they appear in `--json` output and may be recorded later.
 */

export type MediaCategory =
  | 'video'
  | 'audio'
  | 'audio-compressed'
  | '3d'
  | 'design'
  | 'text'
  | 'ml'
  | 'creative'
  | 'usd'
  | 'image'
  | 'layered'
  | 'archive'
  | 'unknown';

/**
 * A container whose structure the chunker can follow to place cut points
 * (ARCHITECTURE.md §4). Only formats for which that is worth doing carry one:
 * WebP and HEIC are RIFF and ISO-BMFF files too, but they are small and one
 * compressed payload, so they have none.
 */
export type ContainerKind = 'mp4' | 'ebml' | 'riff' | 'aiff' | 'glb';

export interface FormatInfo {
  readonly category: MediaCategory;
  readonly mime: string;
  /** The payload is compressed (entropy-coded) already; recompressing it gains nothing. */
  readonly compressed: boolean;
  readonly extensions: readonly string[];
  readonly container?: ContainerKind;
  /** The format is text (UTF-8 or ASCII); text codecs suit it. */
  readonly text?: boolean;
  /**
   * Every valid file of the format starts with a signature that `detectFormat`
   * checks, so a file named like it whose bytes are text is not trusted.
   */
  readonly signed?: boolean;
}

type Extra = Pick<FormatInfo, 'container' | 'text' | 'signed'>;

const fmt = (
  category: MediaCategory,
  mime: string,
  compressed: boolean,
  extensions: readonly string[],
  extra: Extra = {},
): FormatInfo => ({ category, mime, compressed, extensions, ...extra });

const SIGNED = { signed: true } as const;
const TEXT = { text: true } as const;

export const FORMATS = {
  // ---- video (payloads are compressed video: H.264/HEVC/VP9/ProRes/REDCODE...) ----
  mp4: fmt('video', 'video/mp4', true, ['mp4'], { container: 'mp4', signed: true }),
  m4v: fmt('video', 'video/x-m4v', true, ['m4v'], { container: 'mp4', signed: true }),
  mov: fmt('video', 'video/quicktime', true, ['mov', 'qt'], { container: 'mp4', signed: true }),
  '3gp': fmt('video', 'video/3gpp', true, ['3gp'], { container: 'mp4', signed: true }),
  '3g2': fmt('video', 'video/3gpp2', true, ['3g2'], { container: 'mp4', signed: true }),
  mkv: fmt('video', 'video/x-matroska', true, ['mkv', 'mk3d'], { container: 'ebml', signed: true }),
  webm: fmt('video', 'video/webm', true, ['webm'], { container: 'ebml', signed: true }),
  avi: fmt('video', 'video/x-msvideo', true, ['avi'], { container: 'riff', signed: true }),
  mxf: fmt('video', 'application/mxf', true, ['mxf'], SIGNED),
  r3d: fmt('video', 'video/x-red-r3d', true, ['r3d']),
  braw: fmt('video', 'video/x-blackmagic-raw', true, ['braw']),
  m2ts: fmt('video', 'video/mp2t', true, ['m2ts', 'mts'], SIGNED),
  mpegts: fmt('video', 'video/mp2t', true, ['m2t']),
  mpg: fmt('video', 'video/mpeg', true, ['mpg', 'mpeg', 'm2v', 'vob'], SIGNED),
  wmv: fmt('video', 'video/x-ms-wmv', true, ['wmv', 'asf'], SIGNED),
  flv: fmt('video', 'video/x-flv', true, ['flv'], SIGNED),
  ogv: fmt('video', 'video/ogg', true, ['ogv'], SIGNED),
  h264: fmt('video', 'video/h264', true, ['h264', '264', 'h265', '265', 'hevc']),
  y4m: fmt('video', 'video/x-yuv4mpeg', false, ['y4m'], SIGNED),
  ari: fmt('video', 'image/x-arriraw', false, ['ari']),

  // ---- audio: PCM and other uncompressed sample data ----
  wav: fmt('audio', 'audio/wav', false, ['wav', 'wave', 'bwf'], {
    container: 'riff',
    signed: true,
  }),
  aiff: fmt('audio', 'audio/aiff', false, ['aiff', 'aif'], { container: 'aiff', signed: true }),
  aifc: fmt('audio', 'audio/aiff', false, ['aifc'], { container: 'aiff', signed: true }),
  caf: fmt('audio', 'audio/x-caf', false, ['caf'], SIGNED),
  mid: fmt('audio', 'audio/midi', false, ['mid', 'midi'], SIGNED),

  // ---- audio, compressed ----
  mp3: fmt('audio-compressed', 'audio/mpeg', true, ['mp3', 'mp2', 'mpa']),
  aac: fmt('audio-compressed', 'audio/aac', true, ['aac', 'adts']),
  m4a: fmt('audio-compressed', 'audio/mp4', true, ['m4a', 'm4b'], {
    container: 'mp4',
    signed: true,
  }),
  ogg: fmt('audio-compressed', 'audio/ogg', true, ['ogg', 'oga'], SIGNED),
  opus: fmt('audio-compressed', 'audio/opus', true, ['opus'], SIGNED),
  flac: fmt('audio-compressed', 'audio/flac', true, ['flac'], SIGNED),
  wma: fmt('audio-compressed', 'audio/x-ms-wma', true, ['wma'], SIGNED),
  mka: fmt('audio-compressed', 'audio/x-matroska', true, ['mka'], {
    container: 'ebml',
    signed: true,
  }),
  amr: fmt('audio-compressed', 'audio/amr', true, ['amr'], SIGNED),
  ac3: fmt('audio-compressed', 'audio/ac3', true, ['ac3', 'eac3']),

  // ---- 3D ----
  glb: fmt('3d', 'model/gltf-binary', false, ['glb', 'vrm'], { container: 'glb', signed: true }),
  gltf: fmt('3d', 'model/gltf+json', false, ['gltf'], TEXT),
  fbx: fmt('3d', 'application/vnd.autodesk.fbx', false, ['fbx']),
  obj: fmt('3d', 'model/obj', false, ['obj'], TEXT),
  mtl: fmt('3d', 'model/mtl', false, ['mtl'], TEXT),
  stl: fmt('3d', 'model/stl', false, ['stl']),
  ply: fmt('3d', 'model/x-ply', false, ['ply'], SIGNED),
  dae: fmt('3d', 'model/vnd.collada+xml', false, ['dae'], TEXT),
  x3d: fmt('3d', 'model/x3d+xml', false, ['x3d'], TEXT),
  '3ds': fmt('3d', 'application/x-3ds', false, ['3ds']),
  '3dm': fmt('3d', 'model/vnd.3dm', false, ['3dm'], SIGNED),
  vdb: fmt('3d', 'application/x-openvdb', false, ['vdb'], SIGNED),

  // ---- design ----
  pdf: fmt('design', 'application/pdf', false, ['pdf'], SIGNED),
  ai: fmt('design', 'application/illustrator', false, ['ai']),
  eps: fmt('design', 'application/postscript', false, ['eps', 'ps']),
  svg: fmt('design', 'image/svg+xml', false, ['svg'], TEXT),
  svgz: fmt('design', 'image/svg+xml', true, ['svgz'], SIGNED),
  fig: fmt('design', 'application/x-figma', true, ['fig'], SIGNED),
  sketch: fmt('design', 'application/x-sketch', true, ['sketch']),
  xd: fmt('design', 'application/vnd.adobe.xd', true, ['xd'], SIGNED),
  afdesign: fmt('design', 'application/x-affinity-designer', false, ['afdesign', 'afpub']),
  otf: fmt('design', 'font/otf', false, ['otf'], SIGNED),
  ttf: fmt('design', 'font/ttf', false, ['ttf']),
  woff: fmt('design', 'font/woff', true, ['woff'], SIGNED),
  woff2: fmt('design', 'font/woff2', true, ['woff2'], SIGNED),

  // ---- text and data ----
  txt: fmt('text', 'text/plain', false, ['txt', 'text', 'log', 'ini', 'cfg', 'conf'], TEXT),
  csv: fmt('text', 'text/csv', false, ['csv'], TEXT),
  tsv: fmt('text', 'text/tab-separated-values', false, ['tsv', 'tab'], TEXT),
  json: fmt('text', 'application/json', false, ['json'], TEXT),
  jsonl: fmt('text', 'application/jsonl', false, ['jsonl', 'ndjson'], TEXT),
  xml: fmt('text', 'application/xml', false, ['xml', 'xsd', 'xsl'], TEXT),
  yaml: fmt('text', 'application/yaml', false, ['yaml', 'yml'], TEXT),
  toml: fmt('text', 'application/toml', false, ['toml'], TEXT),
  md: fmt('text', 'text/markdown', false, ['md', 'markdown', 'rst'], TEXT),
  html: fmt('text', 'text/html', false, ['html', 'htm'], TEXT),
  css: fmt('text', 'text/css', false, ['css'], TEXT),
  py: fmt('text', 'text/x-python', false, ['py', 'pyi', 'pyw'], TEXT),
  rs: fmt('text', 'text/x-rust', false, ['rs'], TEXT),
  js: fmt('text', 'text/javascript', false, ['js', 'mjs', 'cjs', 'jsx'], TEXT),
  ts: fmt('text', 'text/x-typescript', false, ['ts', 'tsx', 'cts'], TEXT),
  c: fmt('text', 'text/x-c', false, ['c', 'h'], TEXT),
  cpp: fmt('text', 'text/x-c++', false, ['cpp', 'cc', 'cxx', 'hpp', 'hh'], TEXT),
  go: fmt('text', 'text/x-go', false, ['go'], TEXT),
  java: fmt('text', 'text/x-java', false, ['java', 'kt'], TEXT),
  sh: fmt('text', 'application/x-sh', false, ['sh', 'bash', 'zsh'], TEXT),
  sql: fmt('text', 'application/sql', false, ['sql'], TEXT),
  glsl: fmt('text', 'text/x-glsl', false, ['glsl', 'vert', 'frag', 'hlsl', 'osl'], TEXT),
  srt: fmt('text', 'application/x-subrip', false, ['srt'], TEXT),
  vtt: fmt('text', 'text/vtt', false, ['vtt'], TEXT),
  edl: fmt('text', 'text/x-edl', false, ['edl'], TEXT),
  ipynb: fmt('text', 'application/x-ipynb+json', false, ['ipynb'], TEXT),
  parquet: fmt('text', 'application/vnd.apache.parquet', true, ['parquet'], SIGNED),
  arrow: fmt('text', 'application/vnd.apache.arrow.file', false, ['arrow', 'feather'], SIGNED),
  avro: fmt('text', 'application/avro', false, ['avro'], SIGNED),
  orc: fmt('text', 'application/x-orc', true, ['orc'], SIGNED),

  // ---- machine learning (tensors: float data, not compressed) ----
  pt: fmt('ml', 'application/x-pytorch', false, ['pt']),
  pth: fmt('ml', 'application/x-pytorch', false, ['pth']),
  ckpt: fmt('ml', 'application/x-pytorch', false, ['ckpt']),
  safetensors: fmt('ml', 'application/x-safetensors', false, ['safetensors'], SIGNED),
  onnx: fmt('ml', 'application/x-onnx', false, ['onnx']),
  gguf: fmt('ml', 'application/x-gguf', false, ['gguf'], SIGNED),
  h5: fmt('ml', 'application/x-hdf5', false, ['h5', 'hdf5'], SIGNED),
  keras: fmt('ml', 'application/x-keras', false, ['keras']),
  tflite: fmt('ml', 'application/x-tflite', false, ['tflite'], SIGNED),
  npy: fmt('ml', 'application/x-npy', false, ['npy'], SIGNED),
  npz: fmt('ml', 'application/x-npz', false, ['npz']),
  pkl: fmt('ml', 'application/x-python-pickle', false, ['pkl', 'pickle', 'joblib']),
  pb: fmt('ml', 'application/x-protobuf', false, ['pb']),
  mlmodel: fmt('ml', 'application/x-coreml', false, ['mlmodel']),

  // ---- creative application projects ----
  indd: fmt('creative', 'application/x-indesign', false, ['indd', 'indt'], SIGNED),
  idml: fmt('creative', 'application/vnd.adobe.indesign-idml-package', true, ['idml']),
  aep: fmt('creative', 'application/vnd.adobe.aftereffects.project', false, ['aep', 'aet'], SIGNED),
  aepx: fmt('creative', 'application/xml', false, ['aepx'], TEXT),
  prproj: fmt('creative', 'application/x-premiere-project', true, ['prproj'], SIGNED),
  drp: fmt('creative', 'application/x-davinci-resolve-project', true, ['drp']),
  nk: fmt('creative', 'text/x-nuke', false, ['nk', 'nknc'], TEXT),
  blend: fmt('creative', 'application/x-blender', false, ['blend'], SIGNED),
  c4d: fmt('creative', 'application/x-cinema4d', false, ['c4d']),
  ma: fmt('creative', 'text/x-maya-ascii', false, ['ma'], TEXT),
  mb: fmt('creative', 'application/x-maya-binary', false, ['mb'], SIGNED),
  max: fmt('creative', 'application/x-3dsmax', false, ['max']),
  hip: fmt('creative', 'application/x-houdini', false, ['hip', 'hipnc', 'hiplc']),
  zpr: fmt('creative', 'application/x-zbrush', false, ['zpr', 'ztl']),
  spp: fmt('creative', 'application/x-substance-painter', false, ['spp']),
  sbs: fmt('creative', 'application/xml', false, ['sbs'], TEXT),
  sbsar: fmt('creative', 'application/x-substance-archive', true, ['sbsar']),
  fcpxml: fmt('creative', 'application/xml', false, ['fcpxml'], TEXT),
  otio: fmt('creative', 'application/json', false, ['otio'], TEXT),
  kdenlive: fmt('creative', 'application/xml', false, ['kdenlive'], TEXT),
  aaf: fmt('creative', 'application/x-aaf', false, ['aaf']),
  rpp: fmt('creative', 'text/x-reaper-project', false, ['rpp'], TEXT),
  als: fmt('creative', 'application/x-ableton-live', true, ['als'], SIGNED),
  flp: fmt('creative', 'application/x-fl-studio', false, ['flp'], SIGNED),
  ptx: fmt('creative', 'application/x-pro-tools', false, ['ptx']),

  // ---- USD and Alembic ----
  usd: fmt('usd', 'model/vnd.usd', false, ['usd']),
  usda: fmt('usd', 'model/vnd.usda', false, ['usda'], { text: true, signed: true }),
  usdc: fmt('usd', 'model/vnd.usd', false, ['usdc'], SIGNED),
  usdz: fmt('usd', 'model/vnd.usdz+zip', true, ['usdz'], SIGNED),
  abc: fmt('usd', 'application/x-alembic', false, ['abc'], SIGNED),

  // ---- images ----
  jpg: fmt('image', 'image/jpeg', true, ['jpg', 'jpeg', 'jpe', 'jfif'], SIGNED),
  png: fmt('image', 'image/png', true, ['png', 'apng'], SIGNED),
  gif: fmt('image', 'image/gif', true, ['gif'], SIGNED),
  webp: fmt('image', 'image/webp', true, ['webp'], SIGNED),
  heic: fmt('image', 'image/heic', true, ['heic', 'heif', 'hif'], SIGNED),
  avif: fmt('image', 'image/avif', true, ['avif'], SIGNED),
  jxl: fmt('image', 'image/jxl', true, ['jxl'], SIGNED),
  jp2: fmt('image', 'image/jp2', true, ['jp2', 'j2k', 'jpx'], SIGNED),
  exr: fmt('image', 'image/x-exr', false, ['exr'], SIGNED),
  tif: fmt('image', 'image/tiff', false, ['tif', 'tiff'], SIGNED),
  bmp: fmt('image', 'image/bmp', false, ['bmp', 'dib'], SIGNED),
  tga: fmt('image', 'image/x-tga', false, ['tga']),
  dpx: fmt('image', 'image/x-dpx', false, ['dpx'], SIGNED),
  cin: fmt('image', 'image/x-cineon', false, ['cin'], SIGNED),
  hdr: fmt('image', 'image/vnd.radiance', false, ['hdr'], SIGNED),
  ico: fmt('image', 'image/x-icon', false, ['ico']),
  dng: fmt('image', 'image/x-adobe-dng', false, ['dng'], SIGNED),
  cr2: fmt('image', 'image/x-canon-cr2', false, ['cr2'], SIGNED),
  cr3: fmt('image', 'image/x-canon-cr3', false, ['cr3'], SIGNED),
  nef: fmt('image', 'image/x-nikon-nef', false, ['nef', 'nrw'], SIGNED),
  arw: fmt('image', 'image/x-sony-arw', false, ['arw'], SIGNED),
  orf: fmt('image', 'image/x-olympus-orf', false, ['orf'], SIGNED),
  rw2: fmt('image', 'image/x-panasonic-rw2', false, ['rw2'], SIGNED),
  raf: fmt('image', 'image/x-fuji-raf', false, ['raf'], SIGNED),

  // ---- layered image documents ----
  psd: fmt('layered', 'image/vnd.adobe.photoshop', false, ['psd'], SIGNED),
  psb: fmt('layered', 'image/vnd.adobe.photoshop', false, ['psb'], SIGNED),
  xcf: fmt('layered', 'image/x-xcf', false, ['xcf'], SIGNED),
  kra: fmt('layered', 'application/x-krita', true, ['kra'], SIGNED),
  ora: fmt('layered', 'image/openraster', true, ['ora'], SIGNED),
  clip: fmt('layered', 'application/x-clip-studio', false, ['clip'], SIGNED),
  procreate: fmt('layered', 'application/x-procreate', true, ['procreate'], SIGNED),
  afphoto: fmt('layered', 'application/x-affinity-photo', false, ['afphoto']),

  // ---- archives ----
  zip: fmt('archive', 'application/zip', true, ['zip'], SIGNED),
  '7z': fmt('archive', 'application/x-7z-compressed', true, ['7z'], SIGNED),
  rar: fmt('archive', 'application/vnd.rar', true, ['rar'], SIGNED),
  gz: fmt('archive', 'application/gzip', true, ['gz', 'gzip'], SIGNED),
  tgz: fmt('archive', 'application/gzip', true, ['tgz'], SIGNED),
  tar: fmt('archive', 'application/x-tar', false, ['tar']),
  bz2: fmt('archive', 'application/x-bzip2', true, ['bz2', 'tbz2'], SIGNED),
  xz: fmt('archive', 'application/x-xz', true, ['xz', 'txz'], SIGNED),
  zst: fmt('archive', 'application/zstd', true, ['zst', 'tzst'], SIGNED),
  lz4: fmt('archive', 'application/x-lz4', true, ['lz4'], SIGNED),
  iso: fmt('archive', 'application/x-iso9660-image', false, ['iso']),
  dmg: fmt('archive', 'application/x-apple-diskimage', true, ['dmg']),
  jar: fmt('archive', 'application/java-archive', true, ['jar'], SIGNED),
  /** OLE compound file (MS-CFB), the outer layer of AAF, 3ds Max and old Office files. */
  cfb: fmt('unknown', 'application/x-cfb', false, []),
} as const satisfies Record<string, FormatInfo>;

export type FormatId = keyof typeof FORMATS;

export function formatInfo(id: FormatId): FormatInfo {
  return FORMATS[id];
}

/** Lower-case extension (without the dot) to format id. */
export const EXTENSIONS: ReadonlyMap<string, FormatId> = (() => {
  const map = new Map<string, FormatId>();
  for (const [id, info] of Object.entries(FORMATS) as [FormatId, FormatInfo][]) {
    for (const ext of info.extensions) {
      if (map.has(ext)) throw new Error(`extension .${ext} is claimed twice`);
      map.set(ext, id);
    }
  }
  return map;
})();
