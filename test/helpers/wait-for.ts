import { setTimeout as sleep } from 'node:timers/promises';

/** Options of waitFor. */
export interface WaitForOptions {
  /** Give up after this long, in milliseconds. */
  timeoutMs?: number;
  /** Time between two checks, in milliseconds. */
  intervalMs?: number;
  /** What is being waited for, for the failure message. */
  what?: string;
}

/**
 * Checks `condition` until it returns a value other than false, null or undefined, and
 * returns that value. Throws after the timeout, with the last error the condition threw.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<Exclude<T, false>>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== false && value !== null && value !== undefined) {
        return value as NonNullable<Exclude<T, false>>;
      }
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}${detail}`,
      );
    }
    await sleep(intervalMs);
  }
}
