import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/secret.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { createTaskFileWatcher, type TaskFileWatcher } from '../../src/task-files.js';
import { TaskStore } from '../../src/task-state.js';
import { startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { captureLogs, type LogCapture } from '../helpers/log-capture.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const HOUR_MS = 3_600_000;

let dir: TempDir;
let store: TaskStore;
let logs: LogCapture;
let watcher: TaskFileWatcher | undefined;

beforeEach(async () => {
  dir = await createTempDir();
  await mkdir(join(dir.path, 'tasks.d'));
  store = new TaskStore({ maxTasks: 100, notFoundLimit: 3 });
  logs = captureLogs();
});

afterEach(async () => {
  watcher?.close();
  watcher = undefined;
  await dir.remove();
});

function fileIds(): string[] {
  return store
    .list()
    .filter((record) => record.sources.has('file'))
    .map((record) => record.taskId)
    .sort();
}

async function watch(
  patterns: string[],
  intervalMs = HOUR_MS,
  secrets: Secret[] = [],
): Promise<TaskFileWatcher> {
  watcher = createTaskFileWatcher({
    patterns: patterns.map((pattern) => join(dir.path, pattern)),
    intervalMs,
    store,
    logger: logs.logger,
    debounceMs: 20,
    secrets: () => secrets,
  });
  await watcher.refresh();
  watcher.start();

  return watcher;
}

describe('reading', () => {
  it('tracks the ids of every matching text and YAML file, once each', async () => {
    await dir.write('tasks.d/a.txt', 'abc\ndef\n');
    await dir.write('tasks.d/b.yaml', 'tasks: [def, ghi]\n');
    await dir.write('tasks.d/ignored.md', 'zzz\n');
    store.track('abc', 'config');

    await watch(['tasks.d/*.txt', 'tasks.d/*.yaml']);

    expect(fileIds()).toEqual(['abc', 'def', 'ghi']);
    expect(store.size).toBe(3);
    expect(store.get('abc')?.sources).toEqual(new Set(['config', 'file']));
  });

  it('reports a bad line with file and line number, and the rest of the file still counts', async () => {
    const path = await dir.write('tasks.d/a.txt', 'good-1\nbad id here\ngood-2\n');

    await watch(['tasks.d/*.txt']);

    expect(fileIds()).toEqual(['good-1', 'good-2']);
    const warning = logs
      .records()
      .find((record) => record.msg === 'bad entry in task file; skipped');
    expect(warning).toMatchObject({
      level: 'warn',
      file: path,
      line: 2,
      location: `${path}:2`,
      problem: '"bad id here" is not a task id (1 to 64 of A-Z a-z 0-9 _ -)',
    });
  });

  it('shows no more than a 40-character printable prefix of a bad line', async () => {
    const secretLine = `password=${'x'.repeat(31)}SECRET-TAIL\u0007`;
    await dir.write('tasks.d/a.txt', `${secretLine}\n`);

    await watch(['tasks.d/*.txt']);

    const warning = logs
      .records()
      .find((record) => record.msg === 'bad entry in task file; skipped');
    expect(warning?.problem).toBe(
      `"password=${'x'.repeat(31)}..." is not a task id (1 to 64 of A-Z a-z 0-9 _ -)`,
    );
    expect(logs.text()).not.toContain('SECRET-TAIL');
  });

  it('skips a file that holds the API key or the token, naming the file and not its content', async () => {
    const key = 'dqApiKey0123456789abcdef';
    const token = 'exporterToken0123456789';
    const keyFile = await dir.write('tasks.d/api-key.txt', `${key}\n`);
    await dir.write('token', `${token}\n`);
    await symlink(join(dir.path, 'token'), join(dir.path, 'tasks.d', 'linked.txt'));
    await dir.write('tasks.d/real.txt', 'real-task\n');

    const files = await watch(['tasks.d/*.txt'], HOUR_MS, [new Secret(key), new Secret(token)]);
    await files.refresh();

    expect(fileIds()).toEqual(['real-task']);
    const warnings = logs
      .records()
      .filter((record) => String(record.msg).startsWith('task file holds the API key'));
    expect(warnings.map((record) => record.file)).toEqual([
      keyFile,
      join(dir.path, 'tasks.d', 'linked.txt'),
    ]);
    expect(logs.text()).not.toContain(key);
    expect(logs.text()).not.toContain(token);
  });

  it('reports a bad line once, not at every re-read of an unchanged file', async () => {
    await dir.write('tasks.d/a.txt', 'bad id\n');
    const files = await watch(['tasks.d/*.txt']);

    await files.refresh();
    await files.refresh();

    const warnings = logs
      .records()
      .filter((record) => record.msg === 'bad entry in task file; skipped');
    expect(warnings).toHaveLength(1);
  });
});

describe('changes', () => {
  it('picks up a file that changes, without waiting for the interval', async () => {
    const path = await dir.write('tasks.d/a.txt', 'first\n');
    await watch(['tasks.d/*.txt']);

    // Written aside and renamed in, as editors and config management do.
    await writeFile(`${path}.new`, 'second\nthird\n');
    await rename(`${path}.new`, path);

    await waitFor(() => fileIds().join(',') === 'second,third', { what: 'the new ids' });
    expect(store.get('first')).toBeUndefined();
  });

  it('picks up a file edited in place, a new file, and a deleted file', async () => {
    const first = await dir.write('tasks.d/a.txt', 'one\n');
    await watch(['tasks.d/*.txt']);

    await writeFile(first, 'one\ntwo\n');
    await waitFor(() => fileIds().join(',') === 'one,two', { what: 'the edited file' });
    await dir.write('tasks.d/b.txt', 'three\n');
    await waitFor(() => fileIds().join(',') === 'one,three,two', { what: 'the new file' });
    await rm(first);
    await waitFor(() => fileIds().join(',') === 'three', { what: 'the deleted file' });
  });

  it('reads again every interval, which finds a directory created after start', async () => {
    await watch(['later.d/*.txt'], 100);

    await mkdir(join(dir.path, 'later.d'));
    await dir.write('later.d/a.txt', 'late-task\n');

    await waitFor(() => fileIds().join(',') === 'late-task', { what: 'the late file' });
  });

  it('keeps the previous ids of a YAML file that no longer parses, saying why and where', async () => {
    const path = await dir.write('tasks.d/a.yaml', '- abc\n- def\n');
    await watch(['tasks.d/*.yaml']);

    await writeFile(path, '- abc\n- [def\n');
    await waitFor(
      () =>
        logs
          .records()
          .some((record) => record.msg === 'task file unusable; keeping its previous tasks'),
      { what: 'the warning' },
    );

    expect(fileIds()).toEqual(['abc', 'def']);
    const warning = logs
      .records()
      .find((record) => record.msg === 'task file unusable; keeping its previous tasks');
    expect(warning).toMatchObject({
      file: path,
      line: 3,
      location: `${path}:3`,
      problem: expect.stringMatching(/^YAML syntax: .*flow sequence/i),
    });
  });

  it('says why and where a YAML file is unusable at its first read', async () => {
    const path = await dir.write('tasks.d/a.yaml', 'tasks:\n  - abc\n\t- def\n');

    await watch(['tasks.d/*.yaml']);

    expect(fileIds()).toEqual([]);
    expect(logs.records()).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'task file unusable; none of its tasks are tracked',
        file: path,
        line: 3,
        location: `${path}:3`,
        problem: expect.stringMatching(/^YAML syntax: /),
      }),
    );
  });

  it('does not bring back a task that finished and was dropped after its retention', async () => {
    await dir.write('tasks.d/a.txt', 'done\n');
    const files = await watch(['tasks.d/*.txt']);
    store.recordSuccess('done', {
      taskId: 'done',
      taskType: 'PUSH_FAILED_TRIPS',
      status: 'COMPLETED',
      items: 1,
      remainingItems: 0,
      createdSeconds: 1,
    });
    store.dropExpired(0);

    await files.refresh();

    expect(store.get('done')).toBeUndefined();
  });
});

