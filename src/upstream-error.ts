/** Stable machine codes of everything that can go wrong when asking DriveQuant. */
export type UpstreamErrorCode =
  | 'UNAUTHORIZED'
  | 'NOT_FOUND'
  | 'RATE_LIMITED'
  | 'SERVER_ERROR'
  | 'HTTP_ERROR'
  | 'TIMEOUT'
  | 'NETWORK'
  | 'INVALID_RESPONSE';

/** The `reason` label of `drivequant_task_poll_errors_total` for each code. */
export const ERROR_REASONS: Record<UpstreamErrorCode, string> = {
  UNAUTHORIZED: 'unauthorized',
  NOT_FOUND: 'not_found',
  RATE_LIMITED: 'rate_limited',
  SERVER_ERROR: 'server_error',
  HTTP_ERROR: 'http_error',
  TIMEOUT: 'timeout',
  NETWORK: 'network',
  INVALID_RESPONSE: 'invalid_response',
};

/**
 * A failed request to DriveQuant. The message is short and safe to log: it never holds the
 * request's headers. The original error does (got keeps the request options on it), and
 * util.inspect prints a cause even when it is not enumerable, so `cause` is only a summary
 * of it: name, code, message and stack.
 */
export class UpstreamError extends Error {
  /** Stable machine code. */
  readonly code: UpstreamErrorCode;
  /** HTTP status of the answer, when there was one. */
  readonly statusCode: number | undefined;

  constructor(code: UpstreamErrorCode, message: string, statusCode?: number, cause?: unknown) {
    super(message);
    this.name = 'UpstreamError';
    this.code = code;
    this.statusCode = statusCode;
    Object.defineProperty(this, 'cause', { value: summarizeCause(cause), enumerable: false });
  }

  /** The `reason` label value for this error. */
  get reason(): string {
    return ERROR_REASONS[this.code];
  }

  /** Whether another attempt could succeed: timeouts, network errors, 429 and 5xx. */
  get retryable(): boolean {
    return ['TIMEOUT', 'NETWORK', 'RATE_LIMITED', 'SERVER_ERROR'].includes(this.code);
  }
}

/** An answer that arrived but is not a task as DriveQuant documents it. */
export class InvalidResponseError extends UpstreamError {
  constructor(message: string, statusCode?: number) {
    super('INVALID_RESPONSE', message, statusCode);
    this.name = 'InvalidResponseError';
  }
}

/** An HTTP status that is not 200, with the delay DriveQuant asked for on a 429. */
export class HttpStatusError extends UpstreamError {
  /** `Retry-After` in milliseconds, when the answer had a usable one. */
  readonly retryAfterMs: number | undefined;

  constructor(statusCode: number, retryAfterMs?: number) {
    super(codeForStatus(statusCode), `DriveQuant answered HTTP ${statusCode}`, statusCode);
    this.name = 'HttpStatusError';
    this.retryAfterMs = retryAfterMs;
  }
}

function summarizeCause(cause: unknown): unknown {
  if (!(cause instanceof Error)) {
    return cause;
  }

  const summary = new Error(cause.message);
  summary.name = cause.name;
  summary.stack = cause.stack;
  const code = (cause as { code?: unknown }).code;
  if (code !== undefined) {
    Object.defineProperty(summary, 'code', { value: code, enumerable: true });
  }

  return summary;
}

function codeForStatus(statusCode: number): UpstreamErrorCode {
  if (statusCode === 401 || statusCode === 403) {
    return 'UNAUTHORIZED';
  }
  if (statusCode === 404) {
    return 'NOT_FOUND';
  }
  if (statusCode === 429) {
    return 'RATE_LIMITED';
  }
  if (statusCode >= 500) {
    return 'SERVER_ERROR';
  }

  return 'HTTP_ERROR';
}
