import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import got, { type Got, RequestError } from 'got';
import { z } from 'zod';
import type { RateLimiter } from './rate-limiter.js';
import type { Secret } from './secret.js';
import { TASK_ID_PATTERN } from './task-id.js';
import { parseTaskResponse } from './task-response.js';
import type { TaskSnapshot } from './task-snapshot.js';
import { HttpStatusError, InvalidResponseError, UpstreamError } from './upstream-error.js';

/** The header DriveQuant reads the enterprise API key from. */
export const API_KEY_HEADER = 'x-dq-enterprise-api-key';

/** A real task answer is about 250 bytes; anything past this is not one. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** One HTTP attempt, for the request-duration histogram. */
export interface AttemptObservation {
  /** HTTP status as text, or `timeout` / `network` when no answer came. */
  code: string;
  /** Wall time of the attempt, in seconds. */
  durationSeconds: number;
}

/** Options of createDriveQuantClient. */
export interface DriveQuantClientOptions {
  /** Base URL without a trailing slash. */
  baseUrl: string;
  /** The enterprise API key. */
  apiKey: Secret;
  /** Time allowed for one attempt, in milliseconds. */
  timeoutMs: number;
  /** Extra attempts after a timeout, network error, 429 or 5xx. */
  retries: number;
  /** Upper bound of any wait between attempts, Retry-After included, in milliseconds. */
  maxRetryDelayMs: number;
  /** Open connections per host at most; matches the poll concurrency. */
  maxSockets: number;
  /** Largest accepted body, in bytes. */
  maxBodyBytes?: number;
  /** Called after every attempt; the client itself never logs. */
  onAttempt?: (observation: AttemptObservation) => void;
  /** Spaces out the starts of attempts (retries included), for `poll.max_requests_per_second`. */
  rateLimiter?: RateLimiter;
  /** Called before a retry, with the error that caused it and the wait in milliseconds. */
  onRetry?: (error: UpstreamError, delayMs: number) => void;
  /** Source of randomness for the backoff jitter, for tests. */
  random?: () => number;
}

/** What DriveQuant answers to a retry request. */
export interface RetryAnswer {
  /** Id of the task that will push the items again. */
  taskId: string;
  /** Number of items the task will push. */
  items: number;
}

/** A client of DriveQuant's enterprise task API. */
export interface DriveQuantClient {
  /** Reads one task; rejects with an UpstreamError. `signal` aborts it, retries included. */
  getTask(taskId: string, signal?: AbortSignal): Promise<TaskSnapshot>;
  /** Asks DriveQuant to push failed trips or crashes again; never retried. */
  retryFailed(kind: 'trips' | 'crashes'): Promise<RetryAnswer>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

const retryAnswerSchema = z.object({
  taskId: z.string().regex(TASK_ID_PATTERN),
  nbItems: z.number().int().nonnegative(),
});

/** The first wait between attempts; each retry doubles it, with full jitter. */
const BACKOFF_BASE_MS = 200;

/** Creates the client. Connections are kept alive and shared by every poll. */
export function createDriveQuantClient(options: DriveQuantClientOptions): DriveQuantClient {
  const random = options.random ?? Math.random;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: 64 };
  const agent = { http: new HttpAgent(agentOptions), https: new HttpsAgent(agentOptions) };

  // got's own retry is off: the loop below needs every attempt timed for the histogram,
  // Retry-After capped instead of refused, and one abort signal covering the waits too.
  const http: Got = got.extend({
    prefixUrl: options.baseUrl,
    headers: { [API_KEY_HEADER]: options.apiKey.reveal(), accept: 'application/json' },
    timeout: { request: options.timeoutMs },
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    responseType: 'text',
    agent,
  });

  async function attempt(path: string, method: 'GET' | 'POST', signal?: AbortSignal) {
    if (options.rateLimiter !== undefined) {
      try {
        await options.rateLimiter.acquire(signal);
      } catch (error) {
        throw classifyTransportError(error, signal);
      }
    }
    const started = performance.now();
    let tooLarge = false;
    let code = 'network';
    try {
      const request = http(path, { method, signal });
      request.on('downloadProgress', (progress) => {
        if (progress.transferred > maxBodyBytes || (progress.total ?? 0) > maxBodyBytes) {
          tooLarge = true;
          request.cancel();
        }
      });
      const response = await request;
      code = String(response.statusCode);

      return { statusCode: response.statusCode, body: response.body, headers: response.headers };
    } catch (error) {
      if (tooLarge) {
        code = '200';
        throw new InvalidResponseError(`the answer is larger than ${maxBodyBytes} bytes`, 200);
      }
      const upstream = classifyTransportError(error, signal);
      code = upstream.code === 'TIMEOUT' ? 'timeout' : 'network';
      throw upstream;
    } finally {
      options.onAttempt?.({ code, durationSeconds: (performance.now() - started) / 1000 });
    }
  }

