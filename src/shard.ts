import { createHash } from 'node:crypto';

/** One replica's share of the tasks, from `--shard.index` and `--shard.total`. */
export interface Shard {
  /** This replica's shard, from 0 to total - 1. */
  index: number;
  /** Number of replicas that split the tasks between them. */
  total: number;
}

/**
 * The shard that owns a task: the first four bytes of the SHA-1 of the task id (UTF-8), read
 * as a big-endian unsigned integer, modulo `total`. Stable across processes, versions and
 * platforms, and easy to reproduce by hand:
 * `printf %s "$ID" | sha1sum | cut -c1-8` gives the integer in hexadecimal.
 */
export function shardOf(taskId: string, total: number): number {
  if (!Number.isInteger(total) || total < 1) {
    throw new RangeError(`total: ${total} is not a whole number of shards from 1`);
  }
  if (total === 1) {
    return 0;
  }

  return createHash('sha1').update(taskId, 'utf8').digest().readUInt32BE(0) % total;
}

/** Whether a replica owns a task; a replica without a shard owns every task. */
export function ownsTask(shard: Shard | undefined, taskId: string): boolean {
  return shard === undefined || shardOf(taskId, shard.total) === shard.index;
}
