import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegisteredTaskFile, StateFileLockedError } from '../../src/task-persistence.js';
import { RegistrationStorageError, TaskRegistrations } from '../../src/task-registrations.js';
import type { TaskSnapshot } from '../../src/task-snapshot.js';
import { TaskStore } from '../../src/task-state.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';

const HOUR_MS = 3_600_000;

let dir: TempDir;
let nowMs: number;
let store: TaskStore;
let file: RegisteredTaskFile;
let registrations: TaskRegistrations;

beforeEach(async () => {
  dir = await createTempDir();
  nowMs = Date.UTC(2025, 2, 1);
  store = new TaskStore({ maxTasks: 3, notFoundLimit: 2, now: () => nowMs });
  file = new RegisteredTaskFile(join(dir.path, 'data'));
  registrations = new TaskRegistrations({ store, file, now: () => nowMs });
});

afterEach(async () => {
  await registrations.close();
  await dir.remove();
});

function snapshot(taskId: string, status: string): TaskSnapshot {
  return {
    taskId,
    taskType: 'PUSH_FAILED_TRIPS',
    status,
    items: 10,
    remainingItems: 0,
    createdSeconds: nowMs / 1000,
  };
}

async function savedIds(): Promise<string[]> {
  return (await file.load()).tasks.map((task) => task.taskId);
}

describe('register', () => {
  it('tracks the task and saves it before resolving', async () => {
    const outcome = await registrations.register('abc');

    expect(outcome.kind).toBe('added');
    expect(store.get('abc')?.sources).toEqual(new Set(['api']));
    expect(await savedIds()).toEqual(['abc']);
    expect(registrations.registeredAtMs('abc')).toBe(nowMs);
  });

  it('says exists for a task another source tracks, and saves the registration all the same', async () => {
    store.track('abc', 'config');

    const outcome = await registrations.register('abc');

    expect(outcome.kind).toBe('exists');
    expect(store.get('abc')?.sources).toEqual(new Set(['config', 'api']));
    expect(await savedIds()).toEqual(['abc']);
  });

  it('leaves the store as it was when the file cannot be written', async () => {
    store.track('abc', 'config');
    await writeFile(join(dir.path, 'data'), 'not a directory');

    const added = registrations.register('new-task');
    const existing = registrations.register('abc');

    await expect(added).rejects.toBeInstanceOf(RegistrationStorageError);
    await expect(existing).rejects.toThrow(/^storage\.path .*data is not a directory/);
    expect(store.get('new-task')).toBeUndefined();
    expect(store.get('abc')?.sources).toEqual(new Set(['config']));
  });

  it('refuses with limit when only active tasks are tracked, and saves nothing', async () => {
    store.syncSource('config', ['a', 'b', 'c']);

    const outcome = await registrations.register('d');

    expect(outcome).toEqual({ kind: 'limit' });
    expect(await savedIds()).toEqual([]);
  });
});

describe('unregister', () => {
  it('removes the registration and, with no other source, the task', async () => {
    await registrations.register('abc');

    const outcome = await registrations.unregister('abc');

    expect(outcome).toEqual({ kind: 'removed', remaining: [] });
    expect(store.get('abc')).toBeUndefined();
    expect(await savedIds()).toEqual([]);
  });

  it('leaves a task that another source lists, and says which', async () => {
    store.track('abc', 'file');
    await registrations.register('abc');

    const outcome = await registrations.unregister('abc');

    expect(outcome).toEqual({ kind: 'removed', remaining: ['file'] });
    expect(store.get('abc')?.sources).toEqual(new Set(['file']));
  });

  it('tells a task of another source apart from an unknown one', async () => {
    store.track('abc', 'config');

    expect(await registrations.unregister('abc')).toEqual({
      kind: 'not-registered',
      sources: ['config'],
    });
    expect(await registrations.unregister('nope')).toEqual({ kind: 'unknown' });
  });
});

describe('ordering', () => {
  it('applies concurrent changes in the order they were asked for', async () => {
    const changes = [
      registrations.register('a'),
      registrations.register('b'),
      registrations.unregister('a'),
      registrations.register('c'),
      registrations.register('a'),
    ];
    await Promise.all(changes);

    expect(await savedIds()).toEqual(['b', 'c', 'a']);
    expect(store.list().map((record) => record.taskId)).toEqual(['b', 'c', 'a']);
  });
});

