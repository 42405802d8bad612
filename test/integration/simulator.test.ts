import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Fault } from '../../src/simulator/faults.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';

const API_KEY = 'test-key';
const TASK_PATH = '/v1/enterprise/task/';
const startMs = Date.UTC(2025, 2, 1, 12, 0, 0, 0);

let sim: Simulator;
let nowMs: number;

beforeEach(async () => {
  nowMs = startMs;
  sim = await startSimulator({ apiKey: API_KEY, now: () => nowMs });
});

afterEach(async () => {
  await sim.close();
});

function sleep(ms: number): Promise<string> {
  return new Promise((resolve) => setTimeout(() => resolve('timed out'), ms));
}

function getTask(taskId: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${sim.url}${TASK_PATH}${taskId}`, {
    ...init,
    headers: { 'x-dq-enterprise-api-key': API_KEY, ...init.headers },
  });
}

function postRetry(kind: 'trips' | 'crashes', apiKey = API_KEY): Promise<Response> {
  return fetch(`${sim.url}/v1/enterprise/push/${kind}/failed/retry`, {
    method: 'POST',
    headers: { 'x-dq-enterprise-api-key': apiKey },
  });
}

function addSteadyTask(): string {
  return sim.addTask({
    items: 100,
    pendingMs: 5000,
    itemsPerSecond: 10,
    createdAtMs: startMs,
    type: 'PUSH_FAILED_CRASHES',
  });
}

async function withFault(fault: Fault): Promise<{ taskId: string; response: Response }> {
  const taskId = addSteadyTask();
  sim.setFault(taskId, fault);

  return { taskId, response: await getTask(taskId) };
}

describe('GET /v1/enterprise/task/{taskId}', () => {
  it('answers 401 without the API key', async () => {
    const taskId = addSteadyTask();

    const response = await fetch(`${sim.url}${TASK_PATH}${taskId}`);

    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'Unauthorized' });
  });

  it('answers 401 with a wrong API key', async () => {
    const taskId = addSteadyTask();

    const response = await getTask(taskId, { headers: { 'x-dq-enterprise-api-key': 'nope' } });

    expect(response.status).toBe(401);
  });

  it('answers 404 for an unknown task', async () => {
    const response = await getTask('675303083100000000000000');

    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/json');
  });

  it('answers DriveQuant JSON with exactly the documented fields', async () => {
    const taskId = addSteadyTask();
    nowMs = startMs + 10_000;

    const response = await getTask(taskId);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.text()).toBe(
      `{"taskId":"${taskId}","createdAt":"2025-03-01T12:00:00.000+0000",` +
        '"type":"PUSH_FAILED_CRASHES","status":"IN_PROGRESS","nbItems":100,"nbRemainingItems":50}',
    );
  });

  it('follows the clock from PENDING to COMPLETED, with completedAt only at the end', async () => {
    const taskId = addSteadyTask();

    const pending = await (await getTask(taskId)).json();
    nowMs = startMs + 12_000;
    const inProgress = await (await getTask(taskId)).json();
    nowMs = startMs + 60_000;
    const completed = await (await getTask(taskId)).json();

    expect(pending).toMatchObject({ status: 'PENDING', nbRemainingItems: 100 });
    expect(pending).not.toHaveProperty('completedAt');
    expect(inProgress).toMatchObject({ status: 'IN_PROGRESS', nbRemainingItems: 30 });
    expect(inProgress).not.toHaveProperty('completedAt');
    expect(completed).toMatchObject({
      status: 'COMPLETED',
      nbRemainingItems: 0,
      completedAt: '2025-03-01T12:00:15.000+0000',
    });
  });

  it('answers 404 once a task is removed', async () => {
    const taskId = addSteadyTask();

    sim.removeTask(taskId);

    expect((await getTask(taskId)).status).toBe(404);
    expect(sim.taskIds()).not.toContain(taskId);
  });

  it('counts requests per task and in all', async () => {
    const first = addSteadyTask();
    const second = addSteadyTask();

    await getTask(first);
    await getTask(first);
    await getTask(second);

    expect(sim.requestCount(first)).toBe(2);
    expect(sim.requestCount(second)).toBe(1);
    expect(sim.requestCount()).toBe(3);
  });

  it('answers 404 JSON to any other path or method', async () => {
    const taskId = addSteadyTask();

    const unknownPath = await fetch(`${sim.url}/v1/enterprise/tasks`);
    const wrongMethod = await getTask(taskId, { method: 'DELETE' });

    expect(unknownPath.status).toBe(404);
    expect(await unknownPath.json()).toEqual({ error: 'Not Found' });
    expect(wrongMethod.status).toBe(404);
  });
});

describe('bulk seeding', () => {
  it('adds ten thousand tasks that all answer', async () => {
    const ids = sim.addTasks(10_000);

    const response = await getTask(ids[9_999] ?? '');

    expect(new Set(ids).size).toBe(10_000);
    expect(sim.taskIds()).toHaveLength(10_000);
    expect(response.status).toBe(200);
  });

  it('refuses a task id that already exists', () => {
    sim.addTask({ taskId: 'abc' });

    expect(() => sim.addTask({ taskId: 'abc' })).toThrow('task abc already exists');
  });
});

describe('POST /v1/enterprise/push/{trips,crashes}/failed/retry', () => {
  it('creates a task of the matching type and answers its id and size', async () => {
    const response = await postRetry('trips');
    const created = (await response.json()) as { taskId: string; nbItems: number };
    const task = await (await getTask(created.taskId)).json();

    expect(response.status).toBe(200);
    expect(Object.keys(created)).toEqual(['taskId', 'nbItems']);
    expect(created.taskId).toMatch(/^[0-9a-f]{24}$/);
    expect(task).toMatchObject({ type: 'PUSH_FAILED_TRIPS', nbItems: created.nbItems });
  });

  it('refuses a second retry of the same type while the first runs', async () => {
    const first = (await (await postRetry('trips')).json()) as { taskId: string };

    const second = await postRetry('trips');

    expect(second.status).toBe(409);
    expect(await second.json()).toEqual({
      error: 'A retry of failed trips is already in progress',
      taskId: first.taskId,
    });
  });

  it('lets each type run one retry of its own', async () => {
    await postRetry('trips');

    const crashes = await postRetry('crashes');
    const crashesAgain = await postRetry('crashes');

    expect(crashes.status).toBe(200);
    expect(crashesAgain.status).toBe(409);
    expect(await crashesAgain.json()).toMatchObject({
      error: 'A retry of failed crashes is already in progress',
    });
  });

  it('accepts a new retry once the previous one has ended', async () => {
    const first = (await (await postRetry('crashes')).json()) as { taskId: string };
    nowMs = startMs + 24 * 3_600_000;

    const second = await postRetry('crashes');
    const created = (await second.json()) as { taskId: string };

    expect(second.status).toBe(200);
    expect(created.taskId).not.toBe(first.taskId);
  });

  it('answers 401 without the API key and creates nothing', async () => {
    const response = await postRetry('trips', 'wrong');

    expect(response.status).toBe(401);
    expect(sim.taskIds()).toEqual([]);
  });
});

describe('faults on the task endpoint', () => {
  it('latency delays a normal answer', async () => {
    const started = performance.now();

    const { response } = await withFault({ kind: 'latency', ms: 150 });

    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(await response.json()).toMatchObject({ status: 'PENDING' });
  });

  it('hang never answers, so a client with a 200 ms timeout gives up', async () => {
    const taskId = addSteadyTask();
    sim.setFault(taskId, { kind: 'hang' });
    const started = performance.now();

    const attempt = getTask(taskId, { signal: AbortSignal.timeout(200) });

    await expect(attempt).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('status answers the given code with a default JSON error', async () => {
    const { response } = await withFault({ kind: 'status', code: 503 });

    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: 'Service Unavailable' });
  });

  it('status sends a string body verbatim', async () => {
    const { response } = await withFault({ kind: 'status', code: 500, body: 'boom' });

    expect(response.status).toBe(500);
    expect(await response.text()).toBe('boom');
  });

  it.each(['7', 'Wed, 21 Oct 2015 07:28:00 GMT'])(
    'rate-limit answers 429 with Retry-After "%s" verbatim',
    async (retryAfter) => {
      const { response } = await withFault({ kind: 'rate-limit', retryAfter });

      expect(response.status).toBe(429);
      expect(response.headers.get('retry-after')).toBe(retryAfter);
    },
  );

  it('reset cuts the connection part-way through the body', async () => {
    const { response } = await withFault({ kind: 'reset' });

    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it('malformed-json answers 200 with truncated JSON', async () => {
    const { response } = await withFault({ kind: 'malformed-json' });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    await expect(response.json()).rejects.toThrow(SyntaxError);
  });

  it('html answers 200 with an HTML page', async () => {
    const { response } = await withFault({ kind: 'html' });

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await response.text()).toContain('<html>');
  });

  it('fields overrides and removes fields of the normal body', async () => {
    const { taskId, response } = await withFault({
      kind: 'fields',
      patch: { nbItems: '100', nbRemainingItems: -1, status: null, extra: true },
      remove: ['createdAt'],
    });

    expect(await response.json()).toEqual({
      taskId,
      type: 'PUSH_FAILED_CRASHES',
      status: null,
      nbItems: '100',
      nbRemainingItems: -1,
      extra: true,
    });
  });

  it('huge answers valid JSON of exactly the asked size', async () => {
    const { taskId, response } = await withFault({ kind: 'huge', bytes: 3_000_000 });

    const text = await response.text();

    expect(Buffer.byteLength(text)).toBe(3_000_000);
    expect(JSON.parse(text)).toMatchObject({ taskId, status: 'PENDING' });
  });

  it('drip sends the normal body one byte at a time', async () => {
    const { taskId, response } = await withFault({ kind: 'drip', intervalMs: 2 });
    const started = performance.now();
    const chunks: Uint8Array[] = [];

    for await (const chunk of response.body ?? []) {
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');

    expect(chunks.length).toBeGreaterThan(text.length / 2);
    expect(performance.now() - started).toBeGreaterThanOrEqual(text.length);
    expect(JSON.parse(text)).toMatchObject({ taskId, status: 'PENDING' });
  });

  it('clears itself after the given number of requests', async () => {
    const taskId = addSteadyTask();
    sim.setFault(taskId, { kind: 'status', code: 500, times: 2 });

    const statuses = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      statuses.push((await getTask(taskId)).status);
    }

    expect(statuses).toEqual([500, 500, 200]);
    expect(sim.requestCount(taskId)).toBe(3);
  });

  it('applies a task fault before the global one, and the global one to the rest', async () => {
    const faulty = addSteadyTask();
    const other = addSteadyTask();
    sim.setFault('*', { kind: 'status', code: 502 });
    sim.setFault(faulty, { kind: 'status', code: 404 });

    const faultyStatus = (await getTask(faulty)).status;
    const otherStatus = (await getTask(other)).status;
    sim.setFault('*', undefined);
    const clearedStatus = (await getTask(other)).status;

    expect([faultyStatus, otherStatus, clearedStatus]).toEqual([404, 502, 200]);
  });

  it('refuses an invalid fault', () => {
    expect(() => sim.setFault('*', { kind: 'huge', bytes: -1 })).toThrow('invalid fault');
  });
});

describe('control endpoint', () => {
  async function putFault(target: string, body: string, base = sim.url): Promise<Response> {
    return fetch(`${base}/_control/faults/${target}`, { method: 'PUT', body });
  }

  it('is off by default', async () => {
    const taskId = addSteadyTask();

    const response = await putFault('*', JSON.stringify({ kind: 'status', code: 500 }));

    expect(response.status).toBe(404);
    expect((await getTask(taskId)).status).toBe(200);
  });

  describe('when enabled', () => {
    let controlled: Simulator;

    beforeEach(async () => {
      controlled = await startSimulator({ apiKey: API_KEY, control: true });
    });

    afterEach(async () => {
      await controlled.close();
    });

    async function getControlledTask(taskId: string): Promise<Response> {
      return fetch(`${controlled.url}${TASK_PATH}${taskId}`, {
        headers: { 'x-dq-enterprise-api-key': API_KEY },
      });
    }

    it('adds a task from a spec', async () => {
      const response = await fetch(`${controlled.url}/_control/tasks`, {
        method: 'POST',
        body: JSON.stringify({
          taskId: 'cafe',
          items: 7,
          frozen: { status: 'X', remainingItems: 3 },
        }),
      });

      expect(await response.json()).toEqual({ taskId: 'cafe' });
      expect(await (await getControlledTask('cafe')).json()).toMatchObject({
        status: 'X',
        nbItems: 7,
        nbRemainingItems: 3,
      });
    });

    it('sets and deletes a fault', async () => {
      const taskId = controlled.addTask();

      const put = await putFault(taskId, '{"kind":"status","code":503}', controlled.url);
      const faulted = (await getControlledTask(taskId)).status;
      const deleted = await fetch(`${controlled.url}/_control/faults/${taskId}`, {
        method: 'DELETE',
      });
      const cleared = (await getControlledTask(taskId)).status;

      expect([put.status, faulted, deleted.status, cleared]).toEqual([204, 503, 204, 200]);
    });

    it.each([
      ['bad JSON', '{"kind": ', 'body is not JSON'],
      ['an unknown kind', '{"kind":"explode"}', 'invalid fault'],
      ['a bad field', '{"kind":"latency","ms":"soon"}', 'ms'],
    ])('answers 400 to %s', async (_name, body, message) => {
      const response = await putFault('*', body, controlled.url);

      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toContain(message);
    });

    it('answers 400 to a task spec that does not hold together', async () => {
      const response = await fetch(`${controlled.url}/_control/tasks`, {
        method: 'POST',
        body: '{"items":10,"outcome":"FAILED","stopAtRemaining":11}',
      });

      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        error: 'stopAtRemaining: 11 is more than items (10)',
      });
    });

    it('answers 413 to a body over 1 MiB', async () => {
      const response = await putFault('*', `"${'x'.repeat(1024 * 1024)}"`, controlled.url);

      expect(response.status).toBe(413);
    });

    it('answers 409 to a task id that already exists', async () => {
      controlled.addTask({ taskId: 'taken' });

      const response = await fetch(`${controlled.url}/_control/tasks`, {
        method: 'POST',
        body: '{"taskId":"taken"}',
      });

      expect(response.status).toBe(409);
    });
  });
});

describe('close', () => {
  it('returns promptly with a hung request and idle keep-alive sockets', async () => {
    const taskId = addSteadyTask();
    await (await getTask(taskId)).text();
    sim.setFault(taskId, { kind: 'hang' });
    const hung = getTask(taskId).then(
      () => 'answered',
      () => 'failed',
    );
    while (sim.requestCount(taskId) < 2) {
      await sleep(5);
    }
    const started = performance.now();

    const closed = await Promise.race([sim.close().then(() => 'closed'), sleep(1000)]);

    expect(closed).toBe('closed');
    expect(performance.now() - started).toBeLessThan(500);
    expect(await hung).toBe('failed');
  });

  it('cuts a latency wait short', async () => {
    const taskId = addSteadyTask();
    sim.setFault(taskId, { kind: 'latency', ms: 60_000 });
    const pending = getTask(taskId).catch(() => undefined);
    while (sim.requestCount(taskId) < 1) {
      await sleep(5);
    }
    const started = performance.now();

    await sim.close();
    await pending;

    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('startSimulator', () => {
  it('fails when the port is taken', async () => {
    const port = Number(new URL(sim.url).port);

    await expect(startSimulator({ apiKey: API_KEY, port })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  });

  it('applies a fixed latency to every answer', async () => {
    const slow = await startSimulator({ apiKey: API_KEY, latencyMs: 100 });
    const started = performance.now();

    const response = await fetch(`${slow.url}/nowhere`);
    await slow.close();

    expect(response.status).toBe(404);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });
});
