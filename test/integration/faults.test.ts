import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { ERROR_REASONS } from '../../src/upstream-error.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import {
  ACCEPTED_FAULTS,
  type AcceptedCase,
  FAILING_FAULTS,
  type FaultCase,
  injectFault,
} from '../helpers/fault-cases.js';
import { sampleValue } from '../helpers/scrape.js';
import { type TaskView, totalErrors, viewTask } from '../helpers/task-view.js';
import { waitFor } from '../helpers/wait-for.js';

// One exporter polls one task per fault mode plus a few healthy ones. Every fault is set at
// once after a good first poll; the tests then read what the scrapes recorded meanwhile.
const API_KEY = 'faults-suite-key';
// 1.5 s leaves the cycle's deadline (90 %) 150 ms of slack on a busy machine.
const INTERVAL_MS = 1500;
const CYCLES_UNDER_FAULT = 3;
const HEALTHY_TASKS = 3;

interface FailingRow extends FaultCase {
  taskId: string;
  before: TaskView;
  /** The task at the first scrape that counted an error: its last good values. */
  lastGood?: TaskView;
  /** The task at every later scrape. */
  later: TaskView[];
}

interface AcceptedRow extends AcceptedCase {
  taskId: string;
  before: TaskView;
  final?: TaskView;
}

let simulator: Simulator;
let under: ExporterUnderTest;
let failing: FailingRow[];
let accepted: AcceptedRow[];
let healthy: { taskId: string; successes: Set<number> }[];
const scrapeTimesMs: number[] = [];
const unhandledRejections: unknown[] = [];
const recordRejection = (reason: unknown) => unhandledRejections.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', recordRejection);
  simulator = await startSimulator({ apiKey: API_KEY, control: true });
  // 20 items a second: a poll that got through would move remainingItems.
  const spec = { items: 1000, pendingMs: 0, itemsPerSecond: 20 } as const;
  const failingIds = simulator.addTasks(FAILING_FAULTS.length, spec);
  const acceptedIds = simulator.addTasks(ACCEPTED_FAULTS.length, spec);
  const healthyIds = simulator.addTasks(HEALTHY_TASKS, spec);
  under = await startExporterUnderTest({
    simulator,
    apiKey: API_KEY,
    tasks: [...failingIds, ...acceptedIds, ...healthyIds],
    interval: `${INTERVAL_MS}ms`,
    timeout: '300ms',
    retries: 1,
    concurrency: 16,
    // Here a 404 is one failing poll among others; giving a task up is task-lifecycle's.
    notFoundLimit: 1000,
  });

  const first = await waitFor(
    async () => {
      const scrape = await under.scrape();
      const ids = [...failingIds, ...acceptedIds, ...healthyIds];
      return ids.every((id) => viewTask(scrape, id).lastSuccessSeconds !== undefined) && scrape;
    },
    { what: 'a good first poll of every task' },
  );
  failing = FAILING_FAULTS.map((row, index) => {
    const taskId = failingIds[index] ?? '';
    return { ...row, taskId, before: viewTask(first, taskId), later: [] };
  });
  accepted = ACCEPTED_FAULTS.map((row, index) => {
    const taskId = acceptedIds[index] ?? '';
    return { ...row, taskId, before: viewTask(first, taskId) };
  });
  healthy = healthyIds.map((taskId) => ({ taskId, successes: new Set<number>() }));

  for (const row of [...failing, ...accepted]) {
    await injectFault(simulator.url, row.taskId, row.fault);
  }
  await watchUntilEveryFaultHeld();
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', recordRejection);
  await under?.close();
  await simulator?.close();
});

