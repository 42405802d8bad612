import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFaultTable, type Fault, parseFault } from './faults.js';
import { RequestBodyError, readJsonBody } from './request-body.js';
import {
  JSON_TYPE,
  renderShapedBody,
  send,
  sendDrip,
  sendEmpty,
  sendHtmlPage,
  sendJson,
  sendMalformedJson,
  sendPartThenReset,
  sendRateLimit,
  sendStatusFault,
} from './sim-responses.js';
import {
  createSimTask,
  isActiveStatus,
  parseSimTaskSpec,
  renderTaskBody,
  type SimTask,
  type SimTaskSpec,
  type SimTaskType,
  taskStateAt,
} from './sim-task.js';

/** How to start a simulator. */
export interface SimulatorOptions {
  /** The only accepted `x-dq-enterprise-api-key`. */
  apiKey: string;
  /** Address to listen on; default `127.0.0.1`. */
  host?: string;
  /** TCP port; default 0, an ephemeral one (read it back from `url`). */
  port?: number;
  /** Fixed delay before every answer, in milliseconds; default 0. */
  latencyMs?: number;
  /** Simulated seconds per real second for task progress; default 1. */
  timeScale?: number;
  /** Clock in Unix milliseconds; default `Date.now`. */
  now?: () => number;
  /** Serves the test-only `/_control/` endpoints; default false. */
  control?: boolean;
  /** Source of randomness in [0, 1) for the choices a task spec leaves open. */
  random?: () => number;
}

/** A running DriveQuant simulator. */
export interface Simulator {
  /** Base URL, such as `http://127.0.0.1:PORT`, without a trailing slash. */
  readonly url: string;
  /** Adds a task and returns its id. */
  addTask(spec?: SimTaskSpec): string;
  /** Adds `count` tasks sharing one spec (which must not fix `taskId`) and returns their ids. */
  addTasks(count: number, spec?: SimTaskSpec): string[];
  /** Forgets a task: it answers 404 from now on. */
  removeTask(taskId: string): void;
  /** Ids of the known tasks, oldest first. */
  taskIds(): string[];
  /** Sets or, with `undefined`, clears the fault of a task id or of `*` (every other task). */
  setFault(target: string, fault: Fault | undefined): void;
  /** Requests seen on the task endpoint, for one task id or in all. */
  requestCount(taskId?: string): number;
  /** The simulator's clock, in Unix milliseconds. */
  now(): number;
  /** Stops listening and destroys every connection, hung and keep-alive ones included. */
  close(): Promise<void>;
}

const TASK_PATH_PREFIX = '/v1/enterprise/task/';
const CONTROL_FAULTS_PREFIX = '/_control/faults/';
const CONTROL_TASKS_PATH = '/_control/tasks';
const API_KEY_HEADER = 'x-dq-enterprise-api-key';
const MAX_CONTROL_BODY_BYTES = 1024 * 1024;

const RETRY_ROUTES: ReadonlyMap<string, { type: SimTaskType; noun: string }> = new Map([
  ['/v1/enterprise/push/trips/failed/retry', { type: 'PUSH_FAILED_TRIPS', noun: 'trips' }],
  ['/v1/enterprise/push/crashes/failed/retry', { type: 'PUSH_FAILED_CRASHES', noun: 'crashes' }],
]);

/** Thrown by `addTask` for a task id the simulator already knows. */
export class DuplicateTaskError extends Error {
  constructor(taskId: string) {
    super(`task ${taskId} already exists`);
    this.name = 'DuplicateTaskError';
  }
}

interface JsonAnswer {
  statusCode: number;
  body: object;
}

