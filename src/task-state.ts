import { ownsTask, type Shard } from './shard.js';
import { isTerminalStatus, type TaskSnapshot } from './task-snapshot.js';

/** Where a task id came from. A task listed by several sources is tracked once. */
export type TaskSource = 'config' | 'file' | 'api';

/** Everything the exporter knows about one tracked task. */
export interface TaskRecord {
  /** The task id. */
  readonly taskId: string;
  /** The sources that list this task; it is dropped when the last one lets go. */
  readonly sources: Set<TaskSource>;
  /** When the task started being tracked, in Unix milliseconds. */
  readonly trackedSinceMs: number;
  /** The last good answer; kept through failed polls, never replaced by guesses. */
  snapshot: TaskSnapshot | undefined;
  /** When a poll last succeeded, in Unix milliseconds. */
  lastSuccessMs: number | undefined;
  /** The last failed poll, if the last poll failed. */
  lastError: { reason: string; message: string; atMs: number } | undefined;
  /** Failed polls by reason, since the task was tracked. */
  readonly errorCounts: Map<string, number>;
  /**
   * When the task was first seen COMPLETED, CANCELED or FAILED, or was given up as not found,
   * in Unix milliseconds. From then on it is not polled, and it leaves after the retention.
   */
  terminalSinceMs: number | undefined;
  /** 404 answers in a row. */
  consecutiveNotFound: number;
  /** Whether the task was given up after too many 404 answers in a row. */
  notFound: boolean;
  /** Bumped on every change, so that renderings can be cached per task. */
  version: number;
}

/** Why a task could not be tracked: the task limit, or the task belongs to another shard. */
export type TrackRefusal = 'limit' | 'shard';

/** Options of TaskStore. */
export interface TaskStoreOptions {
  /** Tracked tasks at most. */
  maxTasks: number;
  /** 404 answers in a row after which a task is given up. */
  notFoundLimit: number;
  /** This replica's share of the tasks; the others are never tracked. Default: every task. */
  shard?: Shard;
  /** Clock, in Unix milliseconds. */
  now?: () => number;
}

/**
 * The tracked tasks and their last known state. All mutation goes through here, so the
 * rules (sources, terminal retention, not-found, the task limit) live in one place.
 */
export class TaskStore {
  readonly #tasks = new Map<string, TaskRecord>();
  // Ids dropped after their retention: a config or task file that still lists them must
  // not bring them back every cycle. Only an explicit API registration does.
  readonly #retired = new Set<string>();
  readonly #listeners = new Set<() => void>();
  #options: Required<Omit<TaskStoreOptions, 'shard'>>;
  readonly #shard: Shard | undefined;
  #generation = 0;

  constructor(options: TaskStoreOptions) {
    const { shard, ...limits } = options;
    this.#options = { now: Date.now, ...limits };
    this.#shard = shard;
  }

  /** Changes the limits, as a config reload does; the shard is fixed for the process. */
  configure(options: Omit<TaskStoreOptions, 'now' | 'shard'>): void {
    this.#options = { ...this.#options, ...options };
  }

  /** This replica's share of the tasks, when the tasks are split between replicas. */
  get shard(): Shard | undefined {
    return this.#shard;
  }

  /** Whether this replica's shard owns a task, that is whether it may track it at all. */
  owns(taskId: string): boolean {
    return ownsTask(this.#shard, taskId);
  }

  /** Number of tracked tasks. */
  get size(): number {
    return this.#tasks.size;
  }

  /** Bumped on every change to any task; renderers compare it to skip work. */
  get generation(): number {
    return this.#generation;
  }

  /** Calls `listener` after every change. Returns a function that unsubscribes. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);

    return () => this.#listeners.delete(listener);
  }

  get(taskId: string): TaskRecord | undefined {
    return this.#tasks.get(taskId);
  }

  /** Tracked tasks in the order they were added. */
  list(): TaskRecord[] {
    return [...this.#tasks.values()];
  }

  /** Whether a task was dropped after its retention. */
  isRetired(taskId: string): boolean {
    return this.#retired.has(taskId);
  }

  /**
   * Starts tracking a task for a source, or adds the source to a tracked task. Returns
   * 'added', 'exists', or the refusal. A task of another shard is refused. When the limit
   * is reached, the oldest terminal task is evicted to make room; if every task is still
   * active, the new one is refused.
   */
  track(taskId: string, source: TaskSource): 'added' | 'exists' | TrackRefusal {
    if (!this.owns(taskId)) {
      return 'shard';
    }
    const existing = this.#tasks.get(taskId);
    if (existing !== undefined) {
      existing.sources.add(source);
      return 'exists';
    }
    if (this.#tasks.size >= this.#options.maxTasks && !this.#evictOldestTerminal()) {
      return 'limit';
    }

    this.#retired.delete(taskId);
    this.#tasks.set(taskId, {
      taskId,
      sources: new Set([source]),
      trackedSinceMs: this.#options.now(),
      snapshot: undefined,
      lastSuccessMs: undefined,
      lastError: undefined,
      errorCounts: new Map(),
      terminalSinceMs: undefined,
      consecutiveNotFound: 0,
      notFound: false,
      version: 0,
    });
    this.#changed();

    return 'added';
  }

