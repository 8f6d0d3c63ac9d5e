/**
 * The one error type every MediaGit layer throws.
 *
 * `code` is stable and machine-readable; `kind` tells the CLI boundary how to
 * report it (user errors print one line, internal errors print a stack and ask
 * for a report); `data` carries the facts a caller needs, one field per fact.
 */
export type ErrorKind = 'user' | 'usage' | 'config' | 'corrupt' | 'conflict' | 'internal';

export class MediaGitError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    options: { kind?: ErrorKind; data?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MediaGitError';
    this.code = code;
    this.kind = options.kind ?? 'user';
    this.data = options.data ?? {};
  }
}

/** A stored object whose bytes do not hash to its name, or cannot be decoded. */
export function corruptObject(id: string, reason: string, cause?: unknown): MediaGitError {
  return new MediaGitError('OBJECT_CORRUPT', `object ${id} is corrupt: ${reason}`, {
    kind: 'corrupt',
    data: { id, reason },
    cause,
  });
}

export function missingObject(id: string): MediaGitError {
  return new MediaGitError('OBJECT_MISSING', `object ${id} is missing from the object database`, {
    kind: 'corrupt',
    data: { id },
  });
}

export function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error;
}

export function hasErrnoCode(error: unknown, code: string): boolean {
  return isErrnoException(error) && error.code === code;
}