/** Starts a simulator of DriveQuant's enterprise task API on a real HTTP port. */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  validateOptions(options);

  const latencyMs = options.latencyMs ?? 0;
  const timeScale = options.timeScale ?? 1;
  const clock = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const tasks = new Map<string, SimTask>();
  const faults = createFaultTable();
  const requestCounts = new Map<string, number>();
  const lastRetryByType = new Map<SimTaskType, string>();
  let totalRequests = 0;
  let closing: Promise<void> | undefined;

  function addTask(spec: SimTaskSpec = {}): string {
    return storeTask(createSimTask(parseSimTaskSpec(spec), clock(), random));
  }

  function storeTask(task: SimTask): string {
    if (tasks.has(task.taskId)) {
      throw new DuplicateTaskError(task.taskId);
    }

    tasks.set(task.taskId, task);

    return task.taskId;
  }

  function isAuthorized(req: IncomingMessage): boolean {
    return req.headers[API_KEY_HEADER] === options.apiKey;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const taskId =
      req.method === 'GET' && path.startsWith(TASK_PATH_PREFIX)
        ? decodeSegment(path.slice(TASK_PATH_PREFIX.length))
        : undefined;
    if (taskId !== undefined) {
      totalRequests += 1;
      requestCounts.set(taskId, (requestCounts.get(taskId) ?? 0) + 1);
    }

    if (!(await pause(latencyMs, res))) {
      return;
    }

    const retry = RETRY_ROUTES.get(path);
    if (taskId !== undefined) {
      await answerTask(req, res, taskId);
    } else if (retry !== undefined && req.method === 'POST') {
      answerRetry(req, res, retry.type, retry.noun);
    } else if (options.control === true && path.startsWith('/_control/')) {
      await answerControl(req, res, path);
    } else {
      sendJson(res, 404, { error: 'Not Found' });
    }
  }

  async function answerTask(req: IncomingMessage, res: ServerResponse, taskId: string) {
    const fault = faults.take(taskId);
    if (fault?.kind === 'latency' && !(await pause(fault.ms, res))) {
      return;
    }

    // Faults that replace the answer act in front of the API, as a failing proxy would,
    // so they apply whatever the key and whether the task exists.
    switch (fault?.kind) {
      case 'hang':
        return;
      case 'status':
        sendStatusFault(res, fault.code, fault.body);
        return;
      case 'rate-limit':
        sendRateLimit(res, fault.retryAfter);
        return;
      case 'malformed-json':
        sendMalformedJson(res);
        return;
      case 'html':
        sendHtmlPage(res);
        return;
    }

    const { statusCode, body } = normalTaskAnswer(req, taskId);
    const text = statusCode === 200 ? renderShapedBody(body, fault) : JSON.stringify(body);
    if (fault?.kind === 'reset') {
      sendPartThenReset(res, statusCode, text);
    } else if (fault?.kind === 'drip') {
      const intervalMs = fault.intervalMs;
      await sendDrip(res, statusCode, text, () => pause(intervalMs, res));
    } else {
      send(res, statusCode, JSON_TYPE, text);
    }
  }

  function normalTaskAnswer(req: IncomingMessage, taskId: string): JsonAnswer {
    if (!isAuthorized(req)) {
      return { statusCode: 401, body: { error: 'Unauthorized' } };
    }

    const task = tasks.get(taskId);
    if (task === undefined) {
      return { statusCode: 404, body: { error: 'Task not found' } };
    }

    const state = taskStateAt(task, clock(), timeScale);

    return { statusCode: 200, body: renderTaskBody(task, state) };
  }

  function answerRetry(req: IncomingMessage, res: ServerResponse, type: SimTaskType, noun: string) {
    if (!isAuthorized(req)) {
      sendJson(res, 401, { error: 'Unauthorized' });
      return;
    }

    // Only a task started by this endpoint blocks the next retry: seeded tasks that stay
    // IN_PROGRESS forever (the frozen demo ones) must not refuse every retry.
    const now = clock();
    const running = tasks.get(lastRetryByType.get(type) ?? '');
    if (running !== undefined && isActiveStatus(taskStateAt(running, now, timeScale).status)) {
      const error = `A retry of failed ${noun} is already in progress`;
      sendJson(res, 409, { error, taskId: running.taskId });
      return;
    }

    const task = createSimTask({ type }, now, random);
    storeTask(task);
    lastRetryByType.set(type, task.taskId);
    sendJson(res, 200, { taskId: task.taskId, nbItems: task.items });
  }

  async function answerControl(req: IncomingMessage, res: ServerResponse, path: string) {
    const target = path.startsWith(CONTROL_FAULTS_PREFIX)
      ? decodeSegment(path.slice(CONTROL_FAULTS_PREFIX.length))
      : undefined;
    if (target !== undefined && req.method === 'DELETE') {
      faults.set(target, undefined);
      sendEmpty(res, 204);
      return;
    }

    const isFaultPut = target !== undefined && req.method === 'PUT';
    const isTaskPost = path === CONTROL_TASKS_PATH && req.method === 'POST';
    if (!isFaultPut && !isTaskPost) {
      sendJson(res, 404, { error: 'Not Found' });
      return;
    }

    try {
      const value = await readJsonBody(req, MAX_CONTROL_BODY_BYTES);
      if (target !== undefined) {
        faults.set(target, parseFault(value));
        sendEmpty(res, 204);
      } else {
        sendJson(res, 200, { taskId: addTask(parseSimTaskSpec(value)) });
      }
    } catch (error) {
      sendJson(res, controlErrorStatus(error), { error: (error as Error).message });
    }
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }

      sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
    });
  });
  const address = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);

  return {
    url: `http://${formatHost(address.address)}:${address.port}`,
    addTask,
    addTasks(count, spec = {}) {
      if (spec.taskId !== undefined && count > 1) {
        throw new RangeError(`addTasks: ${count} tasks cannot share taskId ${spec.taskId}`);
      }

      const checked = parseSimTaskSpec(spec);
      const now = clock();
      const ids: string[] = [];
      for (let index = 0; index < count; index += 1) {
        ids.push(storeTask(createSimTask(checked, now, random)));
      }

      return ids;
    },
    removeTask(taskId) {
      tasks.delete(taskId);
    },
    taskIds() {
      return [...tasks.keys()];
    },
    setFault(target, fault) {
      faults.set(target, fault === undefined ? undefined : parseFault(fault));
    },
    requestCount(taskId) {
      return taskId === undefined ? totalRequests : (requestCounts.get(taskId) ?? 0);
    },
    now: clock,
    close() {
      // Destroying every socket ends hung answers and idle keep-alive connections alike,
      // which server.close() alone would wait for.
      closing ??= new Promise((resolve) => server.close(() => resolve()));
      server.closeAllConnections();

      return closing;
    },
  };
}

