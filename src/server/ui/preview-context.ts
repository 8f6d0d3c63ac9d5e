/**
 * What every preview generator shares: the limits it runs under, the refusal
 * it throws when a file gets a placeholder instead of a preview, and the
 * clock of one generation.
 *
 * A generator signals "no preview, and here is why" by throwing
 * `PreviewRefused`; any other error (a storage error, a full disk) is not a
 * fact about the file and goes up to the caller.
 */
import { MediaGitError } from '../../errors.ts';

export interface PreviewLimits {
  readonly maxInputPixels: number;
  readonly maxSourceBytes: number;
  readonly timeoutMs: number;
  /** The ffmpeg executable, or false when it must not be run. */
  readonly ffmpeg: string | false;
}

/**
 * No preview for this file, with a one-line reason for the page. `lasting`:
 * the reason is a fact about the content under the current limits (a bomb, a
 * corrupt file), so the placeholder is cached; otherwise (ffmpeg missing, a
 * kind that does not apply) it is decided again on the next request.
 */
export class PreviewRefused extends Error {
  readonly reason: string;
  readonly lasting: boolean;

  constructor(reason: string, lasting = true) {
    super(reason);
    this.name = 'PreviewRefused';
    this.reason = reason;
    this.lasting = lasting;
  }
}

/** The refusal an error stands for, or undefined when the error is not about the file. */
export function refusalOf(error: unknown): PreviewRefused | undefined {
  if (error instanceof PreviewRefused) return error;
  // Header parsers (src/media/info) report a file whose structure does not parse this way.
  if (error instanceof MediaGitError && error.code === 'MEDIA_CORRUPT')
    return new PreviewRefused(error.message);
  return undefined;
}

/** A one-line reason from a decoder's message (sharp and ffmpeg print several lines, paths). */
export function oneLine(message: string, replace?: { path: string; name: string }): string {
  let text = message;
  if (replace) text = text.split(replace.path).join(replace.name);
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  const line = lines.at(-1) ?? 'unknown error';
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/** The clock of one decoding step: JavaScript decoders call `check()` between blocks. */
export class Deadline {
  readonly at: number;
  readonly #ms: number;

  constructor(ms: number) {
    this.#ms = ms;
    this.at = Date.now() + ms;
  }

  check(): void {
    if (Date.now() > this.at) throw timedOut(this.#ms);
  }
}

export function timedOut(ms: number): PreviewRefused {
  return new PreviewRefused(`not decoded within ${formatSeconds(ms)}; the preview was abandoned`);
}

export function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** Bytes in binary units with one decimal where it matters: "5.6 GiB", "2 GiB", "900 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${shown} ${units[unit]}`;
}

export function tooLarge(size: number, limit: number): PreviewRefused {
  return new PreviewRefused(
    `file is ${formatBytes(size)}; previews are made for files up to ${formatBytes(limit)}`,
    false,
  );
}

/** An image whose header declares more pixels than the limit: refused before decoding. */
export function tooManyPixels(width: number, height: number, limit: number): PreviewRefused {
  const mp = (n: number) => `${Math.round(n / 1e5) / 10} megapixels`;
  return new PreviewRefused(
    `image is ${width} x ${height} pixels (${mp(width * height)}); ` +
      `previews are made for images up to ${mp(limit)}`,
  );
}

export function checkPixels(width: number, height: number, limit: number): void {
  if (width * height > limit) throw tooManyPixels(width, height, limit);
}
