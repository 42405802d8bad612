import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { DriveQuantClient } from './drivequant-client.js';
import type { TaskStore } from './task-state.js';
import { UpstreamError } from './upstream-error.js';

/** Settings of the poller that a config reload may change. */
export interface PollSettings {
  /** Time between the starts of two cycles, in milliseconds. */
  intervalMs: number;
  /** Requests in flight at most. */
  concurrency: number;
  /** How long finished tasks stay exported, in milliseconds. */
  terminalRetentionMs: number;
}

/** What one poll cycle did. */
export interface CycleResult {
  /** When the cycle started, in Unix milliseconds. */
  startedMs: number;
  /** Wall time of the cycle, in milliseconds. */
  durationMs: number;
  /** Tasks polled successfully. */
  succeeded: number;
  /** Tasks whose poll failed. */
  failed: number;
  /** Tasks not reached before the cycle's deadline. */
  deferred: number;
  /** Whether DriveQuant was reached and accepted the key; undefined when nothing was asked. */
  up: boolean | undefined;
}

/** Options of createPoller. */
export interface PollerOptions {
  store: TaskStore;
  client: DriveQuantClient;
  settings: PollSettings;
  logger: Logger;
  /** Called after every cycle, for metrics. */
  onCycle?: (result: CycleResult) => void;
  /** Called for each cycle start that had to be skipped because the previous cycle overran. */
  onSkippedCycles?: (count: number) => void;
  /** Clock, in Unix milliseconds. */
  now?: () => number;
}

/** Runs poll cycles, one at a time, on a fixed interval. */
export interface Poller {
  /** Starts the first cycle now and schedules the next ones. */
  start(): void;
  /** Runs one cycle now; resolves when it is over. Never runs two at once. */
  runCycle(): Promise<CycleResult>;
  /** Stops scheduling, waits up to `graceMs` for the running cycle, then aborts it. */
  stop(graceMs: number): Promise<void>;
  /** Swaps client and settings for the next cycle; a shorter interval brings that cycle forward. */
  reconfigure(client: DriveQuantClient, settings: PollSettings): void;
  /** Whether at least one cycle has finished. */
  readonly ready: boolean;
}

/** The share of the interval a cycle may use before its unfinished polls are aborted. */
const CYCLE_DEADLINE_SHARE = 0.9;

