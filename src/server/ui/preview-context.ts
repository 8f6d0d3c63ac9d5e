/**
 * What every preview generator shares: the refusal it throws when a file
 * gets a placeholder instead of a preview, the clock of one generation, and
 * the pixel limit check.
 *
 * A generator signals "no preview, and here is why" by throwing
 * `PreviewRefused`; any other error (a storage error, a full disk) is not a
 * fact about the file and goes up to the caller.
 */
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

function timedOut(ms: number): PreviewRefused {
  return new PreviewRefused(`not decoded within ${formatSeconds(ms)}; the preview was abandoned`);
}

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** An image whose header declares more pixels than the limit: refused before decoding. */
function tooManyPixels(width: number, height: number, limit: number): PreviewRefused {
  const mp = (n: number) => `${Math.round(n / 1e5) / 10} megapixels`;
  return new PreviewRefused(
    `image is ${width} x ${height} pixels (${mp(width * height)}); ` +
      `previews are made for images up to ${mp(limit)}`,
  );
}

export function checkPixels(width: number, height: number, limit: number): void {
  if (width * height > limit) throw tooManyPixels(width, height, limit);
}
