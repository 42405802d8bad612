import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFaultTable, type Fault, parseFault } from './faults.js';
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
const JSON_TYPE = 'application/json';
const MAX_CONTROL_BODY_BYTES = 1024 * 1024;

const RETRY_ROUTES: ReadonlyMap<string, { type: SimTaskType; noun: string }> = new Map([
  ['/v1/enterprise/push/trips/failed/retry', { type: 'PUSH_FAILED_TRIPS', noun: 'trips' }],
  ['/v1/enterprise/push/crashes/failed/retry', { type: 'PUSH_FAILED_CRASHES', noun: 'crashes' }],
]);

const HTML_ERROR_PAGE =
  '<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n' +
  '<body><h1>502 Bad Gateway</h1><p>The upstream server is unavailable.</p></body></html>\n';

class RequestBodyError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** Starts a simulator of DriveQuant's enterprise task API on a real HTTP port. */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  validateOptions(options);

  const apiKey = options.apiKey;
  const latencyMs = options.latencyMs ?? 0;
  const timeScale = options.timeScale ?? 1;
  const clock = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const tasks = new Map<string, SimTask>();
  const faults = createFaultTable();
  const requestCounts = new Map<string, number>();
  const lastRetryByType = new Map<SimTaskType, string>();
  const pendingPauses = new Set<() => void>();
  let totalRequests = 0;
  let closing: Promise<void> | undefined;

  function addTask(spec: SimTaskSpec = {}): string {
    return storeTask(createSimTask(parseSimTaskSpec(spec), clock(), random));
  }

  function storeTask(task: SimTask): string {
    if (tasks.has(task.taskId)) {
      throw new RangeError(`task ${task.taskId} already exists`);
    }

    tasks.set(task.taskId, task);

    return task.taskId;
  }

  // Resolves false when the wait was cut short: the client went away or close() began.
  function pause(ms: number, res: ServerResponse): Promise<boolean> {
    if (ms <= 0) {
      return Promise.resolve(!res.destroyed);
    }

    return new Promise((resolve) => {
      const finish = (waited: boolean): void => {
        clearTimeout(timer);
        res.off('close', cancel);
        pendingPauses.delete(cancel);
        resolve(waited);
      };
      const cancel = (): void => finish(false);
      const timer = setTimeout(() => finish(true), ms);
      res.once('close', cancel);
      pendingPauses.add(cancel);
    });
  }

  function isAuthorized(req: IncomingMessage): boolean {
    return req.headers[API_KEY_HEADER] === apiKey;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const taskId = path.startsWith(TASK_PATH_PREFIX)
      ? decodeSegment(path.slice(TASK_PATH_PREFIX.length))
      : undefined;
    if (taskId !== undefined && req.method === 'GET') {
      totalRequests += 1;
      requestCounts.set(taskId, (requestCounts.get(taskId) ?? 0) + 1);
    }

    if (!(await pause(latencyMs, res))) {
      return;
    }

    if (taskId !== undefined && req.method === 'GET') {
      await answerTask(req, res, taskId);
      return;
    }

    const retry = RETRY_ROUTES.get(path);
    if (retry !== undefined && req.method === 'POST') {
      answerRetry(req, res, retry.type, retry.noun);
      return;
    }

    if (options.control === true && path.startsWith('/_control/')) {
      await answerControl(req, res, path);
      return;
    }

    sendJson(res, 404, { error: 'Not Found' });
  }

  async function answerTask(req: IncomingMessage, res: ServerResponse, taskId: string) {
    const fault = faults.take(taskId);
    if (fault?.kind === 'latency' && !(await pause(fault.ms, res))) {
      return;
    }

    // Faults that replace the answer act in front of the API, like a failing proxy would.
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
        send(res, 200, JSON_TYPE, '{"taskId": "abc", ');
        return;
      case 'html':
        send(res, 200, 'text/html; charset=utf-8', HTML_ERROR_PAGE);
        return;
    }

    const { statusCode, body } = normalTaskAnswer(req, taskId);
    const text = statusCode === 200 ? shapeBody(body, fault) : JSON.stringify(body);
    if (fault?.kind === 'reset') {
      sendPartThenReset(res, statusCode, text);
    } else if (fault?.kind === 'drip') {
      await drip(res, statusCode, text, fault.intervalMs);
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

    return { statusCode: 200, body: renderTaskBody(task, taskStateAt(task, clock(), timeScale)) };
  }

  async function drip(res: ServerResponse, statusCode: number, text: string, intervalMs: number) {
    const bytes = Buffer.from(text);
    res.writeHead(statusCode, { 'content-type': JSON_TYPE, 'content-length': bytes.length });
    res.flushHeaders();
    for (let index = 0; index < bytes.length; index += 1) {
      if (!(await pause(intervalMs, res)) || res.destroyed) {
        return;
      }

      res.write(bytes.subarray(index, index + 1));
    }

    res.end();
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
      const value = parseJson(await readBody(req));
      if (target !== undefined) {
        faults.set(target, parseFault(value));
        sendEmpty(res, 204);
      } else {
        sendJson(res, 200, { taskId: addTask(parseSimTaskSpec(value)) });
      }
    } catch (error) {
      sendControlError(res, error);
    }
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        sendJson(res, 500, { error: error instanceof Error ? error.message : String(error) });
      } else {
        res.destroy();
      }
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
      if (closing === undefined) {
        for (const cancel of [...pendingPauses]) {
          cancel();
        }

        closing = new Promise((resolve) => server.close(() => resolve()));
        // server.closeAllConnections();
      }

      return closing;
    },
  };
}