/** Creates a poller; nothing happens until start() or runCycle(). */
export function createPoller(options: PollerOptions): Poller {
  const { store, logger } = options;
  const now = options.now ?? Date.now;
  let client = options.client;
  let settings = options.settings;
  let running: Promise<CycleResult> | undefined;
  let abortCycle: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  // When the pending timer starts the next cycle, in Unix milliseconds; undefined once it fired.
  let nextCycleAtMs: number | undefined;
  let stopped = false;
  let ready = false;

  async function pollAll(): Promise<CycleResult> {
    const startedMs = now();
    const dropped = store.dropExpired(settings.terminalRetentionMs);
    if (dropped.length > 0) {
      logger.info({ count: dropped.length }, 'dropped finished tasks after their retention');
    }

    const due = store.dueForPoll();
    const controller = new AbortController();
    // Every poll in flight, and every one waiting for the rate limiter, listens to this one
    // signal; Node's default of 10 listeners would warn at any concurrency above that.
    setMaxListeners(Math.max(10, settings.concurrency * 2), controller.signal);
    abortCycle = controller;
    const deadline = setTimeout(
      () => controller.abort(),
      settings.intervalMs * CYCLE_DEADLINE_SHARE,
    );
    const limit = pLimit(settings.concurrency);
    const cycleClient = client;
    let succeeded = 0;
    let failed = 0;
    let deferred = 0;
    let answered = false;
    let unauthorized = false;

    await Promise.all(
      due.map((record) =>
        limit(async () => {
          if (controller.signal.aborted) {
            deferred += 1;
            return;
          }
          // A child logger costs more than the rest of a good poll's bookkeeping: make one
          // only when there is something to log.
          const taskLogger = () => logger.child({ taskId: record.taskId });
          try {
            const snapshot = await cycleClient.getTask(record.taskId, controller.signal);
            answered = true;
            if (record.lastError !== undefined) {
              taskLogger().info({ status: snapshot.status }, 'task poll recovered');
            }
            store.recordSuccess(record.taskId, snapshot);
            if (logger.isLevelEnabled('debug')) {
              taskLogger().debug(
                { status: snapshot.status, remaining: snapshot.remainingItems },
                'polled task',
              );
            }
            succeeded += 1;
          } catch (error) {
            // A poll cut short by shutdown says nothing about the task: not an error.
            if (stopped && controller.signal.aborted) {
              deferred += 1;
              return;
            }
            const upstream =
              error instanceof UpstreamError
                ? error
                : new UpstreamError('INVALID_RESPONSE', 'unexpected error', undefined, error);
            answered ||= upstream.statusCode !== undefined;
            unauthorized ||= upstream.code === 'UNAUTHORIZED';
            const failureLogger = taskLogger();
            logFailure(failureLogger, record.lastError?.reason, upstream);
            store.recordFailure(record.taskId, upstream.reason, upstream.message);
            failed += 1;
            if (store.get(record.taskId)?.notFound) {
              failureLogger.warn('task not found too many times in a row; no longer polled');
            }
          }
        }),
      ),
    );
    clearTimeout(deadline);
    abortCycle = undefined;
    if (deferred > 0 && !stopped) {
      logger.warn(
        { deferred },
        'poll cycle reached its deadline; some tasks wait for the next cycle',
      );
    }

    const durationMs = now() - startedMs;
    const asked = succeeded + failed > 0;
    const result: CycleResult = {
      startedMs,
      durationMs,
      succeeded,
      failed,
      deferred,
      up: asked ? answered && !unauthorized : undefined,
    };
    logger.debug(result, 'poll cycle finished');
    ready = true;
    options.onCycle?.(result);

    return result;
  }

  function runCycle(): Promise<CycleResult> {
    running ??= pollAll().finally(() => {
      running = undefined;
    });

    return running;
  }

  function schedule(delayMs: number): void {
    if (stopped) {
      return;
    }
    nextCycleAtMs = now() + delayMs;
    timer = setTimeout(() => {
      nextCycleAtMs = undefined;
      const startedMs = now();
      void runCycle().then(
        () => {
          // A chained timer rather than setInterval: a cycle that overruns delays the next one
          // instead of stacking a second cycle on top of it.
          const elapsedMs = now() - startedMs;
          const skipped = Math.floor(elapsedMs / settings.intervalMs);
          if (skipped > 0) {
            options.onSkippedCycles?.(skipped);
          }
          schedule(Math.max(0, settings.intervalMs - (elapsedMs % settings.intervalMs)));
          if (skipped > 0) {
            logger.warn({ skipped }, 'poll cycle overran its interval');
          }
        },
        (error: unknown) => {
          logger.error({ err: error }, 'poll cycle failed');
          schedule(settings.intervalMs);
        },
      );
    }, delayMs);
  }

  return {
    start() {
      stopped = false;
      schedule(0);
    },
    runCycle,
    async stop(graceMs) {
      stopped = true;
      clearTimeout(timer);
      // A local copy: `running` is cleared as soon as the cycle settles, during the race.
      const cycle = running;
      if (cycle === undefined) {
        return;
      }

      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([cycle.then(() => undefined), grace]);
      abortCycle?.abort();
      await cycle.catch(() => undefined);
    },
    reconfigure(nextClient, nextSettings) {
      client = nextClient;
      settings = nextSettings;
      // A shorter interval applies at once: the start already planned may be an hour away.
      if (nextCycleAtMs !== undefined && nextCycleAtMs - now() > nextSettings.intervalMs) {
        clearTimeout(timer);
        schedule(nextSettings.intervalMs);
      }
    },
    get ready() {
      return ready;
    },
  };
}

/** A new or changed failure is a warning; the same failure again is only debug detail. */
function logFailure(
  logger: Logger,
  previousReason: string | undefined,
  error: UpstreamError,
): void {
  const fields = {
    reason: error.reason,
    code: error.code,
    statusCode: error.statusCode,
    error: error.message,
  };
  if (previousReason === error.reason) {
    logger.debug(fields, 'task poll failed again');
  } else {
    logger.warn(fields, 'task poll failed');
  }
}
