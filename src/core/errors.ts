/**
 * Errors are values with a code, the object they concern, a cause, and whether retrying can help.
 * The layer that knows the context (a path, a pack ID) adds it; front ends map codes to exit codes.
 */
export type ErrorCode =
  | 'WRONG_PASSWORD'
  | 'REPO_NOT_FOUND'
  | 'REPO_EXISTS'
  | 'REPO_LOCKED'
  | 'CORRUPT'
  | 'NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'UNSUPPORTED'
  | 'BACKEND'
  | 'IO'
  | 'NO_SPACE'
  | 'PERMISSION'
  | 'UNSAFE_PATH'
  | 'CANCELLED'
  | 'EMPTY_SNAPSHOT'
  | 'INTERNAL';

export interface ErrorDetails {
  /** The object the error concerns: a file path, "pack <id>", "snapshot <id>", ... */
  object?: string;
  cause?: unknown;
  /** True when repeating the same operation may succeed (network blips, throttling). */
  retryable?: boolean;
}

export class CairnError extends Error {
  readonly code: ErrorCode;
  readonly object?: string;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'CairnError';
    this.code = code;
    this.object = details.object;
    this.retryable = details.retryable ?? false;
  }
}

export function isCairnError(e: unknown, code?: ErrorCode): e is CairnError {
  return e instanceof CairnError && (code === undefined || e.code === code);
}

/** Node system error codes (ENOENT, ENOSPC, ...) if the value is one. */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}

/** Wraps an fs error into a CairnError that names the path and keeps the cause. */
export function fsError(e: unknown, path: string, what: string): CairnError {
  if (e instanceof CairnError) return e;
  const code = errnoCode(e);
  const msg = e instanceof Error ? e.message : String(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new CairnError('NO_SPACE', `${what} ${path}: no space left on device`, { object: path, cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new CairnError('PERMISSION', `${what} ${path}: permission denied`, { object: path, cause: e });
  }
  if (code === 'ENOENT') {
    return new CairnError('NOT_FOUND', `${what} ${path}: no such file or directory`, { object: path, cause: e });
  }
  return new CairnError('IO', `${what} ${path}: ${msg}`, { object: path, cause: e });
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
