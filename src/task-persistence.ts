import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { describeFsError } from './config-messages.js';
import { ownsTask, type Shard } from './shard.js';
import { isTaskId } from './task-id.js';

/** Name of the state file inside `storage.path` of a replica without a shard. */
export const REGISTERED_TASKS_FILE = 'registered-tasks.json';

/** Names of every state file: the unsharded one, and `registered-tasks.shard-<i>-of-<n>.json`. */
const STATE_FILE_NAME = /^registered-tasks(?:\.shard-(\d+)-of-(\d+))?\.json$/;

/** Lock files this process holds, by absolute path: a pid check cannot tell them apart. */
const heldLocks = new Set<string>();

/** Version of the state file's format; a file of another version is not trusted blindly. */
export const REGISTERED_TASKS_FORMAT_VERSION = 1;

/** One task registered through the API, as kept on disk. */
export interface RegisteredTask {
  /** The task id. */
  taskId: string;
  /** When the task was registered, in Unix milliseconds; undefined when the file lost it. */
  registeredAtMs: number | undefined;
}

/** What loading the state file found. */
export interface LoadedRegisteredTasks {
  /** The entries that could be read, in file order, without duplicates. */
  tasks: RegisteredTask[];
  /** What was wrong with the file, one sentence each, naming the file and the entry. */
  problems: string[];
  /** Where a damaged file was moved, so that nothing in it is lost; undefined when it was sound. */
  movedAsideTo: string | undefined;
  /**
   * The other state files the tasks were taken from, because this replica's own file did not
   * exist yet (sharding turned on, off, or `--shard.total` changed); undefined when none.
   */
  importedFrom?: string[] | undefined;
}

/** The state file cannot be used: its directory is not one, or another exporter holds it. */
export class StateFileError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message);
    this.name = 'StateFileError';
    Object.defineProperty(this, 'cause', { value: cause, enumerable: false });
  }
}

/** Another live exporter holds the state file's lock. */
export class StateFileLockedError extends StateFileError {
  /** The lock file. */
  readonly lockPath: string;
  /** Process id of the holder. */
  readonly pid: number;

  constructor(statePath: string, lockPath: string, pid: number, host: string | undefined) {
    const where = host === undefined || host === hostname() ? '' : ` on host ${host}`;
    super(
      `${statePath} is in use by another exporter (process ${pid}${where}, lock file ${lockPath}): replicas that share storage.path need different --shard.index values or their own storage.path; if that process no longer runs, delete the lock file`,
    );
    this.name = 'StateFileLockedError';
    this.lockPath = lockPath;
    this.pid = pid;
  }
}

/** The state file's name for a replica: the shard is part of it, so replicas never share one. */
export function stateFileName(shard: Shard | undefined): string {
  return shard === undefined
    ? REGISTERED_TASKS_FILE
    : `registered-tasks.shard-${shard.index}-of-${shard.total}.json`;
}

/**
 * The file that keeps the API-registered task ids across restarts. Writes are atomic (a
 * temporary file in the same directory, fsync, rename, fsync of the directory) and run one
 * at a time, so a crash leaves either the old file or the new one, never a mix.
 */
export class RegisteredTaskFile {
  /** Absolute path of the state file. */
  readonly path: string;
  /** Absolute path of its lock file, `<path>.lock`, which holds the holder's pid. */
  readonly lockPath: string;
  /** The directory, `storage.path`. */
  readonly directory: string;
  readonly #shard: Shard | undefined;
  #queue: Promise<void> = Promise.resolve();
  #writeCount = 0;
  #lockContent: string | undefined;

  /** `shard` names the file after this replica's shard and keeps only the tasks it owns. */
  constructor(directory: string, shard?: Shard) {
    this.directory = resolve(directory);
    this.#shard = shard;
    this.path = join(this.directory, stateFileName(shard));
    this.lockPath = `${this.path}.lock`;
  }

  /** Whether this object holds the lock. */
  get locked(): boolean {
    return this.#lockContent !== undefined;
  }

