import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  API_KEY_HEADER,
  createDriveQuantClient,
  type DriveQuantClient,
  type DriveQuantClientOptions,
} from '../../src/drivequant-client.js';
import {
  type CycleResult,
  createPoller,
  type Poller,
  type PollerOptions,
  type PollSettings,
} from '../../src/poller.js';
import { createRateLimiter } from '../../src/rate-limiter.js';
import { Secret } from '../../src/secret.js';
import { TaskStore } from '../../src/task-state.js';
import {
  sendJson,
  startTestServer,
  type TestHandler,
  type TestServer,
} from '../helpers/http-server.js';
import { captureLogs, type LogCapture } from '../helpers/log-capture.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'poller-test-key-7c2a91';
const TASK_PATH = '/v1/enterprise/task/';
const SETTINGS: PollSettings = { intervalMs: 500, concurrency: 4, terminalRetentionMs: 60_000 };

let server: TestServer;
let logs: LogCapture;
let clients: DriveQuantClient[];
let pollers: Poller[];
// Requests the server is still answering, the most seen at once, and when each arrived.
let inFlight: number;
let maxInFlight: number;
let arrivalsMs: number[];

beforeEach(async () => {
  logs = captureLogs();
  clients = [];
  pollers = [];
  inFlight = 0;
  maxInFlight = 0;
  arrivalsMs = [];
  server = await startTestServer(() => undefined);
  serve((request, response) => answerTask(request, response, 'IN_PROGRESS'));
});

afterEach(async () => {
  await Promise.all(pollers.map((poller) => poller.stop(0)));
  for (const client of clients) {
    client.close();
  }
  await server.close();
});

/** Replaces the server's handler, counting the requests in flight around it. */
function serve(handler: TestHandler): void {
  server.handle((request, response) => {
    arrivalsMs.push(Date.now());
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    response.once('close', () => {
      inFlight -= 1;
    });
    handler(request, response);
  });
}

function taskIdOf(request: IncomingMessage): string {
  return decodeURIComponent((request.url ?? '').slice(TASK_PATH.length));
}

function answerTask(request: IncomingMessage, response: ServerResponse, status: string): void {
  const taskId = taskIdOf(request);
  sendJson(response, 200, {
    taskId,
    createdAt: '2024-12-09T14:14:17.574+0000',
    type: 'PUSH_FAILED_TRIPS',
    status,
    nbItems: 10,
    nbRemainingItems: status === 'IN_PROGRESS' ? 4 : 0,
  });
}

/** Ids of the tasks asked for, in order, from request number `from` on. */
function polledIds(from = 0): string[] {
  return server.requests.slice(from).map((request) => request.url.slice(TASK_PATH.length));
}

function createClient(overrides: Partial<DriveQuantClientOptions> = {}): DriveQuantClient {
  const client = createDriveQuantClient({
    baseUrl: server.url,
    apiKey: new Secret(API_KEY),
    timeoutMs: 10_000,
    retries: 0,
    maxRetryDelayMs: 50,
    maxSockets: 16,
    ...overrides,
  });
  clients.push(client);

  return client;
}

function createStore(taskIds: string[], now: () => number = Date.now): TaskStore {
  const store = new TaskStore({ maxTasks: 100, notFoundLimit: 3, now });
  for (const taskId of taskIds) {
    store.track(taskId, 'config');
  }

  return store;
}

function createTestPoller(
  store: TaskStore,
  settings: Partial<PollSettings> = {},
  extra: Partial<Omit<PollerOptions, 'store' | 'settings'>> = {},
): Poller {
  const poller = createPoller({
    logger: logs.logger,
    ...extra,
    store,
    client: extra.client ?? createClient(),
    settings: { ...SETTINGS, ...settings },
  });
  pollers.push(poller);

  return poller;
}

function logsWithMessage(message: string): Record<string, unknown>[] {
  return logs.records().filter((record) => record.msg === message);
}

