import { z } from 'zod';
import { parseDriveQuantDate } from './drivequant-date.js';
import type { TaskSnapshot } from './task-snapshot.js';
import { InvalidResponseError } from './upstream-error.js';

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

// Extra fields are allowed: DriveQuant may add some, and that must not break monitoring.
const taskResponseSchema = z.object({
  taskId: z.string().min(1),
  createdAt: z.string(),
  completedAt: z.string().nullish(),
  type: z.string().min(1).max(200),
  status: z.string().min(1).max(200),
  nbItems: count,
  nbRemainingItems: count,
});

type TaskResponse = z.output<typeof taskResponseSchema>;

/**
 * The schema's rules written out by hand, for the answers that follow them: at thousands of
 * polls per cycle zod's parse is a tenth of a poll's CPU time. Anything this refuses goes
 * through the schema, which either accepts it too or says what is wrong.
 */
function isWellFormed(json: unknown): json is TaskResponse {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return false;
  }

  const task = json as Record<string, unknown>;
  const { completedAt } = task;

  return (
    typeof task.taskId === 'string' &&
    task.taskId.length >= 1 &&
    typeof task.createdAt === 'string' &&
    (completedAt === undefined || completedAt === null || typeof completedAt === 'string') &&
    isLabelText(task.type) &&
    isLabelText(task.status) &&
    isCount(task.nbItems) &&
    isCount(task.nbRemainingItems)
  );
}

function isLabelText(value: unknown): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= 200;
}

function isCount(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function validateWithSchema(json: unknown): TaskResponse {
  const parsed = taskResponseSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'body';
    throw new InvalidResponseError(`field ${field}: ${issue?.message ?? 'invalid'}`, 200);
  }

  return parsed.data;
}

/**
 * Validates the body of `GET /v1/enterprise/task/{taskId}`. The rule for inconsistent
 * answers: anything that cannot be exported truthfully (a wrong or missing field, another
 * task's id, more remaining items than items, completion before creation) is rejected as
 * INVALID_RESPONSE, so the task keeps its last good values. An unknown status or type is
 * exported as read, sanitised for use as a label value.
 */
export function parseTaskResponse(body: string, expectedTaskId: string): TaskSnapshot {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new InvalidResponseError('the answer is not JSON', 200);
  }

  const task = isWellFormed(json) ? json : validateWithSchema(json);
  if (task.taskId !== expectedTaskId) {
    throw new InvalidResponseError('the answer is about another task', 200);
  }
  if (task.nbRemainingItems > task.nbItems) {
    throw new InvalidResponseError('nbRemainingItems is larger than nbItems', 200);
  }

  const createdMs = parseDriveQuantDate(task.createdAt);
  if (createdMs === undefined) {
    throw new InvalidResponseError('field createdAt: not a date', 200);
  }

  const snapshot: TaskSnapshot = {
    taskId: task.taskId,
    taskType: sanitizeLabelValue(task.type),
    status: sanitizeLabelValue(task.status),
    items: task.nbItems,
    remainingItems: task.nbRemainingItems,
    createdSeconds: createdMs / 1000,
  };
  if (task.completedAt !== undefined && task.completedAt !== null) {
    const completedMs = parseDriveQuantDate(task.completedAt);
    if (completedMs === undefined) {
      throw new InvalidResponseError('field completedAt: not a date', 200);
    }
    if (completedMs < createdMs) {
      throw new InvalidResponseError('completedAt is before createdAt', 200);
    }
    snapshot.completedSeconds = completedMs / 1000;
  }

  return snapshot;
}

/** Upper-case letters, digits and `_`, at most 64 characters: safe in a label and in HTML. */
export function sanitizeLabelValue(text: string): string {
  return text
    .toUpperCase()
    .replace(/[^A-Z0-9_]+/g, '_')
    .slice(0, 64);
}
