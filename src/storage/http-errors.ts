/** What the cloud backends share about failed HTTP requests. */

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'REQUEST_SEND_ERROR',
]);

/** A dropped, refused or timed-out connection (at any depth of `cause`). */
export function isTransientNetworkError(error: unknown): boolean {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    if (name === 'TimeoutError') return true;
    if (
      typeof message === 'string' &&
      /socket hang up|aborted|timed? ?out|premature close/i.test(message)
    ) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** One line saying what went wrong, without the SDKs' multi-line dumps. */
export function describeCause(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // SDKs prefix some messages with their package's name ('@smithy/node-http-handler - ').
  const line = message
    .split('\n')[0]!
    .replace(/^@[\w.-]+\/[\w.-]+ - /, '')
    .trim();
  const code = (error as { code?: unknown })?.code;
  const text = line === '' ? 'request failed' : line;
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}
