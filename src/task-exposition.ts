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
      const snapshot = record.snapshot;
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

interface CachedTask {
  version: number;
  fragments: string[];
}

/**
 * Renders the per-task series straight from the task state, so that a task that is no
 * longer tracked leaves no series behind. The text only changes when a poll lands, so each
 * task's lines are kept until its record's version moves, and the whole block until any
 * task changes: a scrape between two polls costs a string lookup.
 */
export class TaskExposition {
  readonly #store: TaskStore;
  #cache = new Map<string, CachedTask>();
  #block = '';
  #generation = -1;

  constructor(store: TaskStore) {
    this.#store = store;
  }

  /** The exposition text of every per-task family. */
  render(): string {
    if (this.#generation === this.#store.generation) {
      return this.#block;
    }

    const records = this.#store.list();
    const next = new Map<string, CachedTask>();
    const perFamily: string[][] = FAMILIES.map(() => []);
    for (const record of records) {
      let cached = this.#cache.get(record.taskId);
      if (cached === undefined || cached.version !== record.version) {
        cached = { version: record.version, fragments: FAMILIES.map((f) => f.samples(record)) };
      }
      next.set(record.taskId, cached);
      for (const [index, fragment] of cached.fragments.entries()) {
        if (fragment !== '') {
          perFamily[index]?.push(fragment);
        }
      }
    }

    let block = '';
    for (const [index, family] of FAMILIES.entries()) {
      block += `# HELP ${family.name} ${family.help}\n# TYPE ${family.name} ${family.type}\n`;
      block += perFamily[index]?.join('') ?? '';
    }
    this.#cache = next;
    this.#block = block;
    this.#generation = this.#store.generation;

    return block;
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
      const found = record.snapshot === undefined ? undefined : value(record.snapshot);

      return found === undefined ? '' : `${name}{${taskLabels(record)}} ${found}\n`;
    },
  };
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