interface JsonAnswer {
  statusCode: number;
  body: object;
}

function validateOptions(options: SimulatorOptions): void {
  if (options.apiKey === '') {
    throw new RangeError('apiKey: must not be empty');
  }

  if (options.latencyMs !== undefined && !(options.latencyMs >= 0)) {
    throw new RangeError(`latencyMs: ${options.latencyMs} is not a delay of 0 ms or more`);
  }

  if (options.timeScale !== undefined && !(options.timeScale > 0 && options.timeScale < Infinity)) {
    throw new RangeError(`timeScale: ${options.timeScale} is not a positive number`);
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

/** Applies the body-shaping faults (`fields`, `huge`) to a normal 200 body. */
function shapeBody(body: object, fault: Fault | undefined): string {
  if (fault?.kind === 'fields') {
    const shaped: Record<string, unknown> = { ...body, ...fault.patch };
    for (const field of fault.remove ?? []) {
      delete shaped[field];
    }

    return JSON.stringify(shaped);
  }

  if (fault?.kind === 'huge') {
    // The padding field goes last so the body stays one valid object of exactly that size.
    const bare = JSON.stringify({ ...body, padding: '' });
    const paddingBytes = fault.bytes - Buffer.byteLength(bare);

    return paddingBytes > 0 ? `${bare.slice(0, -2)}${'x'.repeat(paddingBytes)}"}` : bare;
  }

  return JSON.stringify(body);
}

function send(res: ServerResponse, statusCode: number, contentType: string, text: string): void {
  res.writeHead(statusCode, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendJson(res: ServerResponse, statusCode: number, body: unknown): void {
  send(res, statusCode, JSON_TYPE, JSON.stringify(body));
}

function sendEmpty(res: ServerResponse, statusCode: number): void {
  res.writeHead(statusCode);
  res.end();
}

function sendStatusFault(res: ServerResponse, statusCode: number, body: unknown): void {
  if (typeof body === 'string') {
    send(res, statusCode, 'text/plain; charset=utf-8', body);
    return;
  }

  sendJson(res, statusCode, body ?? { error: STATUS_CODES[statusCode] ?? `HTTP ${statusCode}` });
}

function sendRateLimit(res: ServerResponse, retryAfter: string | undefined): void {
  const text = JSON.stringify({ error: 'Too Many Requests' });
  res.writeHead(429, {
    'content-type': JSON_TYPE,
    'content-length': Buffer.byteLength(text),
    ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
  });
  res.end(text);
}

// Promises the whole body, sends half, then cuts the connection once that half is out.
function sendPartThenReset(res: ServerResponse, statusCode: number, text: string): void {
  const bytes = Buffer.from(text);
  res.writeHead(statusCode, { 'content-type': JSON_TYPE, 'content-length': bytes.length });
  res.write(bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2))), () => res.destroy());
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CONTROL_BODY_BYTES) {
        reject(new RequestBodyError(413, `body is larger than ${MAX_CONTROL_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }

      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RequestBodyError(400, `body is not JSON: ${(error as Error).message}`);
  }
}

function sendControlError(res: ServerResponse, error: unknown): void {
  if (error instanceof RequestBodyError) {
    sendJson(res, error.statusCode, { error: error.message });
  } else if (error instanceof TypeError) {
    sendJson(res, 400, { error: error.message });
  } else if (error instanceof RangeError) {
    sendJson(res, 409, { error: error.message });
  } else {
    throw error;
  }
}
