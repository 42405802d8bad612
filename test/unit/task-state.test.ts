import { beforeEach, describe, expect, it } from 'vitest';
import type { TaskSnapshot } from '../../src/task-snapshot.js';
import { TaskStore } from '../../src/task-state.js';

const HOUR_MS = 3_600_000;

let nowMs: number;
let store: TaskStore;

function snapshot(taskId: string, status: string, remainingItems = 10): TaskSnapshot {
  return {
    taskId,
    taskType: 'PUSH_FAILED_TRIPS',
    status,
    items: 100,
    remainingItems,
    createdSeconds: 1733753657.574,
  };
}

beforeEach(() => {
  nowMs = Date.UTC(2025, 0, 1);
  store = new TaskStore({ maxTasks: 100, notFoundLimit: 3, now: () => nowMs });
});

describe('sources', () => {
  it('tracks a task once however many sources list it', () => {
    const first = store.track('a', 'config');
    const second = store.track('a', 'api');

    expect(first).toBe('added');
    expect(second).toBe('exists');
    expect(store.size).toBe(1);
    expect([...(store.get('a')?.sources ?? [])]).toEqual(['config', 'api']);
  });

  it('keeps a task while another source still lists it, and drops it with the last', () => {
    store.track('a', 'config');
    store.track('a', 'file');

    store.untrack('a', 'config');
    const sourcesLeft = [...(store.get('a')?.sources ?? [])];
    store.untrack('a', 'file');

    expect(sourcesLeft).toEqual(['file']);
    expect(store.get('a')).toBeUndefined();
  });

  it('says false when untracking a source that does not list the task', () => {
    store.track('a', 'config');

    expect(store.untrack('a', 'api')).toBe(false);
    expect(store.untrack('missing', 'api')).toBe(false);
    expect(store.size).toBe(1);
  });

  it('records when tracking started', () => {
    store.track('a', 'config');

    expect(store.get('a')?.trackedSinceMs).toBe(nowMs);
  });
});

describe('syncSource', () => {
  it('makes the list the complete set of a source: new ones tracked, missing ones let go', () => {
    store.syncSource('config', ['a', 'b']);

    store.syncSource('config', ['b', 'c']);

    expect(store.list().map((record) => record.taskId)).toEqual(['b', 'c']);
  });

  it('leaves the tasks of other sources alone', () => {
    store.track('a', 'api');
    store.syncSource('config', ['a', 'b']);

    store.syncSource('config', []);

    expect(store.list().map((record) => record.taskId)).toEqual(['a']);
    expect([...(store.get('a')?.sources ?? [])]).toEqual(['api']);
  });

  it('keeps the last good values of a task that is listed again', () => {
    store.syncSource('config', ['a']);
    store.recordSuccess('a', snapshot('a', 'IN_PROGRESS'));

    store.syncSource('config', ['a', 'b']);

    expect(store.get('a')?.snapshot?.status).toBe('IN_PROGRESS');
  });
});

describe('poll results', () => {
  it('keeps the last good snapshot through a failed poll and counts the failure by reason', () => {
    store.track('a', 'config');
    store.recordSuccess('a', snapshot('a', 'IN_PROGRESS', 12));
    const successMs = nowMs;
    nowMs += 30_000;

    store.recordFailure('a', 'server_error', 'DriveQuant answered HTTP 500');
    store.recordFailure('a', 'server_error', 'DriveQuant answered HTTP 500');
    store.recordFailure('a', 'timeout', 'DriveQuant did not answer in time');

    const record = store.get('a');
    expect(record?.snapshot?.remainingItems).toBe(12);
    expect(record?.lastSuccessMs).toBe(successMs);
    expect(Object.fromEntries(record?.errorCounts ?? [])).toEqual({ server_error: 2, timeout: 1 });
    expect(record?.lastError).toEqual({
      reason: 'timeout',
      message: 'DriveQuant did not answer in time',
      atMs: nowMs,
    });
  });

  it('clears the last error on success but keeps the error counts', () => {
    store.track('a', 'config');
    store.recordFailure('a', 'timeout', 'slow');

    store.recordSuccess('a', snapshot('a', 'PENDING'));

    expect(store.get('a')?.lastError).toBeUndefined();
    expect(store.get('a')?.errorCounts.get('timeout')).toBe(1);
  });

  it('ignores results for a task that is no longer tracked', () => {
    store.track('a', 'config');
    store.untrack('a', 'config');

    store.recordSuccess('a', snapshot('a', 'PENDING'));
    store.recordFailure('a', 'timeout', 'slow');

    expect(store.get('a')).toBeUndefined();
  });

  it('bumps the record version and the store generation on every change, and tells listeners', () => {
    let calls = 0;
    const unsubscribe = store.onChange(() => {
      calls += 1;
    });
    store.track('a', 'config');
    const generation = store.generation;

    store.recordSuccess('a', snapshot('a', 'PENDING'));
    store.recordFailure('a', 'timeout', 'slow');
    unsubscribe();
    store.recordSuccess('a', snapshot('a', 'PENDING'));

    expect(store.get('a')?.version).toBe(3);
    expect(store.generation).toBe(generation + 3);
    expect(calls).toBe(3);
  });
});