  async function getTask(taskId: string, signal?: AbortSignal): Promise<TaskSnapshot> {
    const path = `v1/enterprise/task/${encodeURIComponent(taskId)}`;
    for (let attemptCount = 0; ; attemptCount++) {
      let error: UpstreamError;
      try {
        const response = await attempt(path, 'GET', signal);
        if (response.statusCode === 200) {
          return parseTaskResponse(response.body, taskId);
        }
        error = new HttpStatusError(response.statusCode, parseRetryAfter(response.headers));
      } catch (caught) {
        if (!(caught instanceof UpstreamError)) {
          throw caught;
        }
        error = caught;
      }

      if (!error.retryable || attemptCount >= options.retries || signal?.aborted) {
        throw error;
      }
      const delayMs = retryDelayMs(error, attemptCount, options.maxRetryDelayMs, random);
      options.onRetry?.(error, delayMs);
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        throw error;
      }
    }
  }

  async function retryFailed(kind: 'trips' | 'crashes'): Promise<RetryAnswer> {
    const response = await attempt(`v1/enterprise/push/${kind}/failed/retry`, 'POST');
    if (response.statusCode !== 200) {
      const error = new HttpStatusError(response.statusCode);
      const detail = describeErrorBody(response.body);
      throw new UpstreamError(
        error.code,
        detail ? `${error.message}: ${detail}` : error.message,
        response.statusCode,
      );
    }

    let json: unknown;
    try {
      json = JSON.parse(response.body);
    } catch {
      throw new InvalidResponseError('the answer is not JSON', 200);
    }
    const parsed = retryAnswerSchema.safeParse(json);
    if (!parsed.success) {
      throw new InvalidResponseError('the answer has no valid taskId and nbItems', 200);
    }

    return { taskId: parsed.data.taskId, items: parsed.data.nbItems };
  }

  return {
    getTask,
    retryFailed,
    close() {
      agent.http.destroy();
      agent.https.destroy();
    },
  };
}

/**
 * The wait before retry number `attemptCount + 1`: what a 429's Retry-After asks for, else
 * an exponential backoff with full jitter; both capped so a poll never outlives its cycle.
 */
export function retryDelayMs(
  error: UpstreamError,
  attemptCount: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  if (error instanceof HttpStatusError && error.retryAfterMs !== undefined) {
    return Math.min(error.retryAfterMs, maxDelayMs);
  }

  const ceilingMs = Math.min(BACKOFF_BASE_MS * 2 ** attemptCount, maxDelayMs);

  return Math.round(ceilingMs / 2 + (random() * ceilingMs) / 2);
}

/** Reads `Retry-After` as seconds or as an HTTP date, in milliseconds from now. */
export function parseRetryAfter(
  headers: Record<string, string | string[] | undefined>,
  nowMs = Date.now(),
): number | undefined {
  const value = headers['retry-after'];
  if (typeof value !== 'string' || value.trim() === '') {
    return undefined;
  }
  if (/^\d+$/.test(value.trim())) {
    return Number(value.trim()) * 1000;
  }

  // An HTTP date starts with the day's name; Date.parse would also read `-5` or `1.5`.
  const dateMs = /^[A-Za-z]{3}/.test(value.trim()) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(dateMs)) {
    return undefined;
  }

  return Math.max(0, dateMs - nowMs);
}

function classifyTransportError(error: unknown, signal?: AbortSignal): UpstreamError {
  if (signal?.aborted) {
    return new UpstreamError(
      'TIMEOUT',
      'the poll was aborted at the end of its cycle',
      undefined,
      error,
    );
  }
  if (error instanceof RequestError) {
    if (error.name === 'TimeoutError' || error.code === 'ETIMEDOUT') {
      return new UpstreamError('TIMEOUT', 'DriveQuant did not answer in time', undefined, error);
    }

    // The code (ECONNREFUSED, ECONNRESET, ENOTFOUND...) says enough; got's message may
    // carry more of the request than a log should.
    return new UpstreamError('NETWORK', `network error ${error.code}`, undefined, error);
  }

  return new UpstreamError('NETWORK', 'network error', undefined, error);
}

/** A short, printable reason from an error body such as `{"error": "..."}`. */
function describeErrorBody(body: string): string | undefined {
  try {
    const json = JSON.parse(body) as Record<string, unknown>;
    const text = json.error ?? json.message;
    if (typeof text === 'string') {
      return text.replace(/[^\x20-\x7e]/g, '').slice(0, 200);
    }
  } catch {
    // Not JSON: say nothing rather than echo an arbitrary page.
  }

  return undefined;
}
