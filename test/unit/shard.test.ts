import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ownsTask, shardOf } from '../../src/shard.js';
import { TaskStore } from '../../src/task-state.js';

/** Ids shaped like DriveQuant's (MongoDB ObjectIds): a timestamp, then a counter. */
function objectIds(count: number): string[] {
  return Array.from({ length: count }, (_, index) => {
    const seconds = (0x6753030a + Math.floor(index / 7)).toString(16);
    const counter = (0x412bac5c + index).toString(16);

    return `${seconds}31fe9826${counter}`;
  });
}

const TOTALS = [1, 2, 3, 7, 16];

describe('shardOf', () => {
  it.each(TOTALS)('gives every task to exactly one of %i shards', (total) => {
    const ids = objectIds(5000);

    const owners = ids.map((id) =>
      Array.from({ length: total }, (_, index) => index).filter((index) =>
        ownsTask({ index, total }, id),
      ),
    );

    expect(owners.every((owning) => owning.length === 1)).toBe(true);
    expect(owners.map((owning) => owning[0])).toEqual(ids.map((id) => shardOf(id, total)));
  });

  it.each(TOTALS)('splits 16,000 ids roughly evenly between %i shards', (total) => {
    const counts = new Array<number>(total).fill(0);

    for (const id of objectIds(16_000)) {
      counts[shardOf(id, total)] = (counts[shardOf(id, total)] ?? 0) + 1;
    }

    const expected = 16_000 / total;
    for (const count of counts) {
      expect(Math.abs(count - expected) / expected).toBeLessThan(0.1);
    }
  });

  it('follows the documented recipe: SHA-1 of the id, first four bytes, modulo total', () => {
    const id = '6753030831fe9826412bac5c';
    const prefix = createHash('sha1').update(id).digest('hex').slice(0, 8);

    const shards = [2, 3, 7, 16].map((total) => shardOf(id, total));

    expect(shards).toEqual([2, 3, 7, 16].map((total) => Number.parseInt(prefix, 16) % total));
  });

  it('gives the same shards in every process and on every platform', () => {
    const shards = ['a', 'b', 'c', 'd'].map((id) => shardOf(id, 16));

    expect(shards).toEqual([7, 14, 4, 6]);
  });

  it('refuses a number of shards below one or not whole', () => {
    expect(() => shardOf('abc', 0)).toThrow('total: 0 is not a whole number of shards from 1');
    expect(() => shardOf('abc', 1.5)).toThrow('total: 1.5 is not a whole number of shards');
  });
});

describe('a sharded TaskStore', () => {
  it('tracks only its own tasks from every source and refuses the others as "shard"', () => {
    const ids = objectIds(300);
    const store = new TaskStore({
      maxTasks: 1000,
      notFoundLimit: 3,
      shard: { index: 1, total: 3 },
    });
    const foreign = ids.find((id) => shardOf(id, 3) !== 1) ?? '';

    const refused = store.syncSource('config', ids);
    const apiOutcome = store.track(foreign, 'api');

    expect(refused).toEqual([]);
    expect(apiOutcome).toBe('shard');
    expect(store.list().map((record) => record.taskId)).toEqual(
      ids.filter((id) => shardOf(id, 3) === 1),
    );
  });

  it('lets replicas with the same config export disjoint sets that cover every task', () => {
    const ids = objectIds(500);
    const stores = [0, 1, 2, 3].map(
      (index) => new TaskStore({ maxTasks: 1000, notFoundLimit: 3, shard: { index, total: 4 } }),
    );

    for (const store of stores) {
      store.syncSource('file', ids);
    }
    const tracked = stores.flatMap((store) => store.list().map((record) => record.taskId));

    expect(tracked.sort()).toEqual([...ids].sort());
  });

  it('owns every task without a shard', () => {
    const store = new TaskStore({ maxTasks: 10, notFoundLimit: 3 });

    expect(store.track('any-task', 'api')).toBe('added');
    expect(store.owns('another-task')).toBe(true);
  });
});