  /**
   * Takes the lock for the life of the process: `<path>.lock`, created exclusively, holding
   * this pid. A lock whose process no longer runs is taken over. Throws StateFileLockedError
   * while another exporter holds it, StateFileError when `storage.path` is not a directory.
   */
  async lock(): Promise<void> {
    if (this.#lockContent !== undefined) {
      return;
    }

    await this.#createDirectory();
    const content = `${process.pid}\n${hostname()}\n`;
    // A stale lock is removed in one round and created afresh in the next; a third round
    // covers another replica that removed the same stale lock at the same moment.
    for (let round = 0; round < 3; round++) {
      try {
        const handle = await open(this.lockPath, 'wx', 0o600);
        try {
          await handle.writeFile(content, 'utf8');
          await handle.sync();
        } finally {
          await handle.close();
        }
        this.#lockContent = content;
        heldLocks.add(this.lockPath);

        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw describeDirectoryError(error, this.directory);
        }
      }
      await this.#removeStaleLock();
    }

    throw new StateFileError(`cannot take the lock ${this.lockPath}: it keeps reappearing`);
  }

  /** Releases the lock, if this object holds it. */
  async unlock(): Promise<void> {
    const content = this.#lockContent;
    if (content === undefined) {
      return;
    }

    this.#lockContent = undefined;
    heldLocks.delete(this.lockPath);
    const current = await readFile(this.lockPath, 'utf8').catch(() => undefined);
    if (current === content) {
      await unlink(this.lockPath).catch(() => undefined);
    }
  }

  /** Removes the lock file when its holder is gone; throws StateFileLockedError when it is not. */
  async #removeStaleLock(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.lockPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return;
      }
      throw describeDirectoryError(error, this.directory);
    }

    const holder = parseLockFile(text);
    if (holder !== undefined && this.#isAlive(holder)) {
      throw new StateFileLockedError(this.path, this.lockPath, holder.pid, holder.host);
    }
    // Read again just before removing it: another replica may have taken it over meanwhile.
    const again = await readFile(this.lockPath, 'utf8').catch(() => undefined);
    if (again === text) {
      await unlink(this.lockPath).catch(() => undefined);
    }
  }

  #isAlive(holder: { pid: number; host: string | undefined }): boolean {
    if (holder.host !== undefined && holder.host !== hostname()) {
      // The pid means nothing here: assume the other host's process runs.
      return true;
    }
    if (holder.pid === process.pid) {
      // Our own pid in a lock we do not hold: an earlier run in a container, where the pid
      // is the same at every start.
      return heldLocks.has(this.lockPath);
    }

    return isProcessAlive(holder.pid);
  }

  async #createDirectory(): Promise<void> {
    try {
      await mkdir(this.directory, { recursive: true });
    } catch (error) {
      throw describeDirectoryError(error, this.directory);
    }
  }

  /**
   * Reads the file. A missing file is an empty list, unless other state files in the
   * directory hold tasks this replica owns (another sharding wrote them): those are taken.
   * A damaged file is moved aside to `<name>.corrupt-<time>` and whatever entries can still
   * be read are returned; this never throws for the file's content.
   */
  async load(now: () => number = Date.now): Promise<LoadedRegisteredTasks> {
    if (this.locked) {
      await this.#removeStaleTemporaryFiles();
    }

    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return this.#importOtherFiles();
      }
      const problem = `${this.path}: cannot read the file: ${describeFsError(error)}`;

      return this.#moveAside([], [problem], now);
    }

    const { tasks, problems } = parseStateFile(text, this.path);
    if (problems.length === 0) {
      return { tasks, problems, movedAsideTo: undefined };
    }

    return this.#moveAside(tasks, problems, now);
  }

  /** Replaces the file's content with `tasks`; resolves once the new content is durable. */
  save(tasks: Iterable<RegisteredTask>): Promise<void> {
    const text = renderStateFile(tasks);
    const write = this.#queue.then(() => this.#write(text));
    this.#queue = write.catch(() => undefined);

    return write;
  }

  async #write(text: string): Promise<void> {
    // A write without the lock could undo another exporter's acknowledged registrations.
    await this.lock();
    this.#writeCount += 1;
    const temporary = `${this.path}.tmp-${process.pid}-${this.#writeCount}`;
    try {
      const handle = await open(temporary, 'w', 0o600);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.path);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }

    await syncDirectory(this.directory);
  }

  /** The tasks this replica owns in the state files of another sharding, first one first. */
  async #importOtherFiles(): Promise<LoadedRegisteredTasks> {
    const empty = { tasks: [], problems: [], movedAsideTo: undefined };
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return empty;
    }

    const kept = new Map<string, RegisteredTask>();
    const problems: string[] = [];
    const importedFrom: string[] = [];
    for (const name of names.filter((entry) => this.#isOtherSharding(entry)).sort()) {
      const path = join(this.directory, name);
      const text = await readFile(path, 'utf8').catch(() => undefined);
      if (text === undefined) {
        continue;
      }
      const parsed = parseStateFile(text, path);
      const owned = parsed.tasks.filter((task) => ownsTask(this.#shard, task.taskId));
      for (const task of owned) {
        if (!kept.has(task.taskId)) {
          kept.set(task.taskId, task);
        }
      }
      problems.push(...parsed.problems);
      if (owned.length > 0) {
        importedFrom.push(path);
      }
    }
    if (importedFrom.length === 0) {
      return { ...empty, problems };
    }

    return { tasks: [...kept.values()], problems, movedAsideTo: undefined, importedFrom };
  }

  /** Whether a file name is a state file written with another shard count, or without one. */
  #isOtherSharding(name: string): boolean {
    const match = STATE_FILE_NAME.exec(name);
    if (match === null) {
      return false;
    }
    const total = match[2] === undefined ? undefined : Number(match[2]);

    return total !== this.#shard?.total;
  }

  async #moveAside(
    tasks: RegisteredTask[],
    problems: string[],
    now: () => number,
  ): Promise<LoadedRegisteredTasks> {
    const stamp = new Date(now()).toISOString().replace(/[:.]/g, '-');
    const target = `${this.path}.corrupt-${stamp}`;
    try {
      await rename(this.path, target);
      await syncDirectory(this.directory);
    } catch (error) {
      problems.push(
        `${this.path}: cannot move the file aside to ${target}: ${describeFsError(error)}`,
      );

      return { tasks, problems, movedAsideTo: undefined };
    }

    return { tasks, problems, movedAsideTo: target };
  }

  // A crash between open and rename leaves a temporary file that nothing else would remove.
  async #removeStaleTemporaryFiles(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return;
    }

    const prefix = `${stateFileName(this.#shard)}.tmp-`;
    for (const name of names.filter((entry) => entry.startsWith(prefix))) {
      await unlink(join(this.directory, name)).catch(() => undefined);
    }
  }
}

