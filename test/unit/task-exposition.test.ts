import { gunzipSync } from 'node:zlib';
import { Counter, Gauge, Registry } from 'prom-client';
import { beforeEach, describe, expect, it } from 'vitest';
import { completeGzip } from '../../src/gzip-member.js';
import { TASK_METRIC_NAMES, TaskExposition } from '../../src/task-exposition.js';
import { KNOWN_STATUSES, type TaskSnapshot } from '../../src/task-snapshot.js';
import { TaskStore } from '../../src/task-state.js';
import { parseScrape, type Sample, sampleValue } from '../helpers/scrape.js';

const DOCUMENTED_ID = '6753030831fe9826412bac5c';
const COMPLETED_ID = '6762f1a0e4b0c8d2a1f30001';
const UNPOLLED_ID = 'never-polled';

const DOCUMENTED: TaskSnapshot = {
  taskId: DOCUMENTED_ID,
  taskType: 'PUSH_FAILED_TRIPS',
  status: 'IN_PROGRESS',
  items: 321,
  remainingItems: 12,
  createdSeconds: 1733753657.574,
};

// Created 2024-12-09T14:14:17.574, completed 2024-12-09T14:26:51.895: 754.321 s.
const COMPLETED: TaskSnapshot = {
  taskId: COMPLETED_ID,
  taskType: 'PUSH_FAILED_CRASHES',
  status: 'COMPLETED',
  items: 128,
  remainingItems: 0,
  createdSeconds: 1733753657.574,
  completedSeconds: 1733754411.895,
};

let nowMs: number;
let store: TaskStore;
let exposition: TaskExposition;

beforeEach(() => {
  nowMs = Date.UTC(2025, 0, 1, 0, 0, 0, 250);
  store = new TaskStore({ maxTasks: 100, notFoundLimit: 2, now: () => nowMs });
  exposition = new TaskExposition(store);
});

/** Three tasks: one polled, one completed after a timeout, one that never answered. */
function seedKnownStore(): void {
  store.syncSource('config', [DOCUMENTED_ID, COMPLETED_ID, UNPOLLED_ID]);
  store.recordSuccess(DOCUMENTED_ID, DOCUMENTED);
  store.recordFailure(COMPLETED_ID, 'timeout', 'DriveQuant did not answer in time');
  nowMs += 1000;
  store.recordSuccess(COMPLETED_ID, COMPLETED);
  store.recordFailure(UNPOLLED_ID, 'unauthorized', 'DriveQuant answered HTTP 401');
  store.recordFailure(UNPOLLED_ID, 'unauthorized', 'DriveQuant answered HTTP 401');
}

