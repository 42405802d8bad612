/** Spaces out the starts of requests so that at most a given number start per second. */
export interface RateLimiter {
  /**
   * Resolves when the caller may start a request, in call order. Rejects with the signal's
   * reason when `signal` aborts first; the caller then gives up its place in the queue.
   */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Changes the rate, as a config reload does; undefined lets every request through. */
  setRate(requestsPerSecond: number | undefined): void;
  /** Requests waiting for their turn. */
  readonly waiting: number;
}

/** Options of createRateLimiter. */
export interface RateLimiterOptions {
  /** Requests started per second at most; undefined means no limit. */
  requestsPerSecond: number | undefined;
  /** Clock, in milliseconds; monotonic by default. */
  now?: () => number;
}

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * A token bucket that holds one token: requests start evenly spaced, one every
 * `1000 / requestsPerSecond` milliseconds, rather than in bursts. Timers only ever fire
 * late, so the observed rate can fall below the limit but never rise above it.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const now = options.now ?? (() => performance.now());
  let spacingMs = spacingOf(options.requestsPerSecond);
  let nextStartMs = Number.NEGATIVE_INFINITY;
  const queue: Waiter[] = [];
  let timer: NodeJS.Timeout | undefined;

  function release(): void {
    timer = undefined;
    const waiter = queue.shift();
    if (waiter === undefined) {
      return;
    }

    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    // Spaced from when this start was due, not from when its timer fired, so that timer
    // lateness does not pile up; after a longer stall only one token has accrued.
    nextStartMs = Math.max(nextStartMs + spacingMs, now());
    waiter.resolve();
    schedule();
  }

  function schedule(): void {
    if (timer !== undefined || queue.length === 0) {
      return;
    }

    timer = setTimeout(release, Math.max(0, nextStartMs - now()));
  }

  return {
    acquire(signal) {
      if (signal?.aborted) {
        return Promise.reject(signal.reason);
      }
      const startMs = now();
      if (queue.length === 0 && startMs >= nextStartMs) {
        nextStartMs = startMs + spacingMs;
        return Promise.resolve();
      }

      return new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          resolve,
          reject,
          signal,
          onAbort: () => {
            const index = queue.indexOf(waiter);
            if (index >= 0) {
              queue.splice(index, 1);
            }
            reject(signal?.reason);
          },
        };
        signal?.addEventListener('abort', waiter.onAbort, { once: true });
        queue.push(waiter);
        schedule();
      });
    },
    setRate(requestsPerSecond) {
      spacingMs = spacingOf(requestsPerSecond);
      nextStartMs = Math.min(nextStartMs, now() + spacingMs);
      clearTimeout(timer);
      timer = undefined;
      schedule();
    },
    get waiting() {
      return queue.length;
    },
  };
}

function spacingOf(requestsPerSecond: number | undefined): number {
  if (requestsPerSecond === undefined) {
    return 0;
  }
  if (!(requestsPerSecond > 0 && Number.isFinite(requestsPerSecond))) {
    throw new RangeError(`requestsPerSecond: ${requestsPerSecond} is not a number above 0`);
  }

  return 1000 / requestsPerSecond;
}
