import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { describeBadTaskId, isTaskId, shortPrintable } from './task-id.js';

/** Characters of a client's input quoted back in an error, at most. */
const SHOWN_TEXT_LENGTH = 80;

import type { RegistrationRefusalReason } from './exporter-metrics.js';
import type { Secret } from './secret.js';
import { shardOf } from './shard.js';
import { RegistrationStorageError, type TaskRegistrations } from './task-registrations.js';
import type { TaskRecord, TaskStore } from './task-state.js';

/** Where the task API is mounted. */
export const TASK_API_PATH = '/api/v1/tasks';

/** Largest accepted request body; a registration is about 40 bytes. */
export const MAX_BODY_SIZE = '16kb';

/** Options of createTaskApiRouter. */
export interface TaskApiOptions {
  store: TaskStore;
  registrations: TaskRegistrations;
  /** The write endpoints' bearer token, read per request (reloads apply); undefined: off. */
  token: () => Secret | undefined;
  /** How long finished tasks stay, in milliseconds, read per request. */
  terminalRetentionMs: () => number;
  /** Tracked tasks at most, read per request. */
  maxTasks: () => number;
  logger: Logger;
  /** Called for every registration refused, for the refusal counter. */
  onRefused?: (reason: RegistrationRefusalReason) => void;
}

/** One task as the API shows it. Times are ISO 8601 strings in UTC, or null. */
export interface TaskView {
  taskId: string;
  /** The sources that list the task, in a fixed order. */
  sources: string[];
  /** DriveQuant's status, or NOT_POLLED before the first answer, or NOT_FOUND once given up. */
  state: string;
  taskType: string | null;
  items: number | null;
  remainingItems: number | null;
  createdAt: string | null;
  completedAt: string | null;
  trackedSince: string;
  /** When the task was registered through the API, if it was. */
  registeredAt: string | null;
  /** The outcome of the last poll: `success`, `error`, or `none` before the first one. */
  lastPoll: {
    result: 'success' | 'error' | 'none';
    at: string | null;
    reason?: string;
    message?: string;
  };
  lastSuccessAt: string | null;
  /** Failed polls by reason since the task was tracked. */
  pollErrors: Record<string, number>;
  /** 404 answers in a row. */
  consecutiveNotFound: number;
  /** When the task leaves, once it is finished or given up. */
  leavesAt: string | null;
}

const SOURCE_ORDER = ['config', 'file', 'api'];

/**
 * The task API: `GET /api/v1/tasks[/{taskId}]` for everyone who can read /metrics, and
 * `POST /api/v1/tasks`, `DELETE /api/v1/tasks/{taskId}` for holders of the bearer token.
 * Every answer, errors included, is JSON.
 */
