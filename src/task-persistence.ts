import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TASK_ID_PATTERN } from './config.js';

/** Name of the state file inside `storage.path`. */
export const REGISTERED_TASKS_FILE = 'registered-tasks.json';

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
}

/**
 * The file that keeps the API-registered task ids across restarts. Writes are atomic (a
 * temporary file in the same directory, fsync, rename, fsync of the directory) and run one
 * at a time, so a crash leaves either the old file or the new one, never a mix.
 */
export class RegisteredTaskFile {
  /** Absolute path of the state file. */
  readonly path: string;
  readonly #directory: string;
  #queue: Promise<void> = Promise.resolve();
  #writeCount = 0;

  constructor(directory: string) {
    this.#directory = directory;
    this.path = join(directory, REGISTERED_TASKS_FILE);
  }

  /**
   * Reads the file. A missing file is an empty list. A damaged one is moved aside to
   * `registered-tasks.json.corrupt-<time>` and whatever entries can still be read are
   * returned; this never throws for the file's content.
   */
  async load(now: () => number = Date.now): Promise<LoadedRegisteredTasks> {
    await this.#removeStaleTemporaryFiles();

    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return { tasks: [], problems: [], movedAsideTo: undefined };
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
    await mkdir(this.#directory, { recursive: true });
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

    await syncDirectory(this.#directory);
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
      await syncDirectory(this.#directory);
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
      names = await readdir(this.#directory);
    } catch {
      return;
    }

    const prefix = `${REGISTERED_TASKS_FILE}.tmp-`;
    for (const name of names.filter((entry) => entry.startsWith(prefix))) {
      await unlink(join(this.#directory, name)).catch(() => undefined);
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
  if (typeof taskId !== 'string' || !TASK_ID_PATTERN.test(taskId)) {
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

function describeFsError(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;

  return code ?? message;
}