describe('a cycle', () => {
  it('never has more than `concurrency` polls in flight at once', async () => {
    const taskIds = ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8'];
    serve((request, response) => {
      setTimeout(() => answerTask(request, response, 'IN_PROGRESS'), 50);
    });
    const poller = createTestPoller(createStore(taskIds), { concurrency: 3 });

    const result = await poller.runCycle();

    expect(result).toMatchObject({ succeeded: 8, failed: 0, deferred: 0 });
    expect(polledIds().sort()).toEqual(taskIds);
    expect(maxInFlight).toBe(3);
  });

  it('is shared by a second runCycle() call made while it runs', async () => {
    const held: (() => void)[] = [];
    serve((request, response) => {
      held.push(() => answerTask(request, response, 'IN_PROGRESS'));
    });
    const poller = createTestPoller(createStore(['a', 'b']));
    const first = poller.runCycle();
    await waitFor(() => server.requests.length === 2, { what: 'both polls' });

    const second = poller.runCycle();
    for (const answer of held) {
      answer();
    }
    const [firstResult, secondResult] = await Promise.all([first, second]);

    expect(second).toBe(first);
    expect(secondResult).toBe(firstResult);
    expect(firstResult.succeeded).toBe(2);
    expect(server.requests).toHaveLength(2);
  });

  it('no longer polls a task that answered COMPLETED, CANCELED or FAILED', async () => {
    const statuses: Record<string, string> = {
      done: 'COMPLETED',
      canceled: 'CANCELED',
      failed: 'FAILED',
      running: 'IN_PROGRESS',
    };
    serve((request, response) => answerTask(request, response, statuses[taskIdOf(request)] ?? ''));
    const store = createStore(Object.keys(statuses));
    const poller = createTestPoller(store);
    await poller.runCycle();
    const firstCycleRequests = server.requests.length;

    const result = await poller.runCycle();

    expect(firstCycleRequests).toBe(4);
    expect(polledIds(firstCycleRequests)).toEqual(['running']);
    expect(result.succeeded).toBe(1);
    expect(store.get('done')?.snapshot?.status).toBe('COMPLETED');
  });

  it('drops a finished task from the store once terminalRetentionMs has passed', async () => {
    let clockMs = Date.now();
    const store = createStore(['done', 'running'], () => clockMs);
    serve((request, response) => {
      answerTask(request, response, taskIdOf(request) === 'done' ? 'COMPLETED' : 'IN_PROGRESS');
    });
    const poller = createTestPoller(store, { terminalRetentionMs: 60_000 });
    await poller.runCycle();

    clockMs += 59_999;
    await poller.runCycle();
    const keptJustBefore = store.get('done') !== undefined;
    clockMs += 1;
    await poller.runCycle();

    expect(keptJustBefore).toBe(true);
    expect(store.get('done')).toBeUndefined();
    expect(store.isRetired('done')).toBe(true);
    expect(store.list().map((record) => record.taskId)).toEqual(['running']);
    expect(logsWithMessage('dropped finished tasks after their retention')).toEqual([
      expect.objectContaining({ level: 'info', count: 1 }),
    ]);
  });
});

describe('the cycle deadline', () => {
  it('aborts a hung poll as a timeout at 90% of the interval and defers the tasks not started', async () => {
    serve((request, response) => {
      if (taskIdOf(request) !== 'hung') {
        answerTask(request, response, 'IN_PROGRESS');
      }
    });
    const store = createStore(['hung', 'later-1', 'later-2']);
    const poller = createTestPoller(store, { intervalMs: 400, concurrency: 1 });

    const result = await poller.runCycle();

    expect(result).toMatchObject({ succeeded: 0, failed: 1, deferred: 2 });
    expect(result.durationMs).toBeGreaterThanOrEqual(355);
    expect(result.durationMs).toBeLessThan(470);
    expect(store.get('hung')?.errorCounts).toEqual(new Map([['timeout', 1]]));
    expect(store.get('later-1')?.errorCounts.size).toBe(0);
    expect(polledIds()).toEqual(['hung']);
    await waitFor(() => inFlight === 0, { what: 'the hung request to be closed' });
    expect(
      logsWithMessage('poll cycle reached its deadline; some tasks wait for the next cycle'),
    ).toEqual([expect.objectContaining({ level: 'warn', deferred: 2 })]);
  });
});