describe('load', () => {
  it('tracks what the file lists', async () => {
    await registrations.register('a');
    await registrations.register('b');
    const restarted = new TaskStore({ maxTasks: 3, notFoundLimit: 2 });
    const reloaded = new TaskRegistrations({ store: restarted, file });

    const loaded = await reloaded.load();

    expect(loaded.refused).toEqual([]);
    expect(restarted.list().map((record) => record.taskId)).toEqual(['a', 'b']);
    expect(reloaded.registeredAtMs('a')).toBe(nowMs);
  });

  it('writes back what it could read from a damaged file, so the next crash loses nothing', async () => {
    await mkdir(join(dir.path, 'data'));
    await writeFile(file.path, '{"version": 1, "tasks": [\n{"taskId":"good"},\n{"taskId":"ba');

    const loaded = await registrations.load();

    expect(loaded.movedAsideTo).toContain('.corrupt-');
    expect(JSON.parse(await readFile(file.path, 'utf8'))).toMatchObject({
      version: 1,
      tasks: [{ taskId: 'good' }],
    });
    expect(store.get('good')?.sources).toEqual(new Set(['api']));
  });

  it('keeps registrations that do not fit under max_tasks, and tracks them once there is room', async () => {
    await file.save(['a', 'b', 'c', 'd'].map((taskId) => ({ taskId, registeredAtMs: nowMs })));

    const loaded = await registrations.load();
    store.recordSuccess('a', snapshot('a', 'COMPLETED'));
    const refusedAfterRoom = await registrations.reconcile();

    expect(loaded.refused).toEqual(['d']);
    expect(refusedAfterRoom).toEqual([]);
    expect(store.list().map((record) => record.taskId)).toEqual(['b', 'c', 'd']);
  });

  it('reports a registration waiting for room once, not again at every cycle', async () => {
    await file.save(['a', 'b', 'c', 'd'].map((taskId) => ({ taskId, registeredAtMs: nowMs })));

    const loaded = await registrations.load();
    const firstCycle = await registrations.reconcile();
    const secondCycle = await registrations.reconcile();

    expect(loaded.refused).toEqual(['d']);
    expect(firstCycle).toEqual([]);
    expect(secondCycle).toEqual([]);
    expect(store.get('d')).toBeUndefined();
  });

  it('fails while another exporter holds the state file, and tracks nothing', async () => {
    await file.save([{ taskId: 'abc', registeredAtMs: nowMs }]);
    const other = new TaskRegistrations({
      store,
      file: new RegisteredTaskFile(join(dir.path, 'data')),
    });

    const loading = other.load();

    await expect(loading).rejects.toBeInstanceOf(StateFileLockedError);
    expect(store.size).toBe(0);
  });

  it('reports a storage.path that is not a directory instead of failing, and releases the lock on close', async () => {
    await writeFile(join(dir.path, 'data'), 'not a directory');
    const elsewhere = new RegisteredTaskFile(join(dir.path, 'elsewhere'));
    const working = new TaskRegistrations({ store, file: elsewhere });

    const loaded = await registrations.load();
    await working.load();
    await working.close();

    expect(loaded.storageProblem).toBe(
      `storage.path ${join(dir.path, 'data')} is not a directory (a file is in the way)`,
    );
    expect(elsewhere.locked).toBe(false);
    await expect(readFile(elsewhere.lockPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the tasks it took from another sharding into its own file at once', async () => {
    await file.save([{ taskId: 'abc', registeredAtMs: nowMs }]);
    const shardFile = new RegisteredTaskFile(join(dir.path, 'data'), { index: 0, total: 1 });
    const shard = new TaskRegistrations({ store, file: shardFile });

    const loaded = await shard.load();
    const saved = JSON.parse(await readFile(shardFile.path, 'utf8'));
    await shard.close();

    expect(loaded.importedFrom).toEqual([file.path]);
    expect(saved.tasks).toEqual([{ taskId: 'abc', registeredAt: new Date(nowMs).toISOString() }]);
  });
});

describe('reconcile', () => {
  it('forgets registrations of tasks the store dropped after their retention', async () => {
    await registrations.register('done');
    await registrations.register('running');
    store.recordSuccess('done', snapshot('done', 'COMPLETED'));
    nowMs += 25 * HOUR_MS;
    store.dropExpired(24 * HOUR_MS);

    await registrations.reconcile();

    expect(await savedIds()).toEqual(['running']);
    expect(registrations.size).toBe(1);
  });

  it('keeps the file untouched when nothing changed', async () => {
    await registrations.register('abc');
    await rm(file.path);

    await registrations.reconcile();

    expect(await savedIds()).toEqual([]);
  });
});
