import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { sampleValue } from '../helpers/scrape.js';
import { viewTask } from '../helpers/task-view.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'reload-suite-key';
/** The exporter's environment: a config that expands it must never show its value. */
const ENV = { DQ_RELOAD_SECRET: 'SIM-SEKRIT-77' };
const TASK_SPEC = { items: 1000, pendingMs: 0, itemsPerSecond: 20 } as const;

let simulator: Simulator;
let under: ExporterUnderTest | undefined;

beforeEach(async () => {
  simulator = await startSimulator({ apiKey: API_KEY, control: true });
});

afterEach(async () => {
  await under?.close();
  under = undefined;
  await simulator.close();
});

async function startWith(
  tasks: string[],
  options: { apiKey?: string; interval?: string; enableLifecycle?: boolean } = {},
) {
  under = await startExporterUnderTest({
    simulator,
    apiKey: options.apiKey ?? API_KEY,
    tasks,
    interval: options.interval ?? '200ms',
    timeout: '500ms',
    enableLifecycle: options.enableLifecycle ?? true,
    env: ENV,
  });

  return under;
}

function postReload(url: string): Promise<Response> {
  return fetch(`${url}/-/reload`, { method: 'POST' });
}

async function waitForSuccess(exporter: ExporterUnderTest, taskId: string, afterSeconds = 0) {
  return waitFor(
    async () => {
      const view = viewTask(await exporter.scrape(), taskId);
      return (view.lastSuccessSeconds ?? 0) > afterSeconds && view;
    },
    { what: `a successful poll of ${taskId}` },
  );
}

async function reloadMetrics(exporter: ExporterUnderTest) {
  const scrape = await exporter.scrape();

  return {
    successful: sampleValue(scrape, 'drivequant_exporter_config_last_reload_successful'),
    timestamp: sampleValue(
      scrape,
      'drivequant_exporter_config_last_reload_success_timestamp_seconds',
    ),
  };
}

describe('a valid configuration, reloaded over POST /-/reload', () => {
  it('starts polling new tasks and removes every series of dropped ones', async () => {
    const [kept = '', dropped = '', added = ''] = simulator.addTasks(3, TASK_SPEC);
    const exporter = await startWith([kept, dropped]);
    await waitForSuccess(exporter, dropped);

    await exporter.writeConfig({ apiKey: API_KEY, tasks: [kept, added], interval: '200ms' });
    const response = await postReload(exporter.url);

    expect(response.status).toBe(200);
    expect(await response.text()).toBe('Configuration reloaded\n');
    await waitForSuccess(exporter, added);
    const scrape = await exporter.scrape();
    expect(viewTask(scrape, dropped).seriesCount).toBe(0);
    expect(viewTask(scrape, kept).seriesCount).toBeGreaterThan(0);
    expect(exporter.exporter.store.get(dropped)).toBeUndefined();
  });

  it('sends the new API key from the next poll on', async () => {
    const [taskId = ''] = simulator.addTasks(1, TASK_SPEC);
    const exporter = await startWith([taskId], { apiKey: 'an-outdated-key' });
    await waitFor(async () => viewTask(await exporter.scrape(), taskId).errors.unauthorized, {
      what: 'an unauthorized poll',
    });

    await exporter.writeConfig({ apiKey: API_KEY, tasks: [taskId], interval: '200ms' });
    const outcome = await exporter.exporter.reload();

    expect(outcome).toEqual({ ok: true });
    const view = await waitForSuccess(exporter, taskId);
    expect(view.items).toBe(1000);
    expect(sampleValue(await exporter.scrape(), 'drivequant_up')).toBe(1);
  });

  it('applies a shorter interval without waiting out the old one', async () => {
    const [taskId = ''] = simulator.addTasks(1, TASK_SPEC);
    const exporter = await startWith([taskId], { interval: '1h' });
    await waitForSuccess(exporter, taskId);
    const cyclesBefore = sampleValue(await exporter.scrape(), 'drivequant_poll_cycles_total') ?? 0;

    await exporter.writeConfig({ apiKey: API_KEY, tasks: [taskId], interval: '100ms' });
    await exporter.exporter.reload();

    await waitFor(
      async () =>
        (sampleValue(await exporter.scrape(), 'drivequant_poll_cycles_total') ?? 0) >=
        cyclesBefore + 5,
      { timeoutMs: 5000, what: 'five cycles at the new interval' },
    );
    const scrape = await exporter.scrape();
    expect(sampleValue(scrape, 'drivequant_poll_interval_seconds')).toBe(0.1);
  });

  it('marks the reload successful with its time', async () => {
    const [taskId = ''] = simulator.addTasks(1, TASK_SPEC);
    const exporter = await startWith([taskId]);
    const before = await reloadMetrics(exporter);

    await new Promise((resolve) => setTimeout(resolve, 20));
    await postReload(exporter.url);

    const after = await reloadMetrics(exporter);
    expect(before.successful).toBe(1);
    expect(after.successful).toBe(1);
    expect(after.timestamp).toBeGreaterThan(before.timestamp ?? Number.POSITIVE_INFINITY);
    expect(exporter.logs.records().some((r) => r.msg === 'configuration reloaded')).toBe(true);
  });
});

