import { z } from 'zod';
import { formatDriveQuantDate } from '../drivequant-date.js';
import { createObjectId } from './object-id.js';

/** A task type DriveQuant documents. */
export type SimTaskType = 'PUSH_FAILED_TRIPS' | 'PUSH_FAILED_CRASHES';

/** How a simulated task ends once its items are worked through. */
export type SimTaskOutcome = 'COMPLETED' | 'FAILED' | 'CANCELED';

/** A state that never changes, for tasks that must answer exact values. */
export interface FrozenTaskState {
  /** `status` answered verbatim; may be one DriveQuant does not document. */
  status: string;
  /** `nbRemainingItems` answered, in items. */
  remainingItems: number;
  /** `completedAt` answered, in Unix milliseconds; left out, the answer has no `completedAt`. */
  completedAtMs?: number;
}

/** What a caller may fix about a simulated task; whatever is left out is chosen at random. */
export interface SimTaskSpec {
  /** Task id; default a fresh 24-hex-character id like a MongoDB ObjectId. */
  taskId?: string;
  /** Task type; default `PUSH_FAILED_TRIPS`. */
  type?: SimTaskType;
  /** `nbItems`, in items; default random in 50..500. */
  items?: number;
  /** Creation time, in Unix milliseconds; default the simulator's clock now. */
  createdAtMs?: number;
  /** Simulated time spent PENDING before IN_PROGRESS, in milliseconds; default 2..20 s. */
  pendingMs?: number;
  /** Processing speed while IN_PROGRESS, in items per simulated second; 0 stalls the task. */
  itemsPerSecond?: number;
  /** How the task ends; default `COMPLETED`. FAILED and CANCELED stop part-way. */
  outcome?: SimTaskOutcome;
  /** For FAILED or CANCELED, the items still remaining when it stops; default 10..90 %. */
  stopAtRemaining?: number;
  /** A state answered forever instead of one computed from the clock. */
  frozen?: FrozenTaskState;
}

/** A simulated task with every choice made; its state follows from the clock alone. */
export interface SimTask {
  /** Task id. */
  readonly taskId: string;
  /** Task type. */
  readonly type: SimTaskType;
  /** `nbItems`, in items. */
  readonly items: number;
  /** Creation time, in Unix milliseconds. */
  readonly createdAtMs: number;
  /** Simulated time spent PENDING, in milliseconds. */
  readonly pendingMs: number;
  /** Processing speed, in items per simulated second. */
  readonly itemsPerSecond: number;
  /** How the task ends. */
  readonly outcome: SimTaskOutcome;
  /** Items left when the task ends, in items; 0 for COMPLETED. */
  readonly stopAtRemaining: number;
  /** A fixed state that overrides the computed one. */
  readonly frozen?: FrozenTaskState;
}

/** What a task answers at one instant. */
export interface SimTaskState {
  /** `status`. */
  status: string;
  /** `nbRemainingItems`, in items. */
  remainingItems: number;
  /** `completedAt`, in Unix milliseconds, only once the task has completed. */
  completedAtMs?: number;
}

/** The JSON body of `GET /v1/enterprise/task/{taskId}`, in DriveQuant's shape. */
export interface DriveQuantTaskBody {
  /** Task id. */
  taskId: string;
  /** Creation date, `2024-12-09T14:14:17.574+0000`. */
  createdAt: string;
  /** Completion date in the same format, present only once completed. */
  completedAt?: string;
  /** Task type. */
  type: string;
  /** Task status. */
  status: string;
  /** Total items. */
  nbItems: number;
  /** Items not yet processed. */
  nbRemainingItems: number;
}