/**
 * Parses the state file, keeping every entry that is sound. Text that is not JSON at all
 * is read line by line, since the file holds one entry per line.
 */
export function parseStateFile(
  text: string,
  path: string,
): { tasks: RegisteredTask[]; problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const salvaged = salvageLines(text, path);
    const reason = (error as Error).message;

    return {
      tasks: salvaged.tasks,
      problems: [`${path}: not valid JSON (${reason})`, ...salvaged.problems],
    };
  }

  const problems: string[] = [];
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { tasks: [], problems: [`${path}: not an object with "version" and "tasks"`] };
  }
  const { version, tasks } = json as Record<string, unknown>;
  if (version !== REGISTERED_TASKS_FORMAT_VERSION) {
    problems.push(
      `${path}: format version ${JSON.stringify(version)} is not ${REGISTERED_TASKS_FORMAT_VERSION}`,
    );
  }
  if (!Array.isArray(tasks)) {
    problems.push(`${path}: "tasks" is not a list`);

    return { tasks: [], problems };
  }

  const kept = new Map<string, RegisteredTask>();
  for (const [index, entry] of tasks.entries()) {
    const task = parseEntry(entry);
    if (typeof task === 'string') {
      problems.push(`${path}: tasks[${index}]: ${task}`);
    } else if (!kept.has(task.taskId)) {
      kept.set(task.taskId, task);
    }
  }

  return { tasks: [...kept.values()], problems };
}