export function createTaskApiRouter(options: TaskApiOptions): express.Router {
  const { store, registrations, logger } = options;
  const router = express.Router();
  const requireToken = createTokenCheck(options.token, logger);
  // Any content type is read as JSON: `curl -d` sends a form type by default. Not strict, so
  // that `null` or `"abc"` get the same "must be a JSON object" answer as an array.
  const parseJson = express.json({ limit: MAX_BODY_SIZE, strict: false, type: () => true });

  const view = (record: TaskRecord) =>
    describeTask(
      record,
      registrations.registeredAtMs(record.taskId),
      options.terminalRetentionMs(),
    );

  // A bearer token is optional here, but checked when one is sent: `retry --register` uses
  // that to learn, before it starts a retry at DriveQuant, whether its token will be taken.
  router.get(TASK_API_PATH, checkTokenIfSent(requireToken), (request, response) => {
    if (request.method === 'HEAD') {
      response.type('json').end();
      return;
    }

    const tasks = store.list().map(view);
    response.json({ tasks, total: tasks.length, maxTasks: options.maxTasks() });
  });

  router.post(TASK_API_PATH, requireToken, parseJson, async (request, response) => {
    const parsed = parseRegistrationBody(request.body);
    if ('error' in parsed) {
      sendError(response, 400, parsed.error);
      return;
    }
    const { taskId } = parsed;
    const shard = store.shard;
    if (shard !== undefined && !store.owns(taskId)) {
      // 421 Misdirected Request: the answer names the replica that can take the task.
      const owner = shardOf(taskId, shard.total);
      logger.info({ taskId, owner }, 'task registration refused: another shard owns the task');
      sendError(
        response,
        421,
        `task ${taskId} belongs to shard ${owner} of ${shard.total}, and this replica is shard ${shard.index}: register it with the replica started with --shard.index=${owner}`,
        { shard: owner, shardTotal: shard.total },
      );
      return;
    }

    let outcome: Awaited<ReturnType<TaskRegistrations['register']>>;
    try {
      outcome = await registrations.register(taskId);
    } catch (error) {
      if (!(error instanceof RegistrationStorageError)) {
        throw error;
      }
      options.onRefused?.('storage_error');
      logger.error({ taskId, err: error }, 'task registration not saved');
      sendError(response, 503, `the registration could not be saved: ${error.message}`);
      return;
    }

    if (outcome.kind === 'limit') {
      options.onRefused?.('max_tasks');
      logger.warn(
        { taskId, maxTasks: options.maxTasks() },
        'task registration refused: task limit reached',
      );
      sendError(
        response,
        429,
        `task limit reached: ${store.size} tasks are tracked (poll.max_tasks ${options.maxTasks()}) and none has finished; delete a task or raise poll.max_tasks`,
      );
      return;
    }

    const created = outcome.kind === 'added';
    logger.info({ taskId, created }, 'task registered');
    response.status(created ? 201 : 200);
    if (created) {
      response.location(`${TASK_API_PATH}/${taskId}`);
    }
    response.json(view(outcome.record));
  });

  router.get(`${TASK_API_PATH}/:taskId`, (request, response) => {
    const taskId = taskIdParam(request);
    if (!isTaskId(taskId)) {
      sendError(response, 400, describeBadTaskId(taskId, SHOWN_TEXT_LENGTH));
      return;
    }

    const record = store.get(taskId);
    if (record === undefined) {
      const why = store.isRetired(taskId)
        ? 'it finished and was dropped after its retention'
        : 'it is not tracked';
      sendError(response, 404, `task ${taskId} is unknown: ${why}`);
      return;
    }

    response.json(view(record));
  });

  router.delete(`${TASK_API_PATH}/:taskId`, requireToken, async (request, response) => {
    const taskId = taskIdParam(request);
    if (!isTaskId(taskId)) {
      sendError(response, 400, describeBadTaskId(taskId, SHOWN_TEXT_LENGTH));
      return;
    }

    let outcome: Awaited<ReturnType<TaskRegistrations['unregister']>>;
    try {
      outcome = await registrations.unregister(taskId);
    } catch (error) {
      if (!(error instanceof RegistrationStorageError)) {
        throw error;
      }
      logger.error({ taskId, err: error }, 'task unregistration not saved');
      sendError(response, 503, `the removal could not be saved: ${error.message}`);
      return;
    }

    if (outcome.kind === 'unknown') {
      sendError(response, 404, `task ${taskId} is not registered`);
      return;
    }
    if (outcome.kind === 'not-registered') {
      const sources = sortSources(outcome.sources);
      sendError(
        response,
        409,
        `task ${taskId} was not registered through the API; it comes from ${sources.join(' and ')}, remove it there`,
        { sources },
      );
      return;
    }

    const remaining = sortSources(outcome.remaining);
    const tracked = remaining.length > 0;
    logger.info({ taskId, remaining }, 'task unregistered');
    response.json({
      taskId,
      tracked,
      sources: remaining,
      message: tracked
        ? `registration removed; the task is still tracked because ${remaining.join(' and ')} lists it`
        : 'registration removed; the task is no longer tracked and its series are gone',
    });
  });

  for (const [path, allow] of [
    [TASK_API_PATH, 'GET, HEAD, POST'],
    [`${TASK_API_PATH}/:taskId`, 'GET, HEAD, DELETE'],
  ] as const) {
    router.all(path, (_request, response) => {
      response.set('Allow', allow);
      sendError(response, 405, `method not allowed; use ${allow}`);
    });
  }

  // Body parser errors and anything unexpected answer JSON, never a stack trace.
  router.use(
    TASK_API_PATH,
    (error: unknown, _request: Request, response: Response, next: NextFunction) => {
      if (response.headersSent) {
        next(error);
        return;
      }

      const { status, type } = error as { status?: unknown; type?: unknown };
      if (error instanceof URIError) {
        // The router could not percent-decode the task id, as in `/api/v1/tasks/%`.
        sendError(response, 400, 'malformed URL: the path is not valid percent-encoding');
      } else if (type === 'entity.parse.failed') {
        sendError(response, 400, 'the body is not valid JSON; send {"taskId": "..."}');
      } else if (type === 'entity.too.large') {
        sendError(response, 413, `the body is larger than ${MAX_BODY_SIZE}`);
      } else if (typeof status === 'number' && status >= 400 && status < 500) {
        sendError(response, status, 'the request body cannot be read');
      } else {
        logger.error({ err: error }, 'task API handler failed');
        sendError(response, 500, 'internal error');
      }
    },
  );

  return router;
}

/** Checks `Authorization: Bearer <token>`; the write endpoints are off without a token. */
function createTokenCheck(token: () => Secret | undefined, logger: Logger) {
  return (request: Request, response: Response, next: NextFunction) => {
    const expected = token();
    if (expected === undefined) {
      sendError(
        response,
        403,
        'the task API is read-only: set api.token or api.token_file in the configuration to enable registrations',
      );
      return;
    }

    const given = parseBearer(request.get('authorization'));
    if (given === undefined) {
      response.set('WWW-Authenticate', 'Bearer realm="drivequant-task-exporter"');
      sendError(response, 401, 'missing bearer token: send Authorization: Bearer <api.token>');
      return;
    }
    if (!isSameToken(given, expected)) {
      logger.warn(
        { remoteAddress: request.socket.remoteAddress },
        'task API request with a wrong token',
      );
      response.set(
        'WWW-Authenticate',
        'Bearer realm="drivequant-task-exporter", error="invalid_token"',
      );
      sendError(response, 401, 'wrong bearer token');
      return;
    }

    next();
  };
}

