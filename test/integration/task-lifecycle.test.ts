import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'simulator-key';
const TOKEN = 'lifecycle-token';

let sim: Simulator;
let running: ExporterUnderTest | undefined;

beforeEach(async () => {
  sim = await startSimulator({ apiKey: API_KEY });
});

afterEach(async () => {
  await running?.close();
  running = undefined;
  await sim.close();
});

async function start(yaml: string): Promise<ExporterUnderTest> {
  running = await startExporterUnderTest({
    simulator: sim,
    apiKey: API_KEY,
    yaml: `api: {token: ${TOKEN}}\n${yaml}`,
  });
  await running.exporter.poller.runCycle();

  return running;
}

function task(status: string): string {
  return sim.addTask({ frozen: { status, remainingItems: status === 'COMPLETED' ? 0 : 5 } });
}

function register(taskId: string): Promise<Response> {
  return fetch(`${running?.url}/api/v1/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ taskId }),
  });
}

async function metrics(): Promise<string> {
  return (await fetch(`${running?.url}/metrics`)).text();
}

async function apiTask(taskId: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${running?.url}/api/v1/tasks/${taskId}`);

  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('a task DriveQuant answers 404', () => {
  it('is marked not found after not_found_limit answers in a row, and is no longer polled', async () => {
    const missing = '6753030831fe9826412b0404';
    const exporter = await start(
      `poll: {interval: 1h, not_found_limit: 2}\ntasks: ${JSON.stringify([missing])}`,
    );
    const afterOne = (await apiTask(missing)).body.state;

    await exporter.exporter.poller.runCycle();
    await exporter.exporter.poller.runCycle();
    await exporter.exporter.poller.runCycle();

    expect(afterOne).toBe('NOT_POLLED');
    expect(sim.requestCount(missing)).toBe(2);
    expect((await apiTask(missing)).body).toMatchObject({
      state: 'NOT_FOUND',
      consecutiveNotFound: 2,
      lastPoll: { result: 'error', reason: 'not_found' },
    });
    const text = await metrics();
    expect(text).toContain(`drivequant_task_not_found{task_id="${missing}"} 1`);
    expect(text).toContain('drivequant_tasks{task_type="unknown",status="NOT_FOUND"} 1');
    expect(text).toContain(
      `drivequant_task_poll_errors_total{task_id="${missing}",reason="not_found"} 2`,
    );
  });

  it('leaves after terminal_retention, like a finished task', async () => {
    const missing = '6753030831fe9826412b0405';
    const exporter = await start(
      `poll: {interval: 1h, not_found_limit: 1, terminal_retention: 0s}\ntasks: ${JSON.stringify([missing])}`,
    );
    const marked = exporter.exporter.store.get(missing)?.notFound;

    await exporter.exporter.poller.runCycle();

    expect(marked).toBe(true);
    expect(exporter.exporter.store.get(missing)).toBeUndefined();
    expect(await metrics()).not.toContain(missing);
  });
});

describe('a finished task', () => {
  it('leaves after terminal_retention: series, API entry and registration all go', async () => {
    const done = task('COMPLETED');
    const exporter = await start('poll: {interval: 1h, terminal_retention: 0s}');
    await register(done);
    await exporter.exporter.poller.runCycle();
    const leavesAt = (await apiTask(done)).body.leavesAt;
    const statePath = join(exporter.dir.path, 'data', 'registered-tasks.json');

    await exporter.exporter.poller.runCycle();

    expect(leavesAt).toEqual(expect.any(String));
    expect(await metrics()).not.toContain(done);
    expect(await apiTask(done)).toEqual({
      status: 404,
      body: { error: `task ${done} is unknown: it finished and was dropped after its retention` },
    });
    await waitFor(async () => JSON.parse(await readFile(statePath, 'utf8')).tasks.length === 0, {
      what: 'the registration to be forgotten',
    });
  });

  it('stays until its retention is over', async () => {
    const done = task('FAILED');
    const exporter = await start(`poll: {interval: 1h}\ntasks: ${JSON.stringify([done])}`);

    await exporter.exporter.poller.runCycle();

    expect((await apiTask(done)).body).toMatchObject({ state: 'FAILED' });
    expect(sim.requestCount(done)).toBe(1);
  });
});

describe('max_tasks', () => {
  it('evicts the oldest finished task for a new registration, then refuses with 429', async () => {
    const finished = task('COMPLETED');
    const active = task('IN_PROGRESS');
    const exporter = await start(
      `poll: {interval: 1h, max_tasks: 2}\ntasks: ${JSON.stringify([finished, active])}`,
    );

    const first = await register(task('PENDING'));
    const second = await register(task('PENDING'));

    expect(first.status).toBe(201);
    expect(exporter.exporter.store.get(finished)).toBeUndefined();
    expect(second.status).toBe(429);
    expect(exporter.exporter.store.size).toBe(2);
    expect(await metrics()).toContain(
      'drivequant_task_registrations_refused_total{reason="max_tasks"} 1',
    );
  });

  // A config listing more than max_tasks is refused outright; room can still run out when
  // other sources fill the store first.
  it('counts the configured tasks that find no room on a reload', async () => {
    const configured = [task('PENDING')];
    const exporter = await start(
      `poll: {interval: 1h, max_tasks: 2}\ntasks: ${JSON.stringify(configured)}`,
    );
    const registered = await register(task('PENDING'));
    const added = task('PENDING');
    const text = await readFile(exporter.configPath, 'utf8');
    const listed = JSON.stringify([...configured, added]);
    await writeFile(exporter.configPath, text.replace(JSON.stringify(configured), listed));

    const outcome = await exporter.exporter.reload();

    expect(registered.status).toBe(201);
    expect(outcome).toEqual({ ok: true });
    expect(exporter.exporter.store.size).toBe(2);
    expect(exporter.exporter.store.get(added)).toBeUndefined();
    expect(await metrics()).toContain(
      'drivequant_task_registrations_refused_total{reason="max_tasks"} 1',
    );
  });
});

describe('a task listed by several sources', () => {
  it('is tracked, polled and exported once', async () => {
    const shared = task('IN_PROGRESS');
    const setup = await startExporterUnderTest({ simulator: sim, apiKey: API_KEY, yaml: '' });
    await setup.stop();
    await setup.dir.write('tasks.txt', `${shared}\n`);
    running = await startExporterUnderTest({
      simulator: sim,
      apiKey: API_KEY,
      dir: setup.dir,
      yaml: `api: {token: ${TOKEN}}\npoll: {interval: 1h}\ntasks: ${JSON.stringify([shared])}\ntask_files: [tasks.txt]`,
    });
    await register(shared);
    await running.exporter.poller.runCycle();
    const requestsBefore = sim.requestCount(shared);

    await running.exporter.poller.runCycle();

    expect(running.exporter.store.size).toBe(1);
    expect((await apiTask(shared)).body.sources).toEqual(['config', 'file', 'api']);
    expect(sim.requestCount(shared) - requestsBefore).toBe(1);
    const seriesLines = (await metrics())
      .split('\n')
      .filter((line) => line.startsWith(`drivequant_task_items{task_id="${shared}"`));
    expect(seriesLines).toHaveLength(1);
  });
});
