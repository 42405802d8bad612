import {
  type LoadedRegisteredTasks,
  type RegisteredTask,
  type RegisteredTaskFile,
  StateFileError,
  StateFileLockedError,
} from './task-persistence.js';
import type { TaskRecord, TaskSource, TaskStore } from './task-state.js';

/** What a registration did. */
export type RegisterOutcome =
  /** The task was not tracked before; it is now, and its registration is durable. */
  | { kind: 'added'; record: TaskRecord }
  /** The task was already tracked (by the API or another source); the registration is durable. */
  | { kind: 'exists'; record: TaskRecord }
  /** `max_tasks` tasks are tracked and none of them is finished; nothing changed. */
  | { kind: 'limit' };

/** What an unregistration did. */
export type UnregisterOutcome =
  /** The API registration is gone; `remaining` lists the sources that still track the task. */
  | { kind: 'removed'; remaining: TaskSource[] }
  /** The task is tracked, but not through the API; nothing changed. */
  | { kind: 'not-registered'; sources: TaskSource[] }
  /** The task is neither tracked nor registered. */
  | { kind: 'unknown' };

/** A registration that could not be made durable; the store was left as it was. */
export class RegistrationStorageError extends Error {
  constructor(message: string, cause: unknown) {
    super(message);
    this.name = 'RegistrationStorageError';
    Object.defineProperty(this, 'cause', { value: cause, enumerable: false });
  }
}

/** Options of TaskRegistrations. */
export interface TaskRegistrationsOptions {
  store: TaskStore;
  /** Where registrations are kept; undefined keeps them in memory only (the demo). */
  file: RegisteredTaskFile | undefined;
  /** Clock, in Unix milliseconds. */
  now?: () => number;
}

/**
 * The tasks registered through the API: the `api` source of the store, kept in step with
 * the state file. Every change runs alone, and the store only keeps a change once the file
 * holds it, so an acknowledged registration survives a crash and a failed one leaves no trace.
 */