describe('an invalid configuration, reloaded', () => {
  const INVALID_CONFIGS = [
    {
      name: 'a bad duration',
      edit: (text: string) => text.replace(/interval: \S+/, 'interval: soon'),
      reason: 'poll.interval: must be a duration',
    },
    {
      name: 'an unknown key',
      edit: (text: string) => `${text}scrape_everything: true\n`,
      reason: 'scrape_everything: unknown key',
    },
    {
      name: 'a task id that tries path traversal',
      edit: (text: string) => `${text}  - ../../admin\n`,
      reason: 'tasks[1]: is not a task id',
    },
    {
      name: 'broken YAML',
      edit: (text: string) => `${text}\n  : : [\n`,
      reason: 'YAML syntax',
    },
    {
      name: 'a section made of an environment variable',
      edit: (text: string) =>
        text.replace(/^drivequant:$/m, 'drivequant: ${DQ_RELOAD_SECRET}\nold:'),
      reason: 'drivequant: must be a map of keys, got <value from ${DQ_RELOAD_SECRET}>',
    },
    {
      name: 'a YAML alias bomb',
      edit: (text: string) =>
        `${text}a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
      reason: 'YAML: Excessive alias count indicates a resource exhaustion attack',
    },
    {
      name: 'more tasks than poll.max_tasks',
      edit: (text: string) => `${text.replace('poll:', 'poll:\n  max_tasks: 1')}  - another\n`,
      reason: 'tasks: 2 ids listed, more than poll.max_tasks (1)',
    },
  ];

  it.each(INVALID_CONFIGS)(
    'rejects $name with the reason in the answer and the log, and keeps the old one running',
    async ({ edit, reason }) => {
      const [taskId = ''] = simulator.addTasks(1, TASK_SPEC);
      const exporter = await startWith([taskId]);
      const good = await waitForSuccess(exporter, taskId);
      const before = await reloadMetrics(exporter);
      await writeFile(exporter.configPath, edit(await readFile(exporter.configPath, 'utf8')));

      const response = await postReload(exporter.url);

      const answer = await response.text();
      expect(response.status).toBe(500);
      expect(answer).toContain(reason);
      expect(answer).not.toContain(ENV.DQ_RELOAD_SECRET);
      const logged = exporter.logs
        .records()
        .find(
          (record) =>
            record.msg === 'configuration reload failed; keeping the running configuration',
        );
      expect(String(logged?.problems)).toContain(reason);
      expect(exporter.logs.text()).not.toContain(ENV.DQ_RELOAD_SECRET);
      expect(await reloadMetrics(exporter)).toEqual({ successful: 0, timestamp: before.timestamp });
      await waitForSuccess(exporter, taskId, good.lastSuccessSeconds);
      expect(exporter.exporter.store.size).toBe(1);
    },
  );

  it('returns the reason from reload() too, and a later valid reload clears the failure', async () => {
    const [taskId = ''] = simulator.addTasks(1, TASK_SPEC);
    const exporter = await startWith([taskId]);
    await writeFile(exporter.configPath, 'drivequant: {}\n');

    const failed = await exporter.exporter.reload();
    await exporter.writeConfig({ apiKey: API_KEY, tasks: [taskId], interval: '200ms' });
    const fixed = await exporter.exporter.reload();

    expect(failed).toEqual({
      ok: false,
      error: expect.stringContaining('one of api_key or api_key_file is required'),
    });
    expect(fixed).toEqual({ ok: true });
    expect((await reloadMetrics(exporter)).successful).toBe(1);
  });
});

describe('the lifecycle endpoint', () => {
  it('is refused with 403 without --web.enable-lifecycle, and nothing is reloaded', async () => {
    const [first = '', second = ''] = simulator.addTasks(2, TASK_SPEC);
    const exporter = await startWith([first], { enableLifecycle: false });
    await exporter.writeConfig({ apiKey: API_KEY, tasks: [first, second], interval: '200ms' });

    const response = await postReload(exporter.url);

    expect(response.status).toBe(403);
    expect(await response.text()).toContain('--web.enable-lifecycle');
    expect(exporter.exporter.store.get(second)).toBeUndefined();
  });

  it.each([true, false])('answers GET with 405 (lifecycle enabled: %s)', async (enabled) => {
    const exporter = await startWith([], { enableLifecycle: enabled });

    const response = await fetch(`${exporter.url}/-/reload`);

    expect(response.status).toBe(405);
    expect(await response.text()).not.toMatch(/at .*\.(ts|js):\d+/);
  });
});