  /** Removes a source from a task; the task goes when no source lists it. */
  untrack(taskId: string, source: TaskSource): boolean {
    const record = this.#tasks.get(taskId);
    if (record === undefined || !record.sources.delete(source)) {
      return false;
    }
    if (record.sources.size === 0) {
      this.#tasks.delete(taskId);
      this.#changed();
    }

    return true;
  }

  /**
   * Makes `ids` the complete list of one source: tracks the new ones, lets go of the
   * missing ones. Retired ids and other shards' ids are skipped. Returns the ids refused
   * for the task limit.
   */
  syncSource(source: TaskSource, ids: Iterable<string>): string[] {
    const wanted = new Set(ids);
    for (const record of this.list()) {
      if (record.sources.has(source) && !wanted.has(record.taskId)) {
        this.untrack(record.taskId, source);
      }
    }

    const refused: string[] = [];
    for (const taskId of wanted) {
      if (!this.#retired.has(taskId) && this.track(taskId, source) === 'limit') {
        refused.push(taskId);
      }
    }

    return refused;
  }

  /** Tasks that the next cycle should poll: not finished and not given up. */
  dueForPoll(): TaskRecord[] {
    return this.list().filter((record) => record.terminalSinceMs === undefined && !record.notFound);
  }

  /** Stores a good answer. */
  recordSuccess(taskId: string, snapshot: TaskSnapshot): void {
    const record = this.#tasks.get(taskId);
    if (record === undefined) {
      return;
    }

    const nowMs = this.#options.now();
    record.snapshot = snapshot;
    record.lastSuccessMs = nowMs;
    record.lastError = undefined;
    record.consecutiveNotFound = 0;
    if (isTerminalStatus(snapshot.status)) {
      record.terminalSinceMs ??= nowMs;
    }
    this.#bump(record);
  }

  /** Counts a failed poll; the last good values stay. */
  recordFailure(taskId: string, reason: string, message: string): void {
    const record = this.#tasks.get(taskId);
    if (record === undefined) {
      return;
    }

    record.errorCounts.set(reason, (record.errorCounts.get(reason) ?? 0) + 1);
    record.lastError = { reason, message, atMs: this.#options.now() };
    if (reason === 'not_found') {
      record.consecutiveNotFound += 1;
      record.notFound = record.consecutiveNotFound >= this.#options.notFoundLimit;
      if (record.notFound) {
        record.terminalSinceMs ??= record.lastError.atMs;
      }
    } else {
      record.consecutiveNotFound = 0;
    }
    this.#bump(record);
  }

  /** Drops terminal tasks older than the retention. Returns the dropped ids. */
  dropExpired(retentionMs: number): string[] {
    const nowMs = this.#options.now();
    const dropped: string[] = [];
    for (const record of this.#tasks.values()) {
      if (record.terminalSinceMs !== undefined && nowMs - record.terminalSinceMs >= retentionMs) {
        dropped.push(record.taskId);
      }
    }
    for (const taskId of dropped) {
      this.#tasks.delete(taskId);
      this.#retired.add(taskId);
    }
    if (dropped.length > 0) {
      this.#changed();
    }

    return dropped;
  }

  #evictOldestTerminal(): boolean {
    let oldest: TaskRecord | undefined;
    for (const record of this.#tasks.values()) {
      const since = record.terminalSinceMs;
      if (since !== undefined && (oldest === undefined || since < (oldest.terminalSinceMs ?? 0))) {
        oldest = record;
      }
    }
    if (oldest === undefined) {
      return false;
    }

    this.#tasks.delete(oldest.taskId);
    this.#retired.add(oldest.taskId);

    return true;
  }

  #bump(record: TaskRecord): void {
    record.version += 1;
    this.#changed();
  }

  #changed(): void {
    this.#generation += 1;
    for (const listener of this.#listeners) {
      listener();
    }
  }
}
