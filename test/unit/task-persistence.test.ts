import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shardOf } from '../../src/shard.js';
import {
  parseStateFile,
  REGISTERED_TASKS_FILE,
  RegisteredTaskFile,
  renderStateFile,
  StateFileLockedError,
  stateFileName,
} from '../../src/task-persistence.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';

const NOW_MS = Date.UTC(2025, 2, 1, 12, 30, 15, 250);
const REGISTERED_MS = Date.UTC(2025, 2, 1, 9, 0, 0);

let dir: TempDir;
let file: RegisteredTaskFile;

beforeEach(async () => {
  dir = await createTempDir();
  file = new RegisteredTaskFile(join(dir.path, 'state'));
});

afterEach(async () => {
  await file.unlock();
  await dir.remove();
});

function tasks(...ids: string[]) {
  return ids.map((taskId) => ({ taskId, registeredAtMs: REGISTERED_MS }));
}

/** The pid of a process that has exited: no process runs under it any more. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  if (child.pid === undefined) {
    throw new Error('cannot start a child process');
  }

  return child.pid;
}

/** Task ids owned by each of `total` shards, `count` of each. */
function idsByShard(total: number, count: number): string[][] {
  const shares: string[][] = Array.from({ length: total }, () => []);
  for (let index = 0; shares.some((share) => share.length < count); index++) {
    const taskId = `task-${index}`;
    const share = shares[shardOf(taskId, total)];
    if (share !== undefined && share.length < count) {
      share.push(taskId);
    }
  }

  return shares;
}

describe('load', () => {
  it('treats a missing file, and a missing directory, as no registrations', async () => {
    const loaded = await file.load(() => NOW_MS);

    expect(loaded).toEqual({ tasks: [], problems: [], movedAsideTo: undefined });
  });

  it('reads back what save wrote, in order, with registration times', async () => {
    await file.save(tasks('b-task', 'a-task', 'c-task'));

    const loaded = await file.load(() => NOW_MS);

    expect(loaded.tasks).toEqual(tasks('b-task', 'a-task', 'c-task'));
    expect(loaded.problems).toEqual([]);
  });
});

describe('save', () => {
  it('writes a versioned file with one entry per line', async () => {
    await file.save(tasks('abc', 'def'));

    const text = await readFile(file.path, 'utf8');

    expect(text).toBe(
      '{"version": 1, "tasks": [\n' +
        '{"taskId":"abc","registeredAt":"2025-03-01T09:00:00.000Z"},\n' +
        '{"taskId":"def","registeredAt":"2025-03-01T09:00:00.000Z"}\n' +
        ']}\n',
    );
  });

  it('replaces the file whole: a reader never sees a partial file, and no temporary file stays', async () => {
    const ids = Array.from({ length: 400 }, (_, index) => `task-${index}`);
    await file.save(tasks(...ids.slice(0, 1)));
    const reads: Promise<string>[] = [];

    const saves = Array.from({ length: 30 }, (_, round) => {
      reads.push(readFile(file.path, 'utf8'));
      return file.save(tasks(...ids.slice(0, (round + 1) * 13)));
    });
    await Promise.all(saves);
    const texts = await Promise.all(reads);

    for (const text of texts) {
      expect(parseStateFile(text, file.path).problems).toEqual([]);
    }
    expect((await file.load()).tasks).toHaveLength(390);
    expect(await readdir(join(dir.path, 'state'))).toEqual([
      REGISTERED_TASKS_FILE,
      `${REGISTERED_TASKS_FILE}.lock`,
    ]);
  });

  it('runs concurrent saves one after the other, so the last one asked for wins', async () => {
    const first = file.save(tasks('one'));
    const second = file.save(tasks('one', 'two'));
    const third = file.save(tasks('three'));
    await Promise.all([first, second, third]);

    const loaded = await file.load();

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(['three']);
  });

  it('rejects naming storage.path when a file stands where the directory should be', async () => {
    await writeFile(join(dir.path, 'state'), 'a file where the directory should be');

    const failed = file.save(tasks('abc'));

    await expect(failed).rejects.toThrow(
      `storage.path ${join(dir.path, 'state')} is not a directory (a file is in the way)`,
    );
    file = new RegisteredTaskFile(join(dir.path, 'other'));
    await expect(file.save(tasks('abc'))).resolves.toBeUndefined();
  });

  it('removes a temporary file left behind by a crash when loading', async () => {
    await file.save(tasks('abc'));
    const stale = `${file.path}.tmp-99999-1`;
    await writeFile(stale, '{"version": 1, "tasks": [\n{"taskId":"half');

    const loaded = await file.load();

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(['abc']);
    expect(await readdir(join(dir.path, 'state'))).toEqual([
      REGISTERED_TASKS_FILE,
      `${REGISTERED_TASKS_FILE}.lock`,
    ]);
  });
});