describe('TaskExposition', () => {
  it('renders exactly the documented series for a known store', () => {
    seedKnownStore();

    const text = exposition.render();

    const doc = `task_id="${DOCUMENTED_ID}",task_type="PUSH_FAILED_TRIPS"`;
    const done = `task_id="${COMPLETED_ID}",task_type="PUSH_FAILED_CRASHES"`;
    expect(text).toBe(
      [
        '# HELP drivequant_task_status Status of the task: 1 for the current status, 0 for the others.',
        '# TYPE drivequant_task_status gauge',
        `drivequant_task_status{${doc},status="PENDING"} 0`,
        `drivequant_task_status{${doc},status="IN_PROGRESS"} 1`,
        `drivequant_task_status{${doc},status="COMPLETED"} 0`,
        `drivequant_task_status{${doc},status="CANCELED"} 0`,
        `drivequant_task_status{${doc},status="FAILED"} 0`,
        `drivequant_task_status{${done},status="PENDING"} 0`,
        `drivequant_task_status{${done},status="IN_PROGRESS"} 0`,
        `drivequant_task_status{${done},status="COMPLETED"} 1`,
        `drivequant_task_status{${done},status="CANCELED"} 0`,
        `drivequant_task_status{${done},status="FAILED"} 0`,
        '# HELP drivequant_task_items Number of items the task has to push (nbItems).',
        '# TYPE drivequant_task_items gauge',
        `drivequant_task_items{${doc}} 321`,
        `drivequant_task_items{${done}} 128`,
        '# HELP drivequant_task_remaining_items Number of items the task has not pushed yet (nbRemainingItems).',
        '# TYPE drivequant_task_remaining_items gauge',
        `drivequant_task_remaining_items{${doc}} 12`,
        `drivequant_task_remaining_items{${done}} 0`,
        '# HELP drivequant_task_created_timestamp_seconds When the task was created (createdAt), in Unix seconds.',
        '# TYPE drivequant_task_created_timestamp_seconds gauge',
        `drivequant_task_created_timestamp_seconds{${doc}} 1733753657.574`,
        `drivequant_task_created_timestamp_seconds{${done}} 1733753657.574`,
        '# HELP drivequant_task_completed_timestamp_seconds When the task completed (completedAt), in Unix seconds; absent until then.',
        '# TYPE drivequant_task_completed_timestamp_seconds gauge',
        `drivequant_task_completed_timestamp_seconds{${done}} 1733754411.895`,
        '# HELP drivequant_task_completion_latency_seconds Time from creation to completion of a COMPLETED task (completedAt - createdAt).',
        '# TYPE drivequant_task_completion_latency_seconds gauge',
        `drivequant_task_completion_latency_seconds{${done}} 754.321`,
        '# HELP drivequant_task_last_poll_success_timestamp_seconds When a poll of the task last succeeded, in Unix seconds.',
        '# TYPE drivequant_task_last_poll_success_timestamp_seconds gauge',
        `drivequant_task_last_poll_success_timestamp_seconds{task_id="${DOCUMENTED_ID}"} 1735689600.25`,
        `drivequant_task_last_poll_success_timestamp_seconds{task_id="${COMPLETED_ID}"} 1735689601.25`,
        '# HELP drivequant_task_poll_errors_total Failed polls of the task, by reason.',
        '# TYPE drivequant_task_poll_errors_total counter',
        `drivequant_task_poll_errors_total{task_id="${COMPLETED_ID}",reason="timeout"} 1`,
        `drivequant_task_poll_errors_total{task_id="${UNPOLLED_ID}",reason="unauthorized"} 2`,
        '# HELP drivequant_task_not_found 1 when the task was answered 404 too many times in a row and is no longer polled.',
        '# TYPE drivequant_task_not_found gauge',
        '',
      ].join('\n'),
    );
  });

  it('renders only HELP and TYPE lines when no task is tracked', () => {
    const text = exposition.render();

    expect(parseScrape(text).samples).toEqual([]);
    expect([...parseScrape(text).types.keys()]).toEqual(TASK_METRIC_NAMES);
  });

  it('gives an unknown status a series of its own next to the five known ones at 0', () => {
    store.track(DOCUMENTED_ID, 'config');
    store.recordSuccess(DOCUMENTED_ID, { ...DOCUMENTED, status: 'ON_HOLD' });

    const scrape = parseScrape(exposition.render());

    const statuses = scrape.samples
      .filter((sample) => sample.name === 'drivequant_task_status')
      .map((sample) => [sample.labels.status, sample.value]);
    expect(statuses).toEqual([...KNOWN_STATUSES.map((status) => [status, 0]), ['ON_HOLD', 1]]);
  });

  it.each([
    ['2024-12-09T14:14:17.574', 1733753657.574, 1733754411.895, 754.321],
    ['one millisecond', 1733753657.574, 1733753657.575, 0.001],
    ['a long task', 1700000000.001, 1733753657.999, 33753657.998],
  ])(
    'gives the completion latency to the millisecond (%s)',
    (_what, created, completed, latency) => {
      store.track(COMPLETED_ID, 'config');
      store.recordSuccess(COMPLETED_ID, {
        ...COMPLETED,
        createdSeconds: created,
        completedSeconds: completed,
      });

      const scrape = parseScrape(exposition.render());

      expect(sampleValue(scrape, 'drivequant_task_completion_latency_seconds')).toBe(latency);
    },
  );

  it('gives no completion latency to a FAILED task, even with a completedAt', () => {
    store.track(COMPLETED_ID, 'config');
    store.recordSuccess(COMPLETED_ID, { ...COMPLETED, status: 'FAILED' });

    const scrape = parseScrape(exposition.render());

    expect(sampleValue(scrape, 'drivequant_task_completion_latency_seconds')).toBeUndefined();
    expect(sampleValue(scrape, 'drivequant_task_completed_timestamp_seconds')).toBe(1733754411.895);
  });

  it('marks a task given up after repeated 404 answers', () => {
    store.track(UNPOLLED_ID, 'config');
    store.recordFailure(UNPOLLED_ID, 'not_found', '404');
    store.recordFailure(UNPOLLED_ID, 'not_found', '404');

    const scrape = parseScrape(exposition.render());

    expect(sampleValue(scrape, 'drivequant_task_not_found', { task_id: UNPOLLED_ID })).toBe(1);
    expect(sampleValue(scrape, 'drivequant_task_poll_errors_total')).toBe(2);
  });

  it('exports no status or item series for a task given up after repeated 404s', () => {
    store.syncSource('config', [DOCUMENTED_ID]);
    store.recordSuccess(DOCUMENTED_ID, DOCUMENTED);
    store.recordFailure(DOCUMENTED_ID, 'not_found', 'DriveQuant answered HTTP 404');
    store.recordFailure(DOCUMENTED_ID, 'not_found', 'DriveQuant answered HTTP 404');

    const names = new Set(parseScrape(exposition.render()).samples.map((sample) => sample.name));

    expect([...names].sort()).toEqual([
      'drivequant_task_last_poll_success_timestamp_seconds',
      'drivequant_task_not_found',
      'drivequant_task_poll_errors_total',
    ]);
  });
});

