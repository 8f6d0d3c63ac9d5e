/**
 * What `media info` reports. Field names are part of the `--json` contract
 * (docs/media-info.md): a field is present only when the format carries it,
 * and its meaning never changes.
 */

/** One audio, video or other stream of a container (MP4/MOV, MKV/WebM, WAV, FLAC). */
export interface StreamInfo {
  /** Position among the container's tracks, from 0, in file order. */
  readonly index: number;
  readonly type: 'video' | 'audio' | 'subtitle' | 'data';
  /** Codec, named as ffprobe's `codec_name` ("h264", "aac", "pcm_s16le", "vp9", "opus"...). */
  readonly codec: string;
  /** The container's own codec label: MP4 sample entry ("avc1"), Matroska CodecID ("V_VP9"). */
  readonly codecTag?: string;
  readonly width?: number;
  readonly height?: number;
  /** Average frames per second: frames / track duration (MP4), 1e9 / DefaultDuration (MKV). */
  readonly frameRate?: number;
  readonly frameCount?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
  readonly bitsPerSample?: number;
  readonly durationSeconds?: number;
  readonly language?: string;
}

/** A stream while its parser fills it in. */
export type MutableStream = { -readonly [K in keyof StreamInfo]: StreamInfo[K] };

export interface LayerInfo {
  readonly name: string;
  /** `group`: a layer group (folder), listed after its content; `group-end`: PSD's closing record. */
  readonly kind: 'layer' | 'group' | 'group-end';
  readonly top: number;
  readonly left: number;
  /** Absent where the index does not say (KRA keeps it in the tile data). */
  readonly width?: number;
  readonly height?: number;
  readonly opacity: number;
  readonly visible: boolean;
}

export interface SceneInfo {
  readonly nodes: number;
  readonly meshes: number;
  readonly materials: number;
  readonly animations: number;
  readonly scenes: number;
  readonly textures: number;
  readonly generator?: string;
  readonly version?: string;
}

/** The properties a parser read; `media info` adds the file's identity around them. */
export interface MediaProperties {
  /** Container or image format detail, e.g. the MP4 major brand or the Matroska DocType. */
  brand?: string;
  durationSeconds?: number;
  width?: number;
  height?: number;
  /** Bits per channel sample (images) or per audio sample (WAV, FLAC). */
  bitDepth?: number;
  /** Image channels (colour components plus alpha). */
  channels?: number;
  /** `rgb`, `gray`, `cmyk`, `lab`, `palette`, `ycbcr`, `multichannel`, `bitmap`, `duotone`, `indexed`. */
  colorSpace?: string;
  hasAlpha?: boolean;
  /** EXIF/TIFF orientation, 1-8. */
  orientation?: number;
  /** JPEG: "4:2:0", "4:2:2", "4:4:4", ... */
  chromaSubsampling?: string;
  progressive?: boolean;
  interlaced?: boolean;
  /** Image compression (`lossy`/`lossless` for WebP, the TIFF scheme name). */
  compression?: string;
  streams?: StreamInfo[];
  layers?: LayerInfo[];
  scene?: SceneInfo;
  /** Metadata tags, keys lower-cased (MP4 ilst, Matroska Tags, Vorbis comments, RIFF INFO). */
  tags?: Record<string, string>;
}
