import { compressGzipPrefix, type GzipPrefix } from './gzip-member.js';
import { KNOWN_STATUSES } from './task-snapshot.js';
import type { TaskRecord, TaskStore } from './task-state.js';

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  /** The sample lines of this family for one task, each ending in a newline. */
  samples(record: TaskRecord): string;
}

/** The per-task metric families, in exposition order. */
const FAMILIES: Family[] = [
  {
    name: 'drivequant_task_status',
    type: 'gauge',
    help: 'Status of the task: 1 for the current status, 0 for the others.',
    samples(record) {
      const snapshot = exportedSnapshot(record);
      if (snapshot === undefined) {
        return '';
      }

      const base = taskLabels(record);
      let lines = '';
      for (const status of KNOWN_STATUSES) {
        lines += `drivequant_task_status{${base},status="${status}"} ${status === snapshot.status ? 1 : 0}\n`;
      }
      if (!(KNOWN_STATUSES as readonly string[]).includes(snapshot.status)) {
        lines += `drivequant_task_status{${base},status="${escapeLabel(snapshot.status)}"} 1\n`;
      }

      return lines;
    },
  },
  snapshotGauge(
    'drivequant_task_items',
    'Number of items the task has to push (nbItems).',
    (s) => s.items,
  ),
  snapshotGauge(
    'drivequant_task_remaining_items',
    'Number of items the task has not pushed yet (nbRemainingItems).',
    (s) => s.remainingItems,
  ),
  snapshotGauge(
    'drivequant_task_created_timestamp_seconds',
    'When the task was created (createdAt), in Unix seconds.',
    (s) => s.createdSeconds,
  ),
  snapshotGauge(
    'drivequant_task_completed_timestamp_seconds',
    'When the task completed (completedAt), in Unix seconds; absent until then.',
    (s) => s.completedSeconds,
  ),
  snapshotGauge(
    'drivequant_task_completion_latency_seconds',
    'Time from creation to completion of a COMPLETED task (completedAt - createdAt).',
    (s) =>
      s.status === 'COMPLETED' && s.completedSeconds !== undefined
        ? round3(s.completedSeconds - s.createdSeconds)
        : undefined,
  ),
  {
    name: 'drivequant_task_last_poll_success_timestamp_seconds',
    type: 'gauge',
    help: 'When a poll of the task last succeeded, in Unix seconds.',
    samples(record) {
      if (record.lastSuccessMs === undefined) {
        return '';
      }

      return `drivequant_task_last_poll_success_timestamp_seconds{task_id="${record.taskId}"} ${record.lastSuccessMs / 1000}\n`;
    },
  },
  {
    name: 'drivequant_task_poll_errors_total',
    type: 'counter',
    help: 'Failed polls of the task, by reason.',
    samples(record) {
      let lines = '';
      for (const [reason, count] of record.errorCounts) {
        lines += `drivequant_task_poll_errors_total{task_id="${record.taskId}",reason="${reason}"} ${count}\n`;
      }

      return lines;
    },
  },
  {
    name: 'drivequant_task_not_found',
    type: 'gauge',
    help: '1 when the task was answered 404 too many times in a row and is no longer polled.',
    samples(record) {
      return record.notFound ? `drivequant_task_not_found{task_id="${record.taskId}"} 1\n` : '';
    },
  },
];

/** The names of the per-task families, for documentation checks and tests. */
export const TASK_METRIC_NAMES = FAMILIES.map((family) => family.name);

/** One task's lines of every family, kept until the task's record changes. */
interface CachedTask {
  /** The record version the lines were rendered from. */
  version: number;
  /** The lines of every family, in family order, from offset 0; may have room to spare. */
  buffer: Buffer;
  /** Where each family's lines end in `buffer`; family `f` starts where `f - 1` ends. */
  ends: number[];
  /** The rendering that last saw the task, to forget tasks that are no longer tracked. */
  seenBy: number;
}

/** Something cached for one store generation. */
interface Cached<T> {
  generation: number;
  value: Promise<T>;
}

