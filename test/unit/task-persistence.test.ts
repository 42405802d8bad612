import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  parseStateFile,
  REGISTERED_TASKS_FILE,
  RegisteredTaskFile,
  renderStateFile,
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
  await dir.remove();
});

function tasks(...ids: string[]) {
  return ids.map((taskId) => ({ taskId, registeredAtMs: REGISTERED_MS }));
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
    expect(await readdir(join(dir.path, 'state'))).toEqual([REGISTERED_TASKS_FILE]);
  });

  it('runs concurrent saves one after the other, so the last one asked for wins', async () => {
    const first = file.save(tasks('one'));
    const second = file.save(tasks('one', 'two'));
    const third = file.save(tasks('three'));
    await Promise.all([first, second, third]);

    const loaded = await file.load();

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(['three']);
  });

  it('rejects when the directory cannot be created, and a later save still works', async () => {
    await writeFile(join(dir.path, 'state'), 'a file where the directory should be');

    const failed = file.save(tasks('abc'));

    await expect(failed).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
    file = new RegisteredTaskFile(join(dir.path, 'other'));
    await expect(file.save(tasks('abc'))).resolves.toBeUndefined();
  });

  it('removes a temporary file left behind by a crash when loading', async () => {
    await file.save(tasks('abc'));
    const stale = `${file.path}.tmp-99999-1`;
    await writeFile(stale, '{"version": 1, "tasks": [\n{"taskId":"half');

    const loaded = await file.load();

    expect(loaded.tasks.map((task) => task.taskId)).toEqual(['abc']);
    expect(await readdir(join(dir.path, 'state'))).toEqual([REGISTERED_TASKS_FILE]);
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
    expect(loaded.problems).toEqual([`${file.path}: cannot read the file: EISDIR`]);
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