// Anything that fits in one URL path segment, so odd ids stay testable.
const TASK_ID_PATTERN = /^[^/?#\s]+$/;

const simTaskSpecSchema: z.ZodType<SimTaskSpec> = z.strictObject({
  taskId: z.string().regex(TASK_ID_PATTERN, 'must be one URL path segment').optional(),
  type: z.enum(['PUSH_FAILED_TRIPS', 'PUSH_FAILED_CRASHES']).optional(),
  items: z.int().nonnegative().optional(),
  createdAtMs: z.number().optional(),
  pendingMs: z.number().nonnegative().optional(),
  itemsPerSecond: z.number().nonnegative().optional(),
  outcome: z.enum(['COMPLETED', 'FAILED', 'CANCELED']).optional(),
  stopAtRemaining: z.int().positive().optional(),
  frozen: z
    .strictObject({
      status: z.string().min(1),
      remainingItems: z.number(),
      completedAtMs: z.number().optional(),
    })
    .optional(),
});

/** Validates a task spec that arrives from outside TypeScript (the control endpoint). */
export function parseSimTaskSpec(value: unknown): SimTaskSpec {
  const result = simTaskSpecSchema.safeParse(value);
  if (!result.success) {
    throw new TypeError(`invalid task spec: ${z.prettifyError(result.error)}`);
  }

  return result.data;
}

/** Makes every choice a spec leaves open; `random` returns values in [0, 1). */
export function createSimTask(
  spec: SimTaskSpec,
  nowMs: number,
  random: () => number = Math.random,
): SimTask {
  const items = spec.items ?? 50 + Math.floor(random() * 451);
  const outcome = spec.outcome ?? 'COMPLETED';
  const stopAtRemaining = outcome === 'COMPLETED' ? 0 : chooseStop(spec, items, random);
  if (stopAtRemaining > items) {
    throw new RangeError(`stopAtRemaining: ${stopAtRemaining} is more than items (${items})`);
  }

  // By default a task takes 30 s to 3 min to work through, so a demo shows movement.
  const itemsPerSecond = spec.itemsPerSecond ?? items / (30 + random() * 150);

  return {
    taskId: spec.taskId ?? createObjectId(nowMs),
    type: spec.type ?? 'PUSH_FAILED_TRIPS',
    items,
    createdAtMs: spec.createdAtMs ?? nowMs,
    pendingMs: spec.pendingMs ?? 2000 + random() * 18_000,
    itemsPerSecond,
    outcome,
    stopAtRemaining,
    ...(spec.frozen ? { frozen: { ...spec.frozen } } : {}),
  };
}

function chooseStop(spec: SimTaskSpec, items: number, random: () => number): number {
  if (spec.stopAtRemaining !== undefined) {
    return spec.stopAtRemaining;
  }

  return Math.min(items, Math.max(1, Math.round(items * (0.1 + random() * 0.8))));
}

/**
 * Computes a task's state at `nowMs`. `timeScale` is simulated seconds per real second:
 * it shortens the PENDING and processing phases alike, never the dates already past.
 */
export function taskStateAt(task: SimTask, nowMs: number, timeScale = 1): SimTaskState {
  if (task.frozen) {
    return { ...task.frozen };
  }

  const elapsedMs = (nowMs - task.createdAtMs) * timeScale;
  if (elapsedMs < task.pendingMs) {
    return { status: 'PENDING', remainingItems: task.items };
  }

  const itemsToProcess = task.items - task.stopAtRemaining;
  const processingMs = processingDurationMs(itemsToProcess, task.itemsPerSecond);
  const processingElapsedMs = elapsedMs - task.pendingMs;
  if (processingElapsedMs >= processingMs) {
    const state: SimTaskState = { status: task.outcome, remainingItems: task.stopAtRemaining };
    if (task.outcome === 'COMPLETED') {
      // Rounded down so that a completed task never claims a completion in the future.
      const endMs = task.createdAtMs + (task.pendingMs + processingMs) / timeScale;
      state.completedAtMs = Math.floor(endMs);
    }

    return state;
  }

  const processed = Math.floor((processingElapsedMs / 1000) * task.itemsPerSecond);
  const remainingItems = task.items - Math.min(processed, itemsToProcess);

  return { status: 'IN_PROGRESS', remainingItems };
}

function processingDurationMs(itemsToProcess: number, itemsPerSecond: number): number {
  if (itemsToProcess === 0) {
    return 0;
  }

  return itemsPerSecond === 0 ? Number.POSITIVE_INFINITY : (itemsToProcess / itemsPerSecond) * 1000;
}

/** Whether a status still moves: PENDING or IN_PROGRESS. */
export function isActiveStatus(status: string): boolean {
  return status === 'PENDING' || status === 'IN_PROGRESS';
}

/** Renders a task's state as DriveQuant's JSON body, `completedAt` only when known. */
export function renderTaskBody(task: SimTask, state: SimTaskState): DriveQuantTaskBody {
  return {
    taskId: task.taskId,
    createdAt: formatDriveQuantDate(task.createdAtMs),
    ...(state.completedAtMs === undefined
      ? {}
      : { completedAt: formatDriveQuantDate(state.completedAtMs) }),
    type: task.type,
    status: state.status,
    nbItems: task.items,
    nbRemainingItems: state.remainingItems,
  };
}