describe('terminal tasks', () => {
  it('are no longer due for polling once COMPLETED, CANCELED or FAILED', () => {
    for (const [taskId, status] of [
      ['p', 'PENDING'],
      ['i', 'IN_PROGRESS'],
      ['c', 'COMPLETED'],
      ['x', 'CANCELED'],
      ['f', 'FAILED'],
      ['u', 'ON_HOLD'],
    ] as const) {
      store.track(taskId, 'config');
      store.recordSuccess(taskId, snapshot(taskId, status));
    }

    const due = store.dueForPoll().map((record) => record.taskId);

    expect(due).toEqual(['p', 'i', 'u']);
  });

  it('are dropped once the retention has passed since they were first seen finished', () => {
    store.track('a', 'config');
    store.track('b', 'config');
    store.recordSuccess('a', snapshot('a', 'COMPLETED', 0));
    const finishedMs = nowMs;
    nowMs += 10 * HOUR_MS;
    store.recordSuccess('a', snapshot('a', 'COMPLETED', 0));

    nowMs = finishedMs + 24 * HOUR_MS - 1;
    const early = store.dropExpired(24 * HOUR_MS);
    nowMs = finishedMs + 24 * HOUR_MS;
    const due = store.dropExpired(24 * HOUR_MS);

    expect(store.get('b')).toBeDefined();
    expect(early).toEqual([]);
    expect(due).toEqual(['a']);
    expect(store.get('a')).toBeUndefined();
    expect(store.isRetired('a')).toBe(true);
  });

  it('are not brought back by a config or task file that still lists them', () => {
    store.syncSource('config', ['a']);
    store.syncSource('file', ['a']);
    store.recordSuccess('a', snapshot('a', 'FAILED'));
    nowMs += HOUR_MS;
    store.dropExpired(HOUR_MS);

    const refused = store.syncSource('config', ['a']);
    store.syncSource('file', ['a']);

    expect(refused).toEqual([]);
    expect(store.get('a')).toBeUndefined();
  });

  it('are tracked again when registered explicitly', () => {
    store.track('a', 'config');
    store.recordSuccess('a', snapshot('a', 'CANCELED'));
    store.dropExpired(0);

    const outcome = store.track('a', 'api');

    expect(outcome).toBe('added');
    expect(store.isRetired('a')).toBe(false);
    expect(store.get('a')?.snapshot).toBeUndefined();
  });
});

describe('not found', () => {
  it('gives a task up after notFoundLimit 404 answers in a row', () => {
    store.track('a', 'config');

    store.recordFailure('a', 'not_found', 'DriveQuant answered HTTP 404');
    store.recordFailure('a', 'not_found', 'DriveQuant answered HTTP 404');
    const beforeLimit = store.get('a')?.notFound;
    store.recordFailure('a', 'not_found', 'DriveQuant answered HTTP 404');

    expect(beforeLimit).toBe(false);
    expect(store.get('a')?.notFound).toBe(true);
    expect(store.dueForPoll()).toEqual([]);
    expect(store.get('a')?.errorCounts.get('not_found')).toBe(3);
  });

  it('starts counting again after a success or another error', () => {
    store.track('a', 'config');

    store.recordFailure('a', 'not_found', '404');
    store.recordFailure('a', 'not_found', '404');
    store.recordSuccess('a', snapshot('a', 'PENDING'));
    store.recordFailure('a', 'not_found', '404');
    store.recordFailure('a', 'not_found', '404');
    store.recordFailure('a', 'timeout', 'slow');
    store.recordFailure('a', 'not_found', '404');
    store.recordFailure('a', 'not_found', '404');

    expect(store.get('a')?.notFound).toBe(false);
    expect(store.get('a')?.consecutiveNotFound).toBe(2);
  });

  it('follows a limit changed by configure()', () => {
    store.track('a', 'config');
    store.configure({ maxTasks: 100, notFoundLimit: 1 });

    store.recordFailure('a', 'not_found', '404');

    expect(store.get('a')?.notFound).toBe(true);
  });
});

describe('max_tasks', () => {
  beforeEach(() => {
    store = new TaskStore({ maxTasks: 3, notFoundLimit: 3, now: () => nowMs });
  });

  it('makes room by evicting the task that finished first', () => {
    for (const taskId of ['a', 'b', 'c']) {
      store.track(taskId, 'config');
    }
    store.recordSuccess('b', snapshot('b', 'COMPLETED', 0));
    nowMs += 1000;
    store.recordSuccess('a', snapshot('a', 'FAILED'));

    const outcome = store.track('d', 'api');

    expect(outcome).toBe('added');
    expect(store.list().map((record) => record.taskId)).toEqual(['a', 'c', 'd']);
    expect(store.isRetired('b')).toBe(true);
  });

  it('refuses a new task when every tracked task is still active', () => {
    for (const taskId of ['a', 'b', 'c']) {
      store.track(taskId, 'config');
    }
    store.recordSuccess('a', snapshot('a', 'IN_PROGRESS'));

    const outcome = store.track('d', 'api');

    expect(outcome).toBe('limit');
    expect(store.get('d')).toBeUndefined();
    expect(store.size).toBe(3);
  });

  it('still adds a source to a tracked task when the store is full', () => {
    for (const taskId of ['a', 'b', 'c']) {
      store.track(taskId, 'config');
    }

    const outcome = store.track('a', 'api');

    expect(outcome).toBe('exists');
  });

  it('returns the ids a sync could not track', () => {
    const refused = store.syncSource('config', ['a', 'b', 'c', 'd', 'e']);

    expect(refused).toEqual(['d', 'e']);
    expect(store.size).toBe(3);
  });
});
