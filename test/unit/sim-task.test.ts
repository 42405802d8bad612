import { describe, expect, it } from 'vitest';
import {
  createSimTask,
  parseSimTaskSpec,
  renderTaskBody,
  type SimTask,
  type SimTaskState,
  taskStateAt,
} from '../../src/simulator/sim-task.js';

const startMs = Date.UTC(2025, 2, 1, 12, 0, 0, 0);

function fixedRandom(value: number): () => number {
  return () => value;
}

// Samples a task's state every 100 ms of the injected clock over `spanMs`.
function sample(task: SimTask, spanMs: number, timeScale = 1): SimTaskState[] {
  const states: SimTaskState[] = [];
  for (let offsetMs = 0; offsetMs <= spanMs; offsetMs += 100) {
    states.push(taskStateAt(task, startMs + offsetMs, timeScale));
  }

  return states;
}

function distinctInOrder(values: string[]): string[] {
  return values.filter((value, index) => index === 0 || values[index - 1] !== value);
}

describe('taskStateAt', () => {
  const completing = createSimTask(
    { items: 100, pendingMs: 5000, itemsPerSecond: 10, outcome: 'COMPLETED' },
    startMs,
  );

  it('goes PENDING, then IN_PROGRESS, then COMPLETED as the clock moves', () => {
    const states = sample(completing, 30_000);

    expect(distinctInOrder(states.map((state) => state.status))).toEqual([
      'PENDING',
      'IN_PROGRESS',
      'COMPLETED',
    ]);
  });

  it('switches status at the configured instants', () => {
    expect(taskStateAt(completing, startMs + 4999).status).toBe('PENDING');
    expect(taskStateAt(completing, startMs + 5000)).toEqual({
      status: 'IN_PROGRESS',
      remainingItems: 100,
    });
    expect(taskStateAt(completing, startMs + 10_000)).toEqual({
      status: 'IN_PROGRESS',
      remainingItems: 50,
    });
    expect(taskStateAt(completing, startMs + 14_999).status).toBe('IN_PROGRESS');
    expect(taskStateAt(completing, startMs + 15_000)).toEqual({
      status: 'COMPLETED',
      remainingItems: 0,
      completedAtMs: startMs + 15_000,
    });
  });

  it('never lets the remaining items go up', () => {
    const remaining = sample(completing, 30_000).map((state) => state.remainingItems);

    for (let index = 1; index < remaining.length; index += 1) {
      expect(remaining[index]).toBeLessThanOrEqual(remaining[index - 1] ?? Infinity);
    }
    expect(remaining[0]).toBe(100);
    expect(remaining.at(-1)).toBe(0);
  });

  it('gives a completion time only to COMPLETED states', () => {
    const states = sample(completing, 30_000);

    for (const state of states) {
      expect(state.completedAtMs !== undefined).toBe(state.status === 'COMPLETED');
    }
  });

  it('stops a FAILED task part-way, with items left and no completion time', () => {
    const failing = createSimTask(
      { items: 100, pendingMs: 0, itemsPerSecond: 10, outcome: 'FAILED', stopAtRemaining: 40 },
      startMs,
    );

    expect(taskStateAt(failing, startMs + 5999)).toEqual({
      status: 'IN_PROGRESS',
      remainingItems: 41,
    });
    expect(taskStateAt(failing, startMs + 6000)).toEqual({ status: 'FAILED', remainingItems: 40 });
    expect(taskStateAt(failing, startMs + 3_600_000)).toEqual({
      status: 'FAILED',
      remainingItems: 40,
    });
  });

  it('stops a CANCELED task somewhere between 10 % and 90 % by default', () => {
    const canceling = createSimTask(
      { items: 200, pendingMs: 0, itemsPerSecond: 50, outcome: 'CANCELED' },
      startMs,
      fixedRandom(0.5),
    );

    const final = taskStateAt(canceling, startMs + 60_000);

    expect(final).toEqual({ status: 'CANCELED', remainingItems: 100 });
  });

  it('runs the whole timeline faster under a time scale', () => {
    const state = taskStateAt(completing, startMs + 1500, 10);

    expect(state).toEqual({
      status: 'COMPLETED',
      remainingItems: 0,
      completedAtMs: startMs + 1500,
    });
    expect(taskStateAt(completing, startMs + 499, 10).status).toBe('PENDING');
  });

  it('keeps a task with no speed IN_PROGRESS forever', () => {
    const stalled = createSimTask({ items: 10, pendingMs: 0, itemsPerSecond: 0 }, startMs);

    expect(taskStateAt(stalled, startMs + 86_400_000)).toEqual({
      status: 'IN_PROGRESS',
      remainingItems: 10,
    });
  });

  it('answers a frozen state whatever the clock says', () => {
    const frozen = createSimTask(
      { items: 321, frozen: { status: 'MYSTERY', remainingItems: 12 } },
      startMs,
    );

    expect(taskStateAt(frozen, startMs)).toEqual({ status: 'MYSTERY', remainingItems: 12 });
    expect(taskStateAt(frozen, startMs + 86_400_000)).toEqual({
      status: 'MYSTERY',
      remainingItems: 12,
    });
  });
});

