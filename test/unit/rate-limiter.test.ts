import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRateLimiter } from '../../src/rate-limiter.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** Acquires `count` turns at once and records when each was granted, in fake milliseconds. */
function acquireAll(limiter: ReturnType<typeof createRateLimiter>, count: number): number[] {
  const startedAt: number[] = [];
  for (let index = 0; index < count; index += 1) {
    void limiter.acquire().then(() => startedAt.push(Date.now()));
  }

  return startedAt;
}

describe('createRateLimiter', () => {
  it('spaces 10 requests at 5 per second 200 ms apart, the first at once', async () => {
    const limiter = createRateLimiter({ requestsPerSecond: 5, now: Date.now });
    const origin = Date.now();

    const startedAt = acquireAll(limiter, 10);
    await vi.advanceTimersByTimeAsync(5000);

    expect(startedAt.map((ms) => ms - origin)).toEqual([
      0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800,
    ]);
  });

  it('never starts more than the rate in any one-second window', async () => {
    const limiter = createRateLimiter({ requestsPerSecond: 20, now: Date.now });

    const startedAt = acquireAll(limiter, 100);
    await vi.advanceTimersByTimeAsync(10_000);

    const busiest = Math.max(
      ...startedAt.map(
        (first) => startedAt.filter((ms) => ms >= first && ms < first + 1000).length,
      ),
    );
    expect(startedAt).toHaveLength(100);
    expect(busiest).toBeLessThanOrEqual(20);
  });

  it('lets every request through at once without a rate', async () => {
    const limiter = createRateLimiter({ requestsPerSecond: undefined, now: Date.now });
    const origin = Date.now();

    const startedAt = acquireAll(limiter, 50);
    await vi.advanceTimersByTimeAsync(0);

    expect(startedAt).toHaveLength(50);
    expect(new Set(startedAt)).toEqual(new Set([origin]));
  });

  it('gives up the place of an aborted waiter, rejecting with the abort reason', async () => {
    const limiter = createRateLimiter({ requestsPerSecond: 10, now: Date.now });
    const controller = new AbortController();
    await limiter.acquire();

    const aborted = limiter.acquire(controller.signal).catch((error: Error) => error.message);
    const next = limiter.acquire().then(() => Date.now());
    controller.abort(new Error('cycle over'));
    const origin = Date.now();
    await vi.advanceTimersByTimeAsync(100);

    expect(await aborted).toBe('cycle over');
    expect((await next) - origin).toBe(100);
    expect(limiter.waiting).toBe(0);
  });

  it('refuses at once when the signal has already aborted', async () => {
    const limiter = createRateLimiter({ requestsPerSecond: 10, now: Date.now });

    const acquired = limiter.acquire(AbortSignal.abort(new Error('already over')));

    await expect(acquired).rejects.toThrow('already over');
  });

  it('applies a new rate to the requests already waiting', async () => {
    const limiter = createRateLimiter({ requestsPerSecond: 1, now: Date.now });
    const origin = Date.now();
    const startedAt = acquireAll(limiter, 4);

    limiter.setRate(100);
    await vi.advanceTimersByTimeAsync(100);

    expect(startedAt.map((ms) => ms - origin)).toEqual([0, 10, 20, 30]);
  });

  it('refuses a rate that is not a number above 0', () => {
    expect(() => createRateLimiter({ requestsPerSecond: 0 })).toThrow(
      'requestsPerSecond: 0 is not a number above 0',
    );
  });
});
