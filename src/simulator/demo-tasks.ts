import type { SimTaskType } from './sim-task.js';
import type { Simulator } from './simulator.js';

/** Fixed ids of the demo tasks, by role, so dashboards and docs can name them. */
export const DEMO_TASKS = {
  /** DriveQuant's documented example, frozen IN_PROGRESS with 12 of 321 items left. */
  documentedExample: '6753030831fe9826412bac5c',
  /** Frozen COMPLETED, with a completion latency of exactly 754.321 s. */
  completedLongAgo: '6762f1a0e4b0c8d2a1f30001',
  /** Frozen FAILED, created two hours before the simulator started. */
  alreadyFailed: '6762f1a0e4b0c8d2a1f30002',
  /** Frozen CANCELED, created three hours before the simulator started. */
  alreadyCanceled: '6762f1a0e4b0c8d2a1f30003',
  /** Created 15 minutes before start, COMPLETED by the time anyone looks. */
  recentlyCompleted: '6762f1a0e4b0c8d2a1f30004',
  /** PENDING for 20 s, then COMPLETED over 2 minutes. */
  pendingShort: '6762f1a0e4b0c8d2a1f30005',
  /** PENDING for 40 s, then COMPLETED over 1 minute. */
  pendingLong: '6762f1a0e4b0c8d2a1f30006',
  /** IN_PROGRESS after 2 s, COMPLETED over 1 minute. */
  progressOneMinute: '6762f1a0e4b0c8d2a1f30007',
  /** IN_PROGRESS after 3 s, COMPLETED over 2.5 minutes. */
  progressTwoMinutes: '6762f1a0e4b0c8d2a1f30008',
  /** IN_PROGRESS after 1 s, COMPLETED over 5 minutes. */
  progressFiveMinutes: '6762f1a0e4b0c8d2a1f30009',
  /** IN_PROGRESS after 2 s, FAILED after about 1.8 minutes with 160 items left. */
  progressThenFailed: '6762f1a0e4b0c8d2a1f3000a',
  /** IN_PROGRESS after 4 s, CANCELED after 2.5 minutes with 100 items left. */
  progressThenCanceled: '6762f1a0e4b0c8d2a1f3000b',
} as const;

/** The demo task ids, in seeding order. */
export const DEMO_TASK_IDS: readonly string[] = Object.values(DEMO_TASKS);

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * Seeds a dozen tasks so that within a few seconds every status is on show, and the live
 * ones move at least one item per second while a person watches.
 */
export function seedDemoTasks(sim: Simulator): void {
  const now = sim.now();

  sim.addTask({
    taskId: DEMO_TASKS.documentedExample,
    type: 'PUSH_FAILED_TRIPS',
    items: 321,
    createdAtMs: Date.UTC(2024, 11, 9, 14, 14, 17, 574),
    frozen: { status: 'IN_PROGRESS', remainingItems: 12 },
  });
  sim.addTask({
    taskId: DEMO_TASKS.completedLongAgo,
    type: 'PUSH_FAILED_TRIPS',
    items: 128,
    createdAtMs: Date.UTC(2024, 11, 9, 15, 2, 40, 118),
    frozen: {
      status: 'COMPLETED',
      remainingItems: 0,
      completedAtMs: Date.UTC(2024, 11, 9, 15, 15, 14, 439),
    },
  });
  sim.addTask({
    taskId: DEMO_TASKS.alreadyFailed,
    type: 'PUSH_FAILED_CRASHES',
    items: 75,
    createdAtMs: now - 2 * HOUR_MS,
    frozen: { status: 'FAILED', remainingItems: 31 },
  });
  sim.addTask({
    taskId: DEMO_TASKS.alreadyCanceled,
    type: 'PUSH_FAILED_TRIPS',
    items: 200,
    createdAtMs: now - 3 * HOUR_MS,
    frozen: { status: 'CANCELED', remainingItems: 140 },
  });

  addMovingTask(sim, DEMO_TASKS.recentlyCompleted, 'PUSH_FAILED_CRASHES', 90, {
    createdAtMs: now - 15 * MINUTE_MS,
    pendingMs: 30 * SECOND_MS,
    processingMs: 4 * MINUTE_MS,
  });
  addMovingTask(sim, DEMO_TASKS.pendingShort, 'PUSH_FAILED_TRIPS', 240, {
    pendingMs: 20 * SECOND_MS,
    processingMs: 2 * MINUTE_MS,
  });
  addMovingTask(sim, DEMO_TASKS.pendingLong, 'PUSH_FAILED_CRASHES', 60, {
    pendingMs: 40 * SECOND_MS,
    processingMs: MINUTE_MS,
  });
  addMovingTask(sim, DEMO_TASKS.progressOneMinute, 'PUSH_FAILED_TRIPS', 300, {
    pendingMs: 2 * SECOND_MS,
    processingMs: MINUTE_MS,
  });
  addMovingTask(sim, DEMO_TASKS.progressTwoMinutes, 'PUSH_FAILED_CRASHES', 150, {
    pendingMs: 3 * SECOND_MS,
    processingMs: 2.5 * MINUTE_MS,
  });
  addMovingTask(sim, DEMO_TASKS.progressFiveMinutes, 'PUSH_FAILED_TRIPS', 480, {
    pendingMs: SECOND_MS,
    processingMs: 5 * MINUTE_MS,
  });

  // 400 items at 400/180 items per second: 240 processed after 108 s, then FAILED.
  sim.addTask({
    taskId: DEMO_TASKS.progressThenFailed,
    type: 'PUSH_FAILED_TRIPS',
    items: 400,
    pendingMs: 2 * SECOND_MS,
    itemsPerSecond: 400 / 180,
    outcome: 'FAILED',
    stopAtRemaining: 160,
  });
  sim.addTask({
    taskId: DEMO_TASKS.progressThenCanceled,
    type: 'PUSH_FAILED_CRASHES',
    items: 250,
    pendingMs: 4 * SECOND_MS,
    itemsPerSecond: 1,
    outcome: 'CANCELED',
    stopAtRemaining: 100,
  });
}

interface MovingTiming {
  /** Creation time, in Unix milliseconds; default the simulator's clock now. */
  createdAtMs?: number;
  /** Time spent PENDING, in milliseconds. */
  pendingMs: number;
  /** Time from IN_PROGRESS to COMPLETED, in milliseconds. */
  processingMs: number;
}

function addMovingTask(
  sim: Simulator,
  taskId: string,
  type: SimTaskType,
  items: number,
  timing: MovingTiming,
): void {
  sim.addTask({
    taskId,
    type,
    items,
    pendingMs: timing.pendingMs,
    itemsPerSecond: items / (timing.processingMs / SECOND_MS),
    outcome: 'COMPLETED',
    ...(timing.createdAtMs === undefined ? {} : { createdAtMs: timing.createdAtMs }),
  });
}