/** Scrapes until every failing task has failed, then for CYCLES_UNDER_FAULT more cycles. */
async function watchUntilEveryFaultHeld(): Promise<void> {
  let cyclesWhenAllFailed: number | undefined;
  await waitFor(
    async () => {
      const scrape = await under.scrape();
      scrapeTimesMs.push(scrape.elapsedMs);
      for (const row of failing) {
        const view = viewTask(scrape, row.taskId);
        if (row.lastGood !== undefined) {
          row.later.push(view);
        } else if (totalErrors(view) > 0) {
          row.lastGood = view;
        }
      }
      for (const row of accepted) {
        row.final = viewTask(scrape, row.taskId);
      }
      for (const task of healthy) {
        task.successes.add(viewTask(scrape, task.taskId).lastSuccessSeconds ?? 0);
      }

      const cycles = sampleValue(scrape, 'drivequant_poll_cycles_total') ?? 0;
      if (cyclesWhenAllFailed === undefined && failing.every((row) => row.lastGood)) {
        cyclesWhenAllFailed = cycles;
      }
      return (
        cyclesWhenAllFailed !== undefined && cycles >= cyclesWhenAllFailed + CYCLES_UNDER_FAULT
      );
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'every fault to hold for a few cycles' },
  );
}

describe.each(FAILING_FAULTS.map((row) => [row.name, row] as const))(
  'when DriveQuant answers %s',
  (name) => {
    const row = () => failing.find((candidate) => candidate.name === name) as FailingRow;

    it('counts the failed polls under their documented reason only', () => {
      const { reason, later } = row();
      const last = later.at(-1);

      expect(Object.keys(last?.errors ?? {})).toEqual([reason]);
      expect(last?.errors[reason]).toBeGreaterThanOrEqual(2);
    });

    it('keeps exporting the last good values, never zeros it did not read', () => {
      const { before, lastGood, later } = row();

      expect(lastGood?.current).toEqual(before.current);
      expect(lastGood?.items).toBe(before.items);
      expect(lastGood?.createdSeconds).toBe(before.createdSeconds);
      expect(lastGood?.remainingItems).toBeGreaterThan(0);
      for (const view of later) {
        expect(view.current).toEqual(lastGood?.current);
        expect(view.items).toBe(lastGood?.items);
        expect(view.remainingItems).toBe(lastGood?.remainingItems);
        expect(view.createdSeconds).toBe(lastGood?.createdSeconds);
      }
    });

    it('stops moving the last poll success timestamp', () => {
      const { lastGood, later } = row();

      expect(later.length).toBeGreaterThan(0);
      expect(new Set(later.map((view) => view.lastSuccessSeconds))).toEqual(
        new Set([lastGood?.lastSuccessSeconds]),
      );
    });
  },
);

describe.each(ACCEPTED_FAULTS.map((row) => [row.name, row] as const))(
  'when DriveQuant answers %s',
  (name) => {
    it('exports the answer as read and keeps the task updating', () => {
      const row = accepted.find((candidate) => candidate.name === name) as AcceptedRow;

      expect(row.final?.current).toMatchObject(row.labels);
      expect(row.final?.errors).toEqual({});
      expect(row.final?.lastSuccessSeconds).toBeGreaterThan(row.before.lastSuccessSeconds ?? 0);
    });
  },
);

describe('while every fault mode is active at once', () => {
  it('keeps polling every healthy task, cycle after cycle', () => {
    for (const task of healthy) {
      expect(task.successes.size).toBeGreaterThanOrEqual(CYCLES_UNDER_FAULT);
    }
  });

  it('answers /metrics in well under a second', () => {
    expect(scrapeTimesMs.length).toBeGreaterThan(10);
    expect(Math.max(...scrapeTimesMs)).toBeLessThan(500);
  });

  it('keeps every poll cycle shorter than the interval, retries and timeouts included', () => {
    const durations = under.cycleDurationsMs();

    expect(durations.length).toBeGreaterThanOrEqual(CYCLES_UNDER_FAULT + 1);
    expect(Math.max(...durations)).toBeLessThan(INTERVAL_MS);
  });

  it('stays up and healthy', async () => {
    const response = await fetch(`${under.url}/-/healthy`);

    expect(response.status).toBe(200);
  });

  it('raises no unhandled promise rejection', () => {
    expect(unhandledRejections).toEqual([]);
  });
});

describe('the documentation', () => {
  it('explains every error reason the exporter counts', () => {
    const docs = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');

    for (const reason of Object.values(ERROR_REASONS)) {
      expect(docs).toContain(`\`${reason}\``);
    }
  });
});