function salvageLines(text: string, path: string): { tasks: RegisteredTask[]; problems: string[] } {
  const kept = new Map<string, RegisteredTask>();
  const problems: string[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    const trimmed = line.trim().replace(/,$/, '');
    if (!/^\{.*"taskId"/.test(trimmed) && !/^"[^"]*"$/.test(trimmed)) {
      continue;
    }

    let entry: unknown;
    try {
      entry = JSON.parse(trimmed);
    } catch {
      problems.push(`${path}:${index + 1}: unreadable entry`);
      continue;
    }
    const task = parseEntry(entry);
    if (typeof task === 'string') {
      problems.push(`${path}:${index + 1}: ${task}`);
    } else if (!kept.has(task.taskId)) {
      kept.set(task.taskId, task);
    }
  }

  return { tasks: [...kept.values()], problems };
}

/** One entry: the task, or why it is not one. A bare id string is accepted too. */
function parseEntry(entry: unknown): RegisteredTask | string {
  const taskId = typeof entry === 'string' ? entry : (entry as { taskId?: unknown })?.taskId;
  if (typeof taskId !== 'string' || !isTaskId(taskId)) {
    return `${JSON.stringify(taskId ?? entry)} is not a task id`;
  }

  const registeredAt = (entry as { registeredAt?: unknown })?.registeredAt;
  const registeredAtMs = typeof registeredAt === 'string' ? Date.parse(registeredAt) : Number.NaN;

  // A missing or broken date is no reason to lose the registration itself.
  return { taskId, registeredAtMs: Number.isNaN(registeredAtMs) ? undefined : registeredAtMs };
}

/** The file's text: one entry per line, so that a damaged file can still be read in part. */
export function renderStateFile(tasks: Iterable<RegisteredTask>): string {
  const entries = [...tasks].map(({ taskId, registeredAtMs }) =>
    JSON.stringify(
      registeredAtMs === undefined
        ? { taskId }
        : { taskId, registeredAt: new Date(registeredAtMs).toISOString() },
    ),
  );
  const version = REGISTERED_TASKS_FORMAT_VERSION;
  if (entries.length === 0) {
    return `{"version": ${version}, "tasks": []}\n`;
  }

  return `{"version": ${version}, "tasks": [\n${entries.join(',\n')}\n]}\n`;
}

/** Makes a rename in `directory` durable. Some platforms cannot open a directory; they skip it. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(directory, 'r');
  } catch (error) {
    if (['EISDIR', 'EPERM', 'EACCES'].includes((error as NodeJS.ErrnoException).code ?? '')) {
      return;
    }
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (!['EINVAL', 'EPERM', 'EBADF'].includes((error as NodeJS.ErrnoException).code ?? '')) {
      throw error;
    }
  } finally {
    await handle.close();
  }
}

/** The holder of a lock file: its pid, and its host when written by this version. */
function parseLockFile(text: string): { pid: number; host: string | undefined } | undefined {
  const [pidText = '', host] = text.split('\n').map((line) => line.trim());
  const pid = Number(pidText);
  if (!/^\d+$/.test(pidText) || !Number.isSafeInteger(pid) || pid <= 0) {
    // An empty or garbled lock is what a crash right after creating it leaves.
    return undefined;
  }

  return { pid, host: host === '' ? undefined : host };
}

/** Whether a process runs: signal 0 checks without sending anything. */
function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A file in the way of `storage.path` gets a sentence of its own; other errors pass. */
function describeDirectoryError(error: unknown, directory: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EEXIST' || code === 'ENOTDIR') {
    return new StateFileError(
      `storage.path ${directory} is not a directory (a file is in the way)`,
      error,
    );
  }

  return error;
}