describe('the lock', () => {
  it('holds this pid in <file>.lock, and is gone after unlock', async () => {
    await file.lock();

    const text = await readFile(file.lockPath, 'utf8');
    await file.unlock();

    expect(file.lockPath).toBe(`${file.path}.lock`);
    expect(text).toBe(`${process.pid}\n${hostname()}\n`);
    expect(await readdir(join(dir.path, 'state'))).toEqual([]);
  });

  it('refuses a second holder of the same file, naming the file and the holder', async () => {
    await file.lock();
    const other = new RegisteredTaskFile(join(dir.path, 'state'));

    const locking = other.lock();
    const saving = other.save(tasks('abc'));

    await expect(locking).rejects.toBeInstanceOf(StateFileLockedError);
    await expect(locking).rejects.toThrow(
      `${file.path} is in use by another exporter (process ${process.pid}, lock file ${file.lockPath})`,
    );
    await expect(saving).rejects.toBeInstanceOf(StateFileLockedError);
    expect(await readdir(join(dir.path, 'state'))).toEqual([`${REGISTERED_TASKS_FILE}.lock`]);
  });

  it('refuses a lock held by another process that runs', async () => {
    await mkdir(join(dir.path, 'state'));
    await writeFile(file.lockPath, `${process.ppid}\n${hostname()}\n`);

    const locking = file.lock();

    await expect(locking).rejects.toMatchObject({ pid: process.ppid, lockPath: file.lockPath });
  });

  it('takes over a stale lock whose process has exited', async () => {
    await mkdir(join(dir.path, 'state'));
    await writeFile(file.lockPath, `${deadPid()}\n${hostname()}\n`);

    await file.lock();

    expect(await readFile(file.lockPath, 'utf8')).toBe(`${process.pid}\n${hostname()}\n`);
  });

  it('takes over a lock with its own pid that this process does not hold, as after a container restart', async () => {
    await mkdir(join(dir.path, 'state'));
    await writeFile(file.lockPath, `${process.pid}\n`);

    await file.lock();

    expect(file.locked).toBe(true);
  });

  it('takes over an empty lock, which a crash right after creating it leaves', async () => {
    await mkdir(join(dir.path, 'state'));
    await writeFile(file.lockPath, '');

    await file.lock();

    expect(await readFile(file.lockPath, 'utf8')).toBe(`${process.pid}\n${hostname()}\n`);
  });

  it('lets another holder take the file once it is released', async () => {
    await file.save(tasks('abc'));
    await file.unlock();
    const next = new RegisteredTaskFile(join(dir.path, 'state'));

    await next.lock();
    const loaded = await next.load();
    await next.unlock();

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(['abc']);
  });
});

describe('sharding', () => {
  it('names the file after the shard, so that replicas on one storage.path never share it', async () => {
    const shards = [0, 1].map(
      (index) => new RegisteredTaskFile(join(dir.path, 'state'), { index, total: 2 }),
    );

    await Promise.all(shards.map((shard, index) => shard.save(tasks(`task-of-${index}`))));
    const loaded = await Promise.all(shards.map((shard) => shard.load()));
    await Promise.all(shards.map((shard) => shard.unlock()));

    expect(stateFileName({ index: 1, total: 3 })).toBe('registered-tasks.shard-1-of-3.json');
    expect(shards.map((shard) => shard.path)).toEqual([
      join(dir.path, 'state', 'registered-tasks.shard-0-of-2.json'),
      join(dir.path, 'state', 'registered-tasks.shard-1-of-2.json'),
    ]);
    expect(loaded.map((result) => result.tasks.map((task) => task.taskId))).toEqual([
      ['task-of-0'],
      ['task-of-1'],
    ]);
  });

  it('takes the tasks it owns from the unsharded file when its own file does not exist yet', async () => {
    const [mine = [], theirs = []] = idsByShard(2, 2);
    await file.save(tasks(...theirs, ...mine));
    await file.unlock();
    const shard = new RegisteredTaskFile(join(dir.path, 'state'), { index: 0, total: 2 });

    const loaded = await shard.load();

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(mine);
    expect(loaded.importedFrom).toEqual([file.path]);
    expect(await readFile(file.path, 'utf8')).toContain(theirs[0]);
  });

  it('takes the tasks it owns from the files of another shard count, not from its own', async () => {
    const [first = [], second = []] = idsByShard(2, 2);
    const [mine = []] = idsByShard(3, 2);
    const oldShards = [0, 1].map(
      (index) => new RegisteredTaskFile(join(dir.path, 'state'), { index, total: 2 }),
    );
    await oldShards[0]?.save(tasks(...first, ...mine));
    await oldShards[1]?.save(tasks(...second));
    const sibling = new RegisteredTaskFile(join(dir.path, 'state'), { index: 1, total: 3 });
    await sibling.save(tasks(...mine));
    const shard = new RegisteredTaskFile(join(dir.path, 'state'), { index: 0, total: 3 });

    const loaded = await shard.load();
    await Promise.all([...oldShards, sibling].map((other) => other.unlock()));

    expect(new Set(loaded.tasks.map((task) => task.taskId))).toEqual(
      new Set([...first, ...second, ...mine].filter((id) => shardOf(id, 3) === 0)),
    );
    expect(loaded.importedFrom?.every((path) => path.includes('-of-2.json'))).toBe(true);
  });

  it('takes nothing once its own file exists', async () => {
    await file.save(tasks('abc'));
    const shard = new RegisteredTaskFile(join(dir.path, 'state'), { index: 0, total: 1 });
    await shard.save([]);

    const loaded = await shard.load();
    await shard.unlock();

    expect(loaded).toEqual({ tasks: [], problems: [], movedAsideTo: undefined });
  });
});

