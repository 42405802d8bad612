import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli.js';
import { type RunningExporter, startExporter } from '../../src/main.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { KNOWN_STATUSES } from '../../src/task-snapshot.js';
import { DOCUMENTED_TASK, DOCUMENTED_TASK_ID } from '../helpers/documented-task.js';
import { sendJson, startTestServer, type TestServer } from '../helpers/http-server.js';
import { captureLogs, type LogCapture } from '../helpers/log-capture.js';
import { findSamples, type Scrape, sampleValue, scrapeMetrics } from '../helpers/scrape.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/** The per-task families of SPEC.md that a polled task has. */
const SNAPSHOT_FAMILIES = [
  'drivequant_task_status',
  'drivequant_task_items',
  'drivequant_task_remaining_items',
  'drivequant_task_created_timestamp_seconds',
  'drivequant_task_completed_timestamp_seconds',
  'drivequant_task_completion_latency_seconds',
];

interface Started {
  exporter: RunningExporter;
  logs: LogCapture;
  dir: TempDir;
}

/** Poll timing of a test exporter, as config durations. */
interface Timing {
  timeout: string;
  interval: string;
}

/** Writes a config for `baseUrl` in a temp dir and starts the exporter in-process. */
async function startAgainst(
  baseUrl: string,
  apiKey: string,
  tasks: string[],
  timing: Timing,
): Promise<Started> {
  const dir = await createTempDir();
  const configPath = await dir.write(
    'exporter.yaml',
    [
      'drivequant:',
      `  base_url: ${baseUrl}`,
      '  api_key: ${TEST_API_KEY}',
      `  timeout: ${timing.timeout}`,
      '  retries: 0',
      'poll:',
      `  interval: ${timing.interval}`,
      'storage:',
      `  path: ${dir.path}/data`,
      'tasks:',
      ...tasks.map((taskId) => `  - ${taskId}`),
      '',
    ].join('\n'),
  );
  const command = parseCommandLine([
    `--config.file=${configPath}`,
    '--web.listen-address=127.0.0.1:0',
  ]);
  if (command.kind !== 'run') {
    throw new Error('unexpected command');
  }
  const logs = captureLogs({ level: 'debug', format: 'json' });
  const exporter = await startExporter({
    flags: command.flags,
    logger: logs.logger,
    env: { TEST_API_KEY: apiKey },
  });

  return { exporter, logs, dir };
}

async function stop(started: Started | undefined): Promise<void> {
  await started?.exporter.close();
  await started?.dir.remove();
}

/** Every series of one task, as `name{labels} value` lines without task_id, sorted. */
function seriesOf(scrape: Scrape, taskId: string): string[] {
  return scrape.samples
    .filter((sample) => sample.labels.task_id === taskId)
    .map((sample) => {
      const { task_id: _taskId, ...rest } = sample.labels;
      const labels = Object.entries(rest)
        .map(([key, value]) => `${key}="${value}"`)
        .join(',');
      return `${sample.name}{${labels}} ${sample.value}`;
    })
    .sort();
}

function errorCount(scrape: Scrape, taskId: string, reason: string): number {
  return sampleValue(scrape, 'drivequant_task_poll_errors_total', { task_id: taskId, reason }) ?? 0;
}

async function get(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);

  return { response, text: await response.text() };
}

