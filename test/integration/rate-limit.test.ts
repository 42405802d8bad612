import { afterEach, describe, expect, it } from 'vitest';
import { createDriveQuantClient } from '../../src/drivequant-client.js';
import { createRateLimiter } from '../../src/rate-limiter.js';
import { Secret } from '../../src/secret.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { UpstreamError } from '../../src/upstream-error.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'rate-limit-test-key';

let simulator: Simulator | undefined;
let started: ExporterUnderTest | undefined;

afterEach(async () => {
  await started?.close();
  await simulator?.close();
  started = undefined;
  simulator = undefined;
});

/** Starts an exporter polling `count` simulated tasks at most `rate` requests per second. */
async function startRateLimited(count: number, rate: number) {
  simulator = await startSimulator({ apiKey: API_KEY });
  const taskIds = simulator.addTasks(count, { items: 500, pendingMs: 0, itemsPerSecond: 1 });
  started = await startExporterUnderTest({
    simulator,
    apiKey: API_KEY,
    yaml: [
      'poll:',
      '  interval: 1h',
      '  concurrency: 8',
      `  max_requests_per_second: ${rate}`,
      'tasks:',
      ...taskIds.map((id) => `  - ${id}`),
    ].join('\n'),
  });
  await waitFor(() => started?.exporter.poller.ready, { what: 'the first poll cycle' });

  return started.exporter;
}

describe('poll.max_requests_per_second', () => {
  it('spreads the polls of a cycle one 1/rate apart instead of sending them at once', async () => {
    const exporter = await startRateLimited(11, 50);

    const cycle = await exporter.poller.runCycle();

    // Ten gaps of 20 ms: timers only ever fire late, never early.
    expect(cycle.succeeded).toBe(11);
    expect(cycle.durationMs).toBeGreaterThanOrEqual(195);
    expect(cycle.durationMs).toBeLessThan(5000);
  });

  it('counts retries against the rate like first attempts', async () => {
    simulator = await startSimulator({ apiKey: API_KEY });
    const taskId = simulator.addTask();
    simulator.setFault(taskId, { kind: 'status', code: 503, times: 1 });
    const limiter = createRateLimiter({ requestsPerSecond: 1000 });
    const turns: number[] = [];
    const client = createDriveQuantClient({
      baseUrl: simulator.url,
      apiKey: new Secret(API_KEY),
      timeoutMs: 2000,
      retries: 1,
      maxRetryDelayMs: 10,
      maxSockets: 1,
      rateLimiter: {
        acquire: (signal) => {
          turns.push(simulator?.requestCount() ?? -1);
          return limiter.acquire(signal);
        },
        setRate: limiter.setRate,
        waiting: 0,
      },
    });

    const snapshot = await client.getTask(taskId);
    client.close();

    expect(snapshot.taskId).toBe(taskId);
    expect(turns).toEqual([0, 1]);
  });

  it('gives up its turn and fails as a timeout when the cycle ends first', async () => {
    simulator = await startSimulator({ apiKey: API_KEY });
    const taskId = simulator.addTask();
    const client = createDriveQuantClient({
      baseUrl: simulator.url,
      apiKey: new Secret(API_KEY),
      timeoutMs: 2000,
      retries: 0,
      maxRetryDelayMs: 10,
      maxSockets: 1,
      rateLimiter: createRateLimiter({ requestsPerSecond: 0.1 }),
    });
    const controller = new AbortController();
    await client.getTask(taskId, controller.signal);

    const second = client.getTask(taskId, controller.signal).catch((error: UpstreamError) => error);
    controller.abort();
    const error = await second;
    client.close();

    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe('TIMEOUT');
    expect(simulator.requestCount(taskId)).toBe(1);
  });
});