// Resolves false when the wait was cut short: the client went away or close() destroyed
// the socket. Either way the timer is cleared, so no wait outlives the simulator.
function pause(ms: number, res: ServerResponse): Promise<boolean> {
  if (ms <= 0) {
    return Promise.resolve(!res.destroyed);
  }

  return new Promise((resolve) => {
    const finish = (waited: boolean): void => {
      clearTimeout(timer);
      res.off('close', cancel);
      resolve(waited);
    };
    const cancel = (): void => finish(false);
    const timer = setTimeout(() => finish(true), ms);
    res.once('close', cancel);
  });
}

function controlErrorStatus(error: unknown): number {
  if (error instanceof RequestBodyError) {
    return error.statusCode;
  }

  if (error instanceof DuplicateTaskError) {
    return 409;
  }

  if (error instanceof TypeError || error instanceof RangeError) {
    return 400;
  }

  throw error;
}

function validateOptions(options: SimulatorOptions): void {
  if (options.apiKey === '') {
    throw new RangeError('apiKey: must not be empty');
  }

  if (options.latencyMs !== undefined && !(options.latencyMs >= 0)) {
    throw new RangeError(`latencyMs: ${options.latencyMs} is not a delay of 0 ms or more`);
  }

  const timeScale = options.timeScale;
  if (timeScale !== undefined && !(timeScale > 0 && Number.isFinite(timeScale))) {
    throw new RangeError(`timeScale: ${timeScale} is not a positive number`);
  }
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

// A wildcard address is not one a client can dial; the loopback of its family is.
function formatHost(address: string): string {
  if (address === '0.0.0.0') {
    return '127.0.0.1';
  }

  if (address === '::') {
    return '[::1]';
  }

  return address.includes(':') ? `[${address}]` : address;
}

function decodeSegment(segment: string): string | undefined {
  if (segment === '' || segment.includes('/')) {
    return undefined;
  }

  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