describe('createSimTask', () => {
  it('fills the open choices within their documented ranges', () => {
    const low = createSimTask({}, startMs, fixedRandom(0));
    const high = createSimTask({}, startMs, fixedRandom(0.999_999));

    expect(low).toMatchObject({
      type: 'PUSH_FAILED_TRIPS',
      items: 50,
      createdAtMs: startMs,
      outcome: 'COMPLETED',
      stopAtRemaining: 0,
    });
    expect(high.items).toBe(500);
    expect(low.taskId).toMatch(/^[0-9a-f]{24}$/);
  });

  it('gives every task a fresh id', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => createSimTask({}, startMs).taskId));

    expect(ids.size).toBe(1000);
  });

  it('refuses to stop with more items left than the task has', () => {
    expect(() =>
      createSimTask({ items: 10, outcome: 'FAILED', stopAtRemaining: 11 }, startMs),
    ).toThrow('stopAtRemaining: 11 is more than items (10)');
  });
});

describe('renderTaskBody', () => {
  const task = createSimTask(
    {
      taskId: '6753030831fe9826412bac5c',
      items: 321,
      createdAtMs: Date.UTC(2024, 11, 9, 14, 14, 17, 574),
      frozen: { status: 'IN_PROGRESS', remainingItems: 12 },
    },
    startMs,
  );

  it('renders the documented example exactly, without completedAt', () => {
    const body = renderTaskBody(task, taskStateAt(task, startMs));

    expect(JSON.stringify(body)).toBe(
      '{"taskId":"6753030831fe9826412bac5c","createdAt":"2024-12-09T14:14:17.574+0000",' +
        '"type":"PUSH_FAILED_TRIPS","status":"IN_PROGRESS","nbItems":321,"nbRemainingItems":12}',
    );
  });

  it('adds completedAt in the same date format once completed', () => {
    const state = { status: 'COMPLETED', remainingItems: 0, completedAtMs: startMs };

    expect(renderTaskBody(task, state).completedAt).toBe('2025-03-01T12:00:00.000+0000');
  });
});

describe('parseSimTaskSpec', () => {
  it('accepts a complete spec', () => {
    const spec = { taskId: 'abc', type: 'PUSH_FAILED_CRASHES', items: 3, outcome: 'FAILED' };

    expect(parseSimTaskSpec(spec)).toEqual(spec);
  });

  it.each([
    [{ items: -1 }, 'items'],
    [{ items: 1.5 }, 'items'],
    [{ type: 'PUSH_SOMETHING' }, 'type'],
    [{ taskId: 'a/b' }, 'taskId'],
    [{ colour: 'red' }, 'colour'],
    [{ frozen: { remainingItems: 1 } }, 'frozen.status'],
  ])('rejects %j, naming %s', (spec, path) => {
    expect(() => parseSimTaskSpec(spec)).toThrow(path);
  });
});