describe('against the bundled simulator', () => {
  const apiKey = `sim-key-${randomBytes(8).toString('hex')}`;
  const ids = {
    completed: '6762f1a0e4b0c8d2a1f30001',
    onHold: 'task-on-hold',
    unauthorized: 'task-401',
    notFound: 'task-404',
    serverError: 'task-500',
    timeout: 'task-timeout',
    malformed: 'task-malformed',
  };
  const faulty = [ids.unauthorized, ids.notFound, ids.serverError, ids.timeout, ids.malformed];
  let sim: Simulator;
  let started: Started | undefined;
  let firstScrape: Scrape;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey });
    sim.addTask({
      taskId: DOCUMENTED_TASK_ID,
      type: 'PUSH_FAILED_TRIPS',
      items: 321,
      createdAtMs: Date.UTC(2024, 11, 9, 14, 14, 17, 574),
      frozen: { status: 'IN_PROGRESS', remainingItems: 12 },
    });
    sim.addTask({
      taskId: ids.completed,
      type: 'PUSH_FAILED_CRASHES',
      items: 128,
      createdAtMs: Date.UTC(2024, 11, 9, 15, 2, 40, 118),
      frozen: {
        status: 'COMPLETED',
        remainingItems: 0,
        completedAtMs: Date.UTC(2024, 11, 9, 15, 15, 14, 439),
      },
    });
    sim.addTask({
      taskId: ids.onHold,
      items: 50,
      createdAtMs: Date.UTC(2025, 0, 2),
      frozen: { status: 'on hold', remainingItems: 50 },
    });
    for (const [index, taskId] of faulty.entries()) {
      sim.addTask({
        taskId,
        items: 100 + index,
        createdAtMs: Date.UTC(2025, 0, 1),
        frozen: { status: 'IN_PROGRESS', remainingItems: 40 + index },
      });
    }

    // The hang fault costs one timeout per cycle: short enough to count it quickly, long
    // enough that a loaded machine does not time out the good answers.
    const tasks = [DOCUMENTED_TASK_ID, ids.completed, ids.onHold, ...faulty];
    started = await startAgainst(sim.url, apiKey, tasks, { timeout: '500ms', interval: '1s' });
    const url = started.exporter.url;
    firstScrape = await waitFor(
      async () => {
        const scrape = await scrapeMetrics(url);
        const polled = [DOCUMENTED_TASK_ID, ids.completed, ids.onHold, ...faulty].every(
          (taskId) =>
            sampleValue(scrape, 'drivequant_task_items', { task_id: taskId }) !== undefined,
        );
        return polled && scrape;
      },
      { what: 'every task polled once' },
    );
  });

  afterAll(async () => {
    await stop(started);
    await sim?.close();
  });

  it('exports exactly the documented series and values for the documented example', () => {
    const series = seriesOf(firstScrape, DOCUMENTED_TASK_ID);

    const lastSuccess = sampleValue(
      firstScrape,
      'drivequant_task_last_poll_success_timestamp_seconds',
      {
        task_id: DOCUMENTED_TASK_ID,
      },
    );
    expect(series).toEqual(
      [
        ...KNOWN_STATUSES.map(
          (status) =>
            `drivequant_task_status{task_type="PUSH_FAILED_TRIPS",status="${status}"} ${status === 'IN_PROGRESS' ? 1 : 0}`,
        ),
        'drivequant_task_items{task_type="PUSH_FAILED_TRIPS"} 321',
        'drivequant_task_remaining_items{task_type="PUSH_FAILED_TRIPS"} 12',
        'drivequant_task_created_timestamp_seconds{task_type="PUSH_FAILED_TRIPS"} 1733753657.574',
        `drivequant_task_last_poll_success_timestamp_seconds{} ${lastSuccess}`,
      ].sort(),
    );
    expect(lastSuccess).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('exports a completed task with its completion time and latency to the millisecond', () => {
    const labels = { task_id: ids.completed };

    const latency = sampleValue(firstScrape, 'drivequant_task_completion_latency_seconds', labels);
    const completed = sampleValue(
      firstScrape,
      'drivequant_task_completed_timestamp_seconds',
      labels,
    );

    expect(latency).toBe(754.321);
    expect(completed).toBe(1733757314.439);
    expect(
      sampleValue(firstScrape, 'drivequant_task_status', { ...labels, status: 'COMPLETED' }),
    ).toBe(1);
  });

  it('exports an unknown status as a series of its own, sanitised, and counts no error', () => {
    const labels = { task_id: ids.onHold };

    const statuses = findSamples(firstScrape, 'drivequant_task_status', labels);

    expect(statuses.map((sample) => [sample.labels.status, sample.value])).toEqual([
      ...KNOWN_STATUSES.map((status) => [status, 0]),
      ['ON_HOLD', 1],
    ]);
    expect(findSamples(firstScrape, 'drivequant_task_poll_errors_total', labels)).toEqual([]);
  });

  it('counts exporter-wide series: tasks by status, request durations, cycles', () => {
    const tasks = (status: string) =>
      findSamples(firstScrape, 'drivequant_tasks', { status }).reduce((sum, s) => sum + s.value, 0);

    expect(tasks('IN_PROGRESS')).toBe(6);
    expect(tasks('COMPLETED')).toBe(1);
    expect(tasks('ON_HOLD')).toBe(1);
    expect(
      sampleValue(firstScrape, 'drivequant_api_request_duration_seconds_count', { code: '200' }),
    ).toBeGreaterThanOrEqual(8);
    expect(
      sampleValue(firstScrape, 'drivequant_last_poll_cycle_timestamp_seconds'),
    ).toBeGreaterThan(0);
    expect(sampleValue(firstScrape, 'drivequant_up')).toBe(1);
  });

  describe('when DriveQuant fails for some tasks', () => {
    let faultScrape: Scrape;

    beforeAll(async () => {
      const url = started?.exporter.url ?? '';
      const successBefore =
        sampleValue(firstScrape, 'drivequant_task_last_poll_success_timestamp_seconds', {
          task_id: DOCUMENTED_TASK_ID,
        }) ?? 0;
      sim.setFault(ids.unauthorized, { kind: 'status', code: 401 });
      sim.removeTask(ids.notFound);
      sim.setFault(ids.serverError, { kind: 'status', code: 500 });
      sim.setFault(ids.timeout, { kind: 'hang' });
      sim.setFault(ids.malformed, { kind: 'malformed-json' });

      faultScrape = await waitFor(
        async () => {
          const scrape = await scrapeMetrics(url);
          const counted =
            errorCount(scrape, ids.unauthorized, 'unauthorized') > 0 &&
            errorCount(scrape, ids.notFound, 'not_found') > 0 &&
            errorCount(scrape, ids.serverError, 'server_error') > 0 &&
            errorCount(scrape, ids.timeout, 'timeout') > 0 &&
            errorCount(scrape, ids.malformed, 'invalid_response') > 0;
          const documentedPolledAgain =
            (sampleValue(scrape, 'drivequant_task_last_poll_success_timestamp_seconds', {
              task_id: DOCUMENTED_TASK_ID,
            }) ?? 0) > successBefore;
          return counted && documentedPolledAgain && scrape;
        },
        { what: 'every fault counted and the documented task polled again', timeoutMs: 15_000 },
      );
    });

    it.each([
      ['401', 'task-401', 'unauthorized'],
      ['404', 'task-404', 'not_found'],
      ['500', 'task-500', 'server_error'],
      ['a timeout', 'task-timeout', 'timeout'],
      ['malformed JSON', 'task-malformed', 'invalid_response'],
    ])('counts %s under its reason and nothing else', (_what, taskId, reason) => {
      const errors = findSamples(faultScrape, 'drivequant_task_poll_errors_total', {
        task_id: taskId,
      });

      expect(errors.map((sample) => sample.labels.reason)).toEqual([reason]);
      expect(errors[0]?.value).toBeGreaterThanOrEqual(1);
    });

    it.each(faulty.map((taskId, index) => [taskId, index]))(
      'keeps the last good values of %s, inventing no zero',
      (taskId, index) => {
        const before = seriesOf(firstScrape, String(taskId)).filter((line) =>
          SNAPSHOT_FAMILIES.some((family) => line.startsWith(`${family}{`)),
        );

        const after = seriesOf(faultScrape, String(taskId)).filter((line) =>
          SNAPSHOT_FAMILIES.some((family) => line.startsWith(`${family}{`)),
        );

        expect(after).toEqual(before);
        expect(after).toContain(
          `drivequant_task_items{task_type="PUSH_FAILED_TRIPS"} ${100 + Number(index)}`,
        );
        expect(after).toContain(
          `drivequant_task_remaining_items{task_type="PUSH_FAILED_TRIPS"} ${40 + Number(index)}`,
        );
      },
    );

    it('keeps the other tasks exporting with their values', () => {
      expect(seriesOf(faultScrape, DOCUMENTED_TASK_ID)).toContain(
        'drivequant_task_remaining_items{task_type="PUSH_FAILED_TRIPS"} 12',
      );
      expect(
        sampleValue(faultScrape, 'drivequant_task_completion_latency_seconds', {
          task_id: ids.completed,
        }),
      ).toBe(754.321);
    });

    it('stays up and healthy', async () => {
      const url = started?.exporter.url ?? '';

      const healthy = await get(`${url}/-/healthy`);
      const ready = await get(`${url}/-/ready`);

      expect(healthy.response.status).toBe(200);
      expect(ready.response.status).toBe(200);
    });

    it('reports DriveQuant down while the key is refused', () => {
      expect(sampleValue(faultScrape, 'drivequant_up')).toBe(0);
    });

    it('logs each failing task at warn with its id and reason', () => {
      const warnings = (started?.logs.records() ?? []).filter(
        (record) => record.level === 'warn' && record.msg === 'task poll failed',
      );

      const reasons = Object.fromEntries(warnings.map((record) => [record.taskId, record.reason]));

      expect(reasons).toMatchObject({
        'task-401': 'unauthorized',
        'task-404': 'not_found',
        'task-500': 'server_error',
        'task-timeout': 'timeout',
        'task-malformed': 'invalid_response',
      });
    });
  });

  it('never prints the API key in a log line, at debug level', () => {
    const text = started?.logs.text() ?? '';

    expect(started?.logs.lines.length).toBeGreaterThan(10);
    expect(text).not.toContain(apiKey);
  });
});