/** Tasks handled between two turns given to the event loop, so a scrape never blocks it long. */
const TASKS_PER_SLICE = 500;

/** Size of the pieces the block is built from, in bytes. */
const CHUNK_BYTES = 256 * 1024;

/** Room left after a task's lines, so that a count growing by a digit fits in place. */
const SPARE_BYTES = 32;

/** Marks, in the chunk sequence, a point where the event loop may take a turn. */
const TURN = Buffer.alloc(0);

const FAMILY_HEADERS = FAMILIES.map((family) =>
  Buffer.from(`# HELP ${family.name} ${family.help}\n# TYPE ${family.name} ${family.type}\n`),
);

/**
 * Renders the per-task series straight from the task state, so that a task that is no
 * longer tracked leaves no series behind. The text only changes when a poll lands, so:
 * 1. each task's lines are kept, as bytes, until its record's version moves, and then
 *    rewritten in place when they fit;
 * 2. the compressed block (what Prometheus asks for) and, only when a client asks for it,
 *    the plain block are kept until the store's generation moves: a scrape between two
 *    polls renders nothing;
 * 3. the compressed block is deflated through one reused chunk buffer, never holding the
 *    plain text (about 1 KB per task) at once, and the rendering gives the event loop a
 *    turn every TASKS_PER_SLICE tasks so that polls keep flowing while it runs.
 */
export class TaskExposition {
  readonly #store: TaskStore;
  readonly #cache = new Map<string, CachedTask>();
  #renderings = 0;
  #renderingsInFlight = 0;
  #plain: Cached<Buffer> | undefined;
  #gzip: Cached<GzipPrefix> | undefined;

  constructor(store: TaskStore) {
    this.#store = store;
    // The plain block is about 1 KB per task and rarely asked for (Prometheus asks for
    // gzip): let it go as soon as it is out of date rather than at the next plain scrape.
    store.onChange(() => {
      this.#plain = undefined;
    });
  }

  /** The exposition text of every per-task family, rendered at once. */
  render(): string {
    const parts: Buffer[] = [];
    for (const chunk of this.#chunks()) {
      parts.push(Buffer.from(chunk));
    }

    return Buffer.concat(parts).toString();
  }