describe('the render cache', () => {
  it('drops every series of a task that is no longer tracked', () => {
    seedKnownStore();
    const before = exposition.render();

    store.untrack(DOCUMENTED_ID, 'config');
    const after = exposition.render();

    expect(before).toContain(DOCUMENTED_ID);
    expect(after).not.toContain(DOCUMENTED_ID);
    expect(after).toContain(COMPLETED_ID);
  });

  it('drops every series of a task dropped after its retention', () => {
    seedKnownStore();
    exposition.render();

    nowMs += 60_000;
    store.dropExpired(30_000);
    const after = exposition.render();

    expect(after).not.toContain(COMPLETED_ID);
    expect(after).toContain(DOCUMENTED_ID);
  });

  it('shows a new poll result at the next render', () => {
    seedKnownStore();
    exposition.render();

    store.recordSuccess(DOCUMENTED_ID, { ...DOCUMENTED, remainingItems: 3 });
    store.recordFailure(UNPOLLED_ID, 'timeout', 'slow');
    const scrape = parseScrape(exposition.render());

    expect(sampleValue(scrape, 'drivequant_task_remaining_items', { task_id: DOCUMENTED_ID })).toBe(
      3,
    );
    expect(
      sampleValue(scrape, 'drivequant_task_poll_errors_total', {
        task_id: UNPOLLED_ID,
        reason: 'timeout',
      }),
    ).toBe(1);
  });

  it('gives the same text when nothing changed', () => {
    seedKnownStore();

    const first = exposition.render();
    const second = exposition.render();

    expect(second).toBe(first);
  });
});

describe('the bytes and gzip renderings', () => {
  /** Enough tasks to span several slices and chunks of the rendering. */
  function seedManyTasks(count: number): string[] {
    store = new TaskStore({ maxTasks: count, notFoundLimit: 2, now: () => nowMs });
    exposition = new TaskExposition(store);
    const ids = Array.from({ length: count }, (_, index) => `task-${index}`);
    store.syncSource('config', ids);
    for (const [index, taskId] of ids.entries()) {
      store.recordSuccess(taskId, { ...DOCUMENTED, taskId, remainingItems: index % 300 });
    }

    return ids;
  }

  it('gives the same text as render(), as bytes and gzip-compressed, for 5,000 tasks', async () => {
    seedManyTasks(5000);

    const text = exposition.render();
    const bytes = await exposition.bytes();
    const prefix = await exposition.gzipPrefix();
    const unzipped = gunzipSync(Buffer.concat(completeGzip(prefix, Buffer.alloc(0))));

    expect(text.length).toBeGreaterThan(1024 * 1024);
    expect(bytes.toString()).toBe(text);
    expect(unzipped.toString()).toBe(text);
    expect(prefix.length).toBe(bytes.length);
  });

  it('leaves a rendering under way undisturbed by a newer one that a poll started', async () => {
    const ids = seedManyTasks(5000);
    const first = ids[0] ?? '';
    const line = (remaining: number) =>
      `drivequant_task_remaining_items{task_id="${first}",task_type="PUSH_FAILED_TRIPS"} ${remaining}\n`;

    const older = exposition.gzipPrefix();
    store.recordSuccess(first, { ...DOCUMENTED, taskId: first, remainingItems: 7 });
    const newer = exposition.bytes();
    const [olderText, newerText] = [
      gunzipSync(Buffer.concat(completeGzip(await older, Buffer.alloc(0)))).toString(),
      (await newer).toString(),
    ];

    expect(olderText).toContain(line(0));
    expect(newerText).toContain(line(7));
    expect(newerText.replace(line(7), line(0))).toBe(olderText);
  });

  it('rewrites a changed task in place and renders the same text as a fresh exposition', () => {
    const ids = seedManyTasks(50);
    exposition.render();

    for (const [index, taskId] of ids.entries()) {
      store.recordSuccess(taskId, { ...DOCUMENTED, taskId, remainingItems: 300 - index });
    }
    const rewritten = exposition.render();

    expect(rewritten).toBe(new TaskExposition(store).render());
    expect(rewritten).toContain(
      'drivequant_task_remaining_items{task_id="task-49",task_type="PUSH_FAILED_TRIPS"} 251\n',
    );
  });

  it('keeps the compressed block until a poll lands, then renders it again', async () => {
    const ids = seedManyTasks(10);

    const first = await exposition.gzipPrefix();
    const again = await exposition.gzipPrefix();
    store.recordSuccess(ids[3] ?? '', { ...DOCUMENTED, taskId: ids[3] ?? '', remainingItems: 7 });
    const changed = await exposition.gzipPrefix();

    const text = gunzipSync(Buffer.concat(completeGzip(changed, Buffer.alloc(0)))).toString();
    expect(again).toBe(first);
    expect(changed).not.toBe(first);
    expect(text).toContain(
      'drivequant_task_remaining_items{task_id="task-3",task_type="PUSH_FAILED_TRIPS"} 7\n',
    );
  });
});