describe('in the exporter', () => {
  let sim: Simulator;

  beforeEach(async () => {
    sim = await startSimulator({ apiKey: 'key' });
  });

  afterEach(async () => {
    await sim.close();
  });

  it('tracks task_files before the first cycle and shows their source in the API', async () => {
    const taskId = sim.addTask({ frozen: { status: 'PENDING', remainingItems: 3 } });
    await dir.write('tasks.d/a.txt', `${taskId}\n`);
    const exporter = await startExporterUnderTest({
      simulator: sim,
      apiKey: 'key',
      dir,
      yaml: 'poll: {interval: 1h}\ntask_files: [tasks.d/*.txt]',
    });

    try {
      await exporter.exporter.poller.runCycle();
      const response = await fetch(`${exporter.url}/api/v1/tasks/${taskId}`);

      expect(await response.json()).toMatchObject({ taskId, sources: ['file'], state: 'PENDING' });
    } finally {
      await exporter.stop();
    }
  });

  it('never tracks, exports or logs the api.token_file that a glob matches', async () => {
    const token = 'exporterToken0123456789abcdef';
    await dir.write('tasks.d/token.txt', `${token}\n`);
    const exporter = await startExporterUnderTest({
      simulator: sim,
      apiKey: 'key',
      dir,
      yaml: 'poll: {interval: 1h}\napi: {token_file: tasks.d/token.txt}\ntask_files: [tasks.d/*]',
    });

    try {
      await exporter.exporter.poller.runCycle();
      const metrics = await (await fetch(`${exporter.url}/metrics`)).text();

      expect(exporter.exporter.store.size).toBe(0);
      expect(metrics).not.toContain(token);
      expect(exporter.logs.text()).not.toContain(token);
      expect(exporter.logs.records()).toContainEqual(
        expect.objectContaining({ level: 'warn', file: join(dir.path, 'tasks.d', 'token.txt') }),
      );
    } finally {
      await exporter.stop();
    }
  });
});