export class TaskRegistrations {
  readonly #store: TaskStore;
  readonly #file: RegisteredTaskFile | undefined;
  readonly #now: () => number;
  /** The registrations as the file holds them, in registration order. */
  #registered = new Map<string, RegisteredTask>();
  /** Registrations already reported as refused for the task limit, so each counts once. */
  #waiting = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: TaskRegistrationsOptions) {
    this.#store = options.store;
    this.#file = options.file;
    this.#now = options.now ?? Date.now;
  }

  /** Number of registered tasks, tracked or waiting for room. */
  get size(): number {
    return this.#registered.size;
  }

  /** When a task was registered, in Unix milliseconds, if it is and the file knows. */
  registeredAtMs(taskId: string): number | undefined {
    return this.#registered.get(taskId)?.registeredAtMs;
  }

  /**
   * Locks the state file, reads it and tracks what it lists. A damaged file has already been
   * moved aside by then; what could be read from it, or taken from another sharding's files,
   * is written back at once, so that it is not lost with the next crash. Returns the load
   * result for the caller to report, the ids that did not fit under `max_tasks`, and why the
   * storage cannot take registrations, if it cannot. Throws StateFileLockedError while
   * another exporter holds the file.
   */
  load(): Promise<LoadedRegisteredTasks & { refused: string[]; storageProblem?: string }> {
    return this.#exclusive(async () => {
      const storageProblem = await this.#lock();
      const empty: LoadedRegisteredTasks = { tasks: [], problems: [], movedAsideTo: undefined };
      const loaded = this.#file === undefined ? empty : await this.#file.load(this.#now);
      this.#registered = new Map(loaded.tasks.map((task) => [task.taskId, task]));
      const rescued = loaded.movedAsideTo !== undefined || loaded.importedFrom !== undefined;
      if (rescued && loaded.tasks.length > 0 && storageProblem === undefined) {
        await this.#file?.save(this.#registered.values());
      }

      const refused: string[] = [];
      for (const task of loaded.tasks) {
        if (this.#store.track(task.taskId, 'api') === 'limit') {
          refused.push(task.taskId);
          this.#waiting.add(task.taskId);
        }
      }

      return { ...loaded, refused, storageProblem };
    });
  }

  /** Takes the file's lock; a storage that cannot be written is reported, not fatal. */
  async #lock(): Promise<string | undefined> {
    try {
      await this.#file?.lock();
    } catch (error) {
      if (error instanceof StateFileLockedError) {
        throw error;
      }

      return describeStorageError(error, this.#file?.path ?? '');
    }

    return undefined;
  }

  /** Registers a task; resolves once that is durable. Throws RegistrationStorageError. */
  register(taskId: string): Promise<RegisterOutcome> {
    return this.#exclusive(async () => {
      const before = this.#store.get(taskId);
      const hadSource = before?.sources.has('api') ?? false;
      const tracked = this.#store.track(taskId, 'api');
      if (tracked === 'limit') {
        return { kind: 'limit' };
      }

      if (!this.#registered.has(taskId)) {
        const next = new Map(this.#registered);
        next.set(taskId, { taskId, registeredAtMs: this.#now() });
        try {
          await this.#save(next);
        } catch (error) {
          if (!hadSource) {
            this.#store.untrack(taskId, 'api');
          }
          throw error;
        }
        this.#registered = next;
      }

      const record = this.#store.get(taskId);
      if (record === undefined) {
        throw new Error(`task ${taskId} vanished while it was being registered`);
      }

      return { kind: tracked === 'added' ? 'added' : 'exists', record };
    });
  }

  /** Removes a task's API registration; resolves once the removal is durable. */
  unregister(taskId: string): Promise<UnregisterOutcome> {
    return this.#exclusive(async () => {
      const record = this.#store.get(taskId);
      const isRegistered = this.#registered.has(taskId) || (record?.sources.has('api') ?? false);
      if (!isRegistered) {
        return record === undefined
          ? { kind: 'unknown' }
          : { kind: 'not-registered', sources: [...record.sources] };
      }

      if (this.#registered.has(taskId)) {
        const next = new Map(this.#registered);
        next.delete(taskId);
        await this.#save(next);
        this.#registered = next;
      }
      this.#store.untrack(taskId, 'api');

      return { kind: 'removed', remaining: [...(this.#store.get(taskId)?.sources ?? [])] };
    });
  }

  /**
   * Brings the file and the store back in step after the store changed on its own: forgets
   * registrations of tasks the store dropped (retention, eviction), and tracks registered
   * tasks that found no room before. Returns the ids newly refused for the task limit: one
   * still waiting was reported when it was first refused, and is not counted again.
   */
  reconcile(): Promise<string[]> {
    return this.#exclusive(async () => {
      const next = new Map(this.#registered);
      for (const taskId of this.#registered.keys()) {
        if (this.#store.isRetired(taskId)) {
          next.delete(taskId);
        }
      }
      if (next.size !== this.#registered.size) {
        await this.#save(next);
        this.#registered = next;
      }

      const refused: string[] = [];
      const waiting = new Set<string>();
      for (const taskId of this.#registered.keys()) {
        if (this.#store.track(taskId, 'api') === 'limit') {
          waiting.add(taskId);
          if (!this.#waiting.has(taskId)) {
            refused.push(taskId);
          }
        }
      }
      this.#waiting = waiting;

      return refused;
    });
  }

  /** Resolves when every change asked for so far is done. */
  async idle(): Promise<void> {
    await this.#queue.catch(() => undefined);
  }

  /** Waits for the changes asked for so far, then releases the state file's lock. */
  async close(): Promise<void> {
    await this.idle();
    await this.#file?.unlock();
  }

  async #save(next: Map<string, RegisteredTask>): Promise<void> {
    if (this.#file === undefined) {
      return;
    }
    try {
      await this.#file.save(next.values());
    } catch (error) {
      throw new RegistrationStorageError(describeStorageError(error, this.#file.path), error);
    }
  }

  #exclusive<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(change);
    this.#queue = run.catch(() => undefined);

    return run;
  }
}

/** Why the state file cannot be written, in one sentence naming the path. */
function describeStorageError(error: unknown, path: string): string {
  if (error instanceof StateFileError) {
    return error.message;
  }
  const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;

  return `cannot write ${path}: ${code}`;
}