describe('equivalence with prom-client', () => {
  /** Renders the store with ordinary prom-client metrics, in a registry of its own. */
  async function renderWithPromClient(source: TaskStore): Promise<string> {
    const registry = new Registry();
    const help = parseScrape(exposition.render()).helps;
    const gauge = (name: string, labelNames: string[]) =>
      new Gauge({ name, help: help.get(name) ?? '', labelNames, registers: [registry] });
    const status = gauge('drivequant_task_status', ['task_id', 'task_type', 'status']);
    const items = gauge('drivequant_task_items', ['task_id', 'task_type']);
    const remaining = gauge('drivequant_task_remaining_items', ['task_id', 'task_type']);
    const created = gauge('drivequant_task_created_timestamp_seconds', ['task_id', 'task_type']);
    const completed = gauge('drivequant_task_completed_timestamp_seconds', [
      'task_id',
      'task_type',
    ]);
    const latency = gauge('drivequant_task_completion_latency_seconds', ['task_id', 'task_type']);
    const lastSuccess = gauge('drivequant_task_last_poll_success_timestamp_seconds', ['task_id']);
    const errors = new Counter({
      name: 'drivequant_task_poll_errors_total',
      help: help.get('drivequant_task_poll_errors_total') ?? '',
      labelNames: ['task_id', 'reason'],
      registers: [registry],
    });
    const notFound = gauge('drivequant_task_not_found', ['task_id']);

    for (const record of source.list()) {
      const task_id = record.taskId;
      const snapshot = record.snapshot;
      if (snapshot !== undefined) {
        const labels = { task_id, task_type: snapshot.taskType };
        const statuses = new Set<string>([...KNOWN_STATUSES, snapshot.status]);
        for (const name of statuses) {
          status.set({ ...labels, status: name }, name === snapshot.status ? 1 : 0);
        }
        items.set(labels, snapshot.items);
        remaining.set(labels, snapshot.remainingItems);
        created.set(labels, snapshot.createdSeconds);
        if (snapshot.completedSeconds !== undefined) {
          completed.set(labels, snapshot.completedSeconds);
          if (snapshot.status === 'COMPLETED') {
            // Computed in milliseconds, as a person checking the dashboard would.
            const ms =
              Math.round(snapshot.completedSeconds * 1000) -
              Math.round(snapshot.createdSeconds * 1000);
            latency.set(labels, ms / 1000);
          }
        }
      }
      if (record.lastSuccessMs !== undefined) {
        lastSuccess.set({ task_id }, record.lastSuccessMs / 1000);
      }
      for (const [reason, count] of record.errorCounts) {
        errors.inc({ task_id, reason }, count);
      }
      if (record.notFound) {
        notFound.set({ task_id }, 1);
      }
    }

    return registry.metrics();
  }

  function sortedSamples(text: string): Sample[] {
    const key = (sample: Sample) => `${sample.name}${JSON.stringify(sample.labels)}`;

    return parseScrape(text).samples.sort((a, b) => key(a).localeCompare(key(b)));
  }

  it('gives the same samples, types and help as prom-client for the same state', async () => {
    seedKnownStore();
    store.track('gone-missing', 'file');
    store.recordFailure('gone-missing', 'not_found', '404');
    store.recordFailure('gone-missing', 'not_found', '404');
    store.track('odd-status', 'api');
    store.recordSuccess('odd-status', { ...DOCUMENTED, taskId: 'odd-status', status: 'ON_HOLD' });

    const ours = exposition.render();
    const reference = await renderWithPromClient(store);

    expect(sortedSamples(ours)).toEqual(sortedSamples(reference));
    expect(parseScrape(ours).types).toEqual(parseScrape(reference).types);
    expect(parseScrape(ours).helps).toEqual(parseScrape(reference).helps);
  });
});