/** Runs the token check only for a request that sends `Authorization: Bearer ...`. */
function checkTokenIfSent(check: ReturnType<typeof createTokenCheck>) {
  return (request: Request, response: Response, next: NextFunction) => {
    if (!/^Bearer\b/i.test(request.get('authorization') ?? '')) {
      next();
      return;
    }

    check(request, response, next);
  };
}

/** The token of an `Authorization: Bearer <token>` header. */
function parseBearer(header: string | undefined): string | undefined {
  return /^Bearer +(\S+) *$/i.exec(header ?? '')?.[1];
}

/**
 * Whether a request to the task API carries the right bearer token. With basic auth on,
 * such a request is let through the basic-auth guard, since it cannot carry both.
 */
export function hasValidTaskApiToken(request: Request, token: Secret | undefined): boolean {
  const given = parseBearer(request.headers.authorization);

  return (
    token !== undefined &&
    given !== undefined &&
    request.path.startsWith(TASK_API_PATH) &&
    isSameToken(given, token)
  );
}

/** Compares in constant time; hashing first makes the lengths equal and hides the real one. */
function isSameToken(given: string, expected: Secret): boolean {
  const givenDigest = createHash('sha256').update(given).digest();
  const expectedDigest = createHash('sha256').update(expected.reveal()).digest();

  return timingSafeEqual(givenDigest, expectedDigest);
}

/** The id of a `{"taskId": "..."}` body, or a sentence saying what is wrong with the body. */
function parseRegistrationBody(body: unknown): { taskId: string } | { error: string } {
  if (body === undefined) {
    // No body at all, as `curl -X POST` without `-d` sends: like `{}`.
    return { error: 'taskId: is required' };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { error: 'the body must be a JSON object: {"taskId": "..."}' };
  }

  const unknownKeys = Object.keys(body).filter((key) => key !== 'taskId');
  if (unknownKeys.length > 0) {
    return {
      error: `unknown field "${shortPrintable(unknownKeys[0] ?? '', SHOWN_TEXT_LENGTH)}"; the body is {"taskId": "..."}`,
    };
  }
  const { taskId } = body as { taskId?: unknown };
  if (taskId === undefined) {
    return { error: 'taskId: is required' };
  }
  if (typeof taskId !== 'string') {
    return {
      error: `taskId: must be a string, got ${shortPrintable(JSON.stringify(taskId), SHOWN_TEXT_LENGTH)}`,
    };
  }
  if (!isTaskId(taskId)) {
    return { error: `taskId: ${describeBadTaskId(taskId, SHOWN_TEXT_LENGTH)}` };
  }

  return { taskId };
}

/** A task as the API shows it. */
export function describeTask(
  record: TaskRecord,
  registeredAtMs: number | undefined,
  terminalRetentionMs: number,
): TaskView {
  const { snapshot, lastError } = record;
  const state = record.notFound ? 'NOT_FOUND' : (snapshot?.status ?? 'NOT_POLLED');
  const lastPoll: TaskView['lastPoll'] =
    lastError !== undefined
      ? {
          result: 'error',
          at: isoTime(lastError.atMs),
          reason: lastError.reason,
          message: lastError.message,
        }
      : {
          result: record.lastSuccessMs === undefined ? 'none' : 'success',
          at: isoTime(record.lastSuccessMs),
        };

  return {
    taskId: record.taskId,
    sources: sortSources(record.sources),
    state,
    taskType: snapshot?.taskType ?? null,
    items: snapshot?.items ?? null,
    remainingItems: snapshot?.remainingItems ?? null,
    createdAt: isoTime(snapshot === undefined ? undefined : snapshot.createdSeconds * 1000),
    completedAt: isoTime(
      snapshot?.completedSeconds === undefined ? undefined : snapshot.completedSeconds * 1000,
    ),
    trackedSince: new Date(record.trackedSinceMs).toISOString(),
    registeredAt: isoTime(record.sources.has('api') ? registeredAtMs : undefined),
    lastPoll,
    lastSuccessAt: isoTime(record.lastSuccessMs),
    pollErrors: Object.fromEntries(record.errorCounts),
    consecutiveNotFound: record.consecutiveNotFound,
    leavesAt: isoTime(
      record.terminalSinceMs === undefined
        ? undefined
        : record.terminalSinceMs + terminalRetentionMs,
    ),
  };
}

function taskIdParam(request: Request): string {
  const value = request.params.taskId;

  return typeof value === 'string' ? value : '';
}

function sortSources(sources: Iterable<string>): string[] {
  return [...sources].sort((a, b) => SOURCE_ORDER.indexOf(a) - SOURCE_ORDER.indexOf(b));
}

function isoTime(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

function sendError(
  response: Response,
  status: number,
  error: string,
  extra: Record<string, unknown> = {},
): void {
  response.status(status).json({ error, ...extra });
}