describe('a damaged file', () => {
  const corruptName = `${REGISTERED_TASKS_FILE}.corrupt-2025-03-01T12-30-15-250Z`;

  async function writeState(text: string): Promise<void> {
    await mkdir(join(dir.path, 'state'), { recursive: true });
    await writeFile(file.path, text);
  }

  it('keeps the good entries around one bad id, reports it, and moves the file aside', async () => {
    const text =
      '{"version": 1, "tasks": [\n{"taskId":"good-1"},\n{"taskId":"bad/../id"},\n"good-2"\n]}\n';
    await writeState(text);

    const loaded = await file.load(() => NOW_MS);

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(['good-1', 'good-2']);
    expect(loaded.problems).toEqual([`${file.path}: tasks[1]: "bad/../id" is not a task id`]);
    expect(loaded.movedAsideTo).toBe(join(dir.path, 'state', corruptName));
    expect(await readFile(join(dir.path, 'state', corruptName), 'utf8')).toBe(text);
    expect(await readdir(join(dir.path, 'state'))).toEqual([corruptName]);
  });

  it('reads what it can, line by line, from a file that is not JSON any more', async () => {
    await writeState(
      '{"version": 1, "tasks": [\n' +
        '{"taskId":"first","registeredAt":"2025-03-01T09:00:00.000Z"},\n' +
        '{"taskId":"sec\u0000\u0000\n' +
        '{"taskId":"third"},\n',
    );

    const loaded = await file.load(() => NOW_MS);

    expect(loaded.tasks).toEqual([
      { taskId: 'first', registeredAtMs: REGISTERED_MS },
      { taskId: 'third', registeredAtMs: undefined },
    ]);
    expect(loaded.problems[0]).toMatch(/registered-tasks\.json: not valid JSON \(/);
    expect(loaded.problems[1]).toBe(`${file.path}:3: unreadable entry`);
    expect(loaded.movedAsideTo).toContain('.corrupt-');
  });

  it('reports a format version it does not know, and still keeps the entries', async () => {
    await writeState('{"version": 2, "tasks": [{"taskId":"abc"}]}');

    const loaded = await file.load(() => NOW_MS);

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(['abc']);
    expect(loaded.problems).toEqual([`${file.path}: format version 2 is not 1`]);
  });

  it('reports JSON of the wrong shape', async () => {
    await writeState('[1, 2, 3]');

    const loaded = await file.load(() => NOW_MS);

    expect(loaded.tasks).toEqual([]);
    expect(loaded.problems).toEqual([`${file.path}: not an object with "version" and "tasks"`]);
    expect(loaded.movedAsideTo).toBeDefined();
  });

  it('reports a file it cannot read, moves it aside, and does not throw', async () => {
    await mkdir(file.path, { recursive: true });

    const loaded = await file.load(() => NOW_MS);

    expect(loaded.tasks).toEqual([]);
    expect(loaded.problems).toEqual([`${file.path}: cannot read the file: is a directory`]);
    expect(await readdir(join(dir.path, 'state'))).toEqual([corruptName]);
  });
});

describe('renderStateFile', () => {
  it('leaves out a registration time the file had lost', () => {
    const text = renderStateFile([{ taskId: 'abc', registeredAtMs: undefined }]);

    expect(text).toBe('{"version": 1, "tasks": [\n{"taskId":"abc"}\n]}\n');
  });

  it('writes an empty list', () => {
    expect(renderStateFile([])).toBe('{"version": 1, "tasks": []}\n');
  });
});