describe('against any server that answers the documented endpoint', () => {
  const apiKey = `plain-key-${randomBytes(8).toString('hex')}`;
  let upstream: TestServer;
  let started: Started | undefined;
  let release: () => void = () => undefined;
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    // The first answer waits for the test, so that readiness can be seen before the first cycle.
    let first = true;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    upstream = await startTestServer((request, response) => {
      if (request.headers['x-dq-enterprise-api-key'] !== apiKey) {
        sendJson(response, 401, { error: 'Unauthorized' });
        return;
      }
      if (request.url !== `/v1/enterprise/task/${DOCUMENTED_TASK_ID}`) {
        sendJson(response, 404, { error: 'Task not found' });
        return;
      }
      if (first) {
        first = false;
        held.push(response);
        void gate.then(() => sendJson(response, 200, DOCUMENTED_TASK));
        return;
      }
      sendJson(response, 200, DOCUMENTED_TASK);
    });
    // One long cycle: the held first answer must not time out while readiness is checked.
    started = await startAgainst(upstream.url, apiKey, [DOCUMENTED_TASK_ID], {
      timeout: '8s',
      interval: '10s',
    });
  });

  afterAll(async () => {
    release();
    await stop(started);
    await upstream?.close();
  });

  it('is not ready before its first cycle, and ready after it', async () => {
    const url = started?.exporter.url ?? '';
    await waitFor(() => held.length === 1, { what: 'the first request' });

    const before = await get(`${url}/-/ready`);
    const metricsBefore = await scrapeMetrics(url);
    release();
    const after = await waitFor(
      async () => {
        const answer = await get(`${url}/-/ready`);
        return answer.response.status === 200 && answer;
      },
      { what: 'readiness' },
    );

    expect(before.response.status).toBe(503);
    expect(before.text).toBe('Not ready: the first poll cycle has not finished\n');
    expect(seriesOf(metricsBefore, DOCUMENTED_TASK_ID)).toEqual([]);
    expect(after.text).toBe('Ready\n');
  });

  it('exports exactly the SPEC.md series with the values that server returned', async () => {
    const url = started?.exporter.url ?? '';

    const scrape = await waitFor(
      async () => {
        const current = await scrapeMetrics(url);
        return sampleValue(current, 'drivequant_task_items') !== undefined && current;
      },
      { what: 'the task exported' },
    );

    const perTaskFamilies = new Set(
      scrape.samples.filter((sample) => 'task_id' in sample.labels).map((sample) => sample.name),
    );
    expect([...perTaskFamilies].sort()).toEqual(
      [
        'drivequant_task_status',
        'drivequant_task_items',
        'drivequant_task_remaining_items',
        'drivequant_task_created_timestamp_seconds',
        'drivequant_task_last_poll_success_timestamp_seconds',
      ].sort(),
    );
    expect(sampleValue(scrape, 'drivequant_task_items')).toBe(321);
    expect(sampleValue(scrape, 'drivequant_task_remaining_items')).toBe(12);
    expect(sampleValue(scrape, 'drivequant_task_created_timestamp_seconds')).toBe(1733753657.574);
    expect(sampleValue(scrape, 'drivequant_task_status', { status: 'IN_PROGRESS' })).toBe(1);
    expect(
      findSamples(scrape, 'drivequant_task_status').filter((sample) => sample.value === 0),
    ).toHaveLength(4);
    for (const name of [
      'drivequant_tasks',
      'drivequant_up',
      'drivequant_api_request_duration_seconds_bucket',
      'drivequant_poll_cycle_duration_seconds',
      'drivequant_last_poll_cycle_timestamp_seconds',
      'drivequant_exporter_build_info',
      'process_cpu_user_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(findSamples(scrape, name).length, name).toBeGreaterThan(0);
    }
    expect(scrape.types.get('drivequant_api_request_duration_seconds')).toBe('histogram');
    expect(
      sampleValue(scrape, 'drivequant_tasks', {
        task_type: 'PUSH_FAILED_TRIPS',
        status: 'IN_PROGRESS',
      }),
    ).toBe(1);
    expect(sampleValue(scrape, 'drivequant_up')).toBe(1);
  });

  it('serves /metrics in the Prometheus text format', async () => {
    const { response } = await get(`${started?.exporter.url}/metrics`);

    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('serves a landing page that lists the task', async () => {
    const { response, text } = await get(`${started?.exporter.url}/`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(text).toContain(`<code>${DOCUMENTED_TASK_ID}</code>`);
    expect(text).toContain('<a href="/metrics">');
  });

  it.each([
    ['GET', '/nope', 404, 'Not found\n', null],
    ['GET', '/metrics/extra', 404, 'Not found\n', null],
    ['POST', '/metrics', 405, 'Method not allowed\n', 'GET, HEAD'],
    ['DELETE', '/', 405, 'Method not allowed\n', 'GET, HEAD'],
    ['PUT', '/-/ready', 405, 'Method not allowed\n', 'GET, HEAD'],
    ['GET', '/-/reload', 405, 'Method not allowed\n', 'POST'],
    ['GET', '/-/healthy', 200, 'Healthy\n', null],
  ])('answers %s %s with %d, and Allow on a 405', async (method, path, status, body, allow) => {
    const { response, text } = await get(`${started?.exporter.url}${path}`, { method });

    expect(response.status).toBe(status);
    expect(text).toBe(body);
    expect(response.headers.get('allow')).toBe(allow);
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  it('shows the API key in no answer, body or header, and in no log line', async () => {
    const url = started?.exporter.url ?? '';
    const requests: [string, string][] = [
      ['GET', '/'],
      ['GET', '/metrics'],
      ['GET', '/-/healthy'],
      ['GET', '/-/ready'],
      ['POST', '/-/reload'],
      ['GET', '/api/v1/tasks'],
      ['GET', `/api/v1/tasks/${DOCUMENTED_TASK_ID}`],
      ['GET', '/nope'],
      ['POST', '/metrics'],
    ];

    const answers = await Promise.all(
      requests.map(async ([method, path]) => {
        const { response, text } = await get(`${url}${path}`, { method });
        return `${[...response.headers].join('\n')}\n${text}`;
      }),
    );

    expect(
      upstream.requests.some((request) => request.headers['x-dq-enterprise-api-key'] === apiKey),
    ).toBe(true);
    for (const answer of answers) {
      expect(answer).not.toContain(apiKey);
    }
    expect(started?.logs.text()).not.toContain(apiKey);
  });
});