  /** The exposition text of every per-task family, as bytes. */
  bytes(): Promise<Buffer> {
    this.#plain = this.#cached(this.#plain, async () => {
      const parts: Buffer[] = [];
      for await (const chunk of this.#slicedChunks()) {
        parts.push(Buffer.from(chunk));
      }

      return Buffer.concat(parts);
    });

    return this.#plain.value;
  }

  /** The same text compressed as the start of a gzip member; see completeGzip. */
  gzipPrefix(): Promise<GzipPrefix> {
    this.#gzip = this.#cached(this.#gzip, () => compressGzipPrefix(this.#slicedChunks()));

    return this.#gzip.value;
  }

  /** The cached value when it is of the current generation, else a new one. */
  #cached<T>(cached: Cached<T> | undefined, make: () => Promise<T>): Cached<T> {
    const generation = this.#store.generation;
    if (cached?.generation === generation) {
      return cached;
    }

    const fresh = { generation, value: make() };
    // A failed rendering must not stay cached; the caller sees the failure all the same.
    fresh.value.catch(() => {
      fresh.generation = -1;
    });

    return fresh;
  }

  /** The chunks, with a turn of the event loop wherever the sequence allows one. */
  async *#slicedChunks(): AsyncGenerator<Buffer, void, void> {
    for (const chunk of this.#chunks()) {
      if (chunk === TURN) {
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else {
        yield chunk;
      }
    }
  }

  /**
   * The block in pieces of at most CHUNK_BYTES, family by family, with TURN marks. Every
   * piece is the same buffer filled again: a consumer is done with a piece once it asks for
   * the next one.
   */
  *#chunks(): Generator<Buffer, void, void> {
    this.#renderingsInFlight += 1;
    try {
      const tasks = yield* this.#freshTasks();
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      let used = 0;
      for (const [family, header] of FAMILY_HEADERS.entries()) {
        if (used + header.length > chunk.length) {
          yield chunk.subarray(0, used);
          used = 0;
        }
        used += header.copy(chunk, used);
        for (const [index, task] of tasks.entries()) {
          // A task's lines are a few hundred bytes: they always fit in an emptied chunk.
          const start = family === 0 ? 0 : (task.ends[family - 1] ?? 0);
          const end = task.ends[family] ?? 0;
          if (used + end - start > chunk.length) {
            yield chunk.subarray(0, used);
            used = 0;
          }
          used += task.buffer.copy(chunk, used, start, end);
          if ((index + 1) % TASKS_PER_SLICE === 0) {
            yield TURN;
          }
        }
      }
      if (used > 0) {
        yield chunk.subarray(0, used);
      }
    } finally {
      this.#renderingsInFlight -= 1;
    }
  }

  /** Every tracked task's cached lines, rendered again where the record changed. */
  *#freshTasks(): Generator<Buffer, CachedTask[], void> {
    const records = this.#store.list();
    const rendering = ++this.#renderings;
    const tasks: CachedTask[] = [];
    for (const [index, record] of records.entries()) {
      const cached = this.#fresh(record);
      cached.seenBy = rendering;
      tasks.push(cached);
      if ((index + 1) % TASKS_PER_SLICE === 0) {
        yield TURN;
      }
    }
    if (this.#cache.size > tasks.length) {
      for (const [taskId, cached] of this.#cache) {
        if (cached.seenBy !== rendering) {
          this.#cache.delete(taskId);
        }
      }
    }

    return tasks;
  }

  #fresh(record: TaskRecord): CachedTask {
    const cached = this.#cache.get(record.taskId);
    if (cached !== undefined && cached.version === record.version) {
      return cached;
    }

    const fragments = FAMILIES.map((family) => family.samples(record));
    const ends: number[] = [];
    let end = 0;
    for (const fragment of fragments) {
      end += Buffer.byteLength(fragment);
      ends.push(end);
    }
    const text = fragments.join('');
    // In place only when no other rendering is under way: one that is might still be
    // copying the old lines.
    if (cached !== undefined && end <= cached.buffer.length && this.#renderingsInFlight === 1) {
      cached.buffer.write(text, 0);
      cached.version = record.version;
      cached.ends = ends;

      return cached;
    }

    const buffer = Buffer.allocUnsafe(end + SPARE_BYTES);
    buffer.write(text, 0);
    const rendered: CachedTask = { version: record.version, buffer, ends, seenBy: 0 };
    this.#cache.set(record.taskId, rendered);

    return rendered;
  }
}

function snapshotGauge(
  name: string,
  help: string,
  value: (snapshot: NonNullable<TaskRecord['snapshot']>) => number | undefined,
): Family {
  return {
    name,
    type: 'gauge',
    help,
    samples(record) {
      const snapshot = exportedSnapshot(record);
      const found = snapshot === undefined ? undefined : value(snapshot);

      return found === undefined ? '' : `${name}{${taskLabels(record)}} ${found}\n`;
    },
  };
}

/**
 * The answer whose values a task exports. A task given up after repeated 404s exports none:
 * its last answer (IN_PROGRESS, say) no longer describes anything DriveQuant knows, and
 * would keep stall and duration alerts firing beside the not-found one.
 */
function exportedSnapshot(record: TaskRecord): TaskRecord['snapshot'] {
  return record.notFound ? undefined : record.snapshot;
}

// task_id is validated against [A-Za-z0-9_-] and task_type sanitised to [A-Z0-9_] before
// they reach the store, so neither needs escaping; the status label is escaped all the same.
function taskLabels(record: TaskRecord): string {
  return `task_id="${record.taskId}",task_type="${record.snapshot?.taskType ?? 'unknown'}"`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Milliseconds are the resolution of DriveQuant's dates; drop float noise beyond them. */
function round3(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