describe('scheduling', () => {
  it('start() runs a cycle at once, then one every interval', async () => {
    const cycles: CycleResult[] = [];
    const skipped: number[] = [];
    const poller = createTestPoller(
      createStore(['a']),
      { intervalMs: 200 },
      { onCycle: (result) => cycles.push(result), onSkippedCycles: (count) => skipped.push(count) },
    );

    const startedMs = Date.now();
    poller.start();
    await waitFor(() => cycles.length >= 3, { what: 'three cycles' });

    const gapsMs = cycles
      .slice(1, 3)
      .map((cycle, index) => cycle.startedMs - (cycles[index]?.startedMs ?? 0));
    expect((cycles[0]?.startedMs ?? 0) - startedMs).toBeLessThan(100);
    for (const gapMs of gapsMs) {
      expect(gapMs).toBeGreaterThanOrEqual(190);
      expect(gapMs).toBeLessThan(450);
    }
    expect(skipped).toEqual([]);
    expect(poller.ready).toBe(true);
  });

  it('delays the next start after a cycle that overran, and reports the skipped starts', async () => {
    serve((request, response) => {
      // The first poll hangs until the deadline; the later ones are answered.
      if (server.requests.length > 1) {
        answerTask(request, response, 'IN_PROGRESS');
      }
    });
    const cycles: CycleResult[] = [];
    const skipped: number[] = [];
    const client = createClient();
    const poller = createTestPoller(
      createStore(['a']),
      { intervalMs: 1000 },
      {
        client,
        onCycle: (result) => cycles.push(result),
        onSkippedCycles: (count) => skipped.push(count),
      },
    );
    poller.start();
    await waitFor(() => server.requests.length === 1, { what: 'the first poll' });

    // The deadline is 90% of the interval the cycle started with (900 ms), so a reload to
    // 300 ms makes this cycle overrun three starts without stalling the test process.
    poller.reconfigure(client, { ...SETTINGS, intervalMs: 300 });
    await waitFor(() => cycles.length >= 2, { what: 'the cycle after the overrun' });

    const [overrun, next] = cycles as [CycleResult, CycleResult];
    const overrunEndMs = overrun.startedMs + overrun.durationMs;
    expect(overrun.durationMs).toBeGreaterThanOrEqual(880);
    expect(skipped).toEqual([3]);
    expect(arrivalsMs.filter((arrivalMs) => arrivalMs <= overrunEndMs)).toHaveLength(1);
    // Chained, not stacked: the next start is the first slot of the interval after the overrun.
    expect(next.startedMs - overrun.startedMs).toBeGreaterThanOrEqual(1190);
    expect(next.startedMs - overrun.startedMs).toBeLessThan(1500);
    expect(logsWithMessage('poll cycle overran its interval')).toEqual([
      expect.objectContaining({ level: 'warn', skipped: 3 }),
    ]);
  });

  it('reconfigure() to a shorter interval brings the next cycle forward', async () => {
    const cycles: CycleResult[] = [];
    const poller = createTestPoller(
      createStore(['a']),
      { intervalMs: 60_000 },
      { onCycle: (result) => cycles.push(result) },
    );
    poller.start();
    await waitFor(() => cycles.length === 1, { what: 'the first cycle' });

    const reconfiguredMs = Date.now();
    const nextClient = createClient({ apiKey: new Secret('rotated-key-0d4e') });
    poller.reconfigure(nextClient, { ...SETTINGS, intervalMs: 200 });
    await waitFor(() => cycles.length === 2, {
      timeoutMs: 3000,
      what: 'the cycle brought forward',
    });

    const delayMs = (cycles[1]?.startedMs ?? 0) - reconfiguredMs;
    expect(delayMs).toBeGreaterThanOrEqual(190);
    expect(delayMs).toBeLessThan(1000);
    expect(server.requests[1]?.headers[API_KEY_HEADER]).toBe('rotated-key-0d4e');
  });
});

describe('stop(graceMs)', () => {
  it('aborts a hung poll after the grace without counting it as an error or a deadline', async () => {
    serve(() => undefined);
    const cycles: CycleResult[] = [];
    const store = createStore(['hung']);
    const poller = createTestPoller(
      store,
      { intervalMs: 2000 },
      { onCycle: (result) => cycles.push(result) },
    );
    poller.start();
    await waitFor(() => inFlight === 1, { what: 'the hung poll' });

    const stoppingMs = Date.now();
    await poller.stop(150);
    const stopMs = Date.now() - stoppingMs;

    expect(stopMs).toBeGreaterThanOrEqual(140);
    expect(stopMs).toBeLessThan(600);
    expect(store.get('hung')?.errorCounts.size).toBe(0);
    expect(store.get('hung')?.lastError).toBeUndefined();
    expect(cycles).toEqual([expect.objectContaining({ failed: 0, deferred: 1 })]);
    expect(logs.text()).not.toMatch(/deadline/);
    await waitFor(() => inFlight === 0, { what: 'the hung request to be closed' });
  });
});

describe('up in the CycleResult', () => {
  it.each([
    [200, true],
    [404, true],
    [401, false],
  ])('after an answer with HTTP %i is %s', async (statusCode, up) => {
    serve((request, response) => {
      if (statusCode === 200) {
        answerTask(request, response, 'IN_PROGRESS');
      } else {
        sendJson(response, statusCode, { error: `HTTP ${statusCode}` });
      }
    });
    const poller = createTestPoller(createStore(['a']));

    const result = await poller.runCycle();

    expect(result.up).toBe(up);
  });

  it('is false when nothing answered', async () => {
    const gone = await startTestServer(() => undefined);
    await gone.close();
    const store = createStore(['a']);
    const poller = createTestPoller(store, {}, { client: createClient({ baseUrl: gone.url }) });

    const result = await poller.runCycle();

    expect(result).toMatchObject({ failed: 1, up: false });
    expect(store.get('a')?.errorCounts).toEqual(new Map([['network', 1]]));
  });

  it('is undefined when there was nothing to poll', async () => {
    const poller = createTestPoller(createStore([]));

    const result = await poller.runCycle();

    expect(result.up).toBeUndefined();
    expect(server.requests).toHaveLength(0);
  });
});

describe('logs', () => {
  it('warn at the first failure of a task, debug at the same failure again, info at recovery', async () => {
    let statusCode = 503;
    serve((request, response) => {
      if (statusCode === 200) {
        answerTask(request, response, 'IN_PROGRESS');
      } else {
        sendJson(response, statusCode, { error: 'unavailable' });
      }
    });
    const poller = createTestPoller(createStore(['flaky']));

    await poller.runCycle();
    await poller.runCycle();
    statusCode = 200;
    await poller.runCycle();

    const taskLines = logs
      .records()
      .filter((record) => record.taskId === 'flaky' && record.msg !== 'polled task')
      .map(({ level, msg, reason }) => ({ level, msg, reason }));
    expect(taskLines).toEqual([
      { level: 'warn', msg: 'task poll failed', reason: 'server_error' },
      { level: 'debug', msg: 'task poll failed again', reason: 'server_error' },
      { level: 'info', msg: 'task poll recovered', reason: undefined },
    ]);
  });
});

describe('with a rate limiter', () => {
  it('starts no more than the configured number of polls in any one second', async () => {
    const taskIds = ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8'];
    const client = createClient({ rateLimiter: createRateLimiter({ requestsPerSecond: 5 }) });
    const poller = createTestPoller(
      createStore(taskIds),
      { intervalMs: 5000, concurrency: 8 },
      { client },
    );

    const result = await poller.runCycle();

    // Six starts in a row must span a second; 50 ms allow for the network between the
    // limiter and the server's clock.
    const spansMs = arrivalsMs
      .slice(5)
      .map((arrivalMs, index) => arrivalMs - (arrivalsMs[index] ?? 0));
    expect(result.succeeded).toBe(8);
    expect(spansMs).toHaveLength(3);
    expect(Math.min(...spansMs)).toBeGreaterThan(950);
  });
});
