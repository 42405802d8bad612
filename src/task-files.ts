import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, sep } from 'node:path';
import type { Logger } from 'pino';
import { glob } from 'tinyglobby';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { Secret } from './secret.js';
import { describeBadTaskId, isTaskId, shortPrintable } from './task-id.js';
import type { TaskStore } from './task-state.js';

/** Quiet time after a change event before the files are read, in milliseconds. */
export const DEFAULT_DEBOUNCE_MS = 250;

/** Characters of a bad entry shown in a warning: enough to find it, too few to leak a secret. */
export const SHOWN_ENTRY_LENGTH = 40;

/** One thing wrong in a task file. */
export interface TaskFileProblem {
  /** The file, absolute. */
  path: string;
  /** 1-based line number; 0 when the problem concerns the whole file. */
  line: number;
  message: string;
}

/** A task file, read. */
export interface ParsedTaskFile {
  /** The valid ids, in file order, without duplicates. */
  ids: string[];
  problems: TaskFileProblem[];
  /** Whether the file could not be understood at all (a YAML syntax error). */
  unusable: boolean;
}

/**
 * Reads a task file: YAML for `.yaml`, `.yml` and `.json` (a list of ids, or `tasks:` and a
 * list), plain text otherwise (one id per line, `#` starts a comment). Bad entries are
 * reported with their line and skipped; the rest still counts.
 */
export function parseTaskFile(path: string, text: string): ParsedTaskFile {
  const extension = extname(path).toLowerCase();
  if (['.yaml', '.yml', '.json'].includes(extension)) {
    return parseYamlTaskFile(path, text);
  }

  return parseTextTaskFile(path, text);
}

function parseTextTaskFile(path: string, text: string): ParsedTaskFile {
  const ids = new Set<string>();
  const problems: TaskFileProblem[] = [];
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    const content = line.replace(/#.*$/, '').trim();
    if (content === '') {
      continue;
    }
    if (isTaskId(content)) {
      ids.add(content);
    } else {
      problems.push({
        path,
        line: index + 1,
        message: describeBadTaskId(content, SHOWN_ENTRY_LENGTH),
      });
    }
  }

  return { ids: [...ids], problems, unusable: false };
}

function parseYamlTaskFile(path: string, text: string): ParsedTaskFile {
  const lineCounter = new LineCounter();
  // The failsafe schema reads every scalar as a string: an id made of digits only stays exact.
  const document = parseDocument(text, { schema: 'failsafe', lineCounter, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => lineCounter.linePos(offset ?? 0).line;
  if (document.errors.length > 0) {
    const problems = document.errors.map((error) => ({
      path,
      line: error.linePos?.[0].line ?? 0,
      message: `YAML syntax: ${firstLine(error.message).replace(/ at line \d+, column \d+:?$/, '')}`,
    }));

    return { ids: [], problems, unusable: true };
  }

  const problems: TaskFileProblem[] = [];
  let list: Node | null = document.contents;
  if (isMap(list)) {
    let found: Node | null = null;
    for (const pair of list.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (key === 'tasks') {
        found = pair.value as Node | null;
      } else {
        const line = lineOf((pair.key as Node | null)?.range?.[0]);
        problems.push({
          path,
          line,
          message: `unknown key "${shortPrintable(key, SHOWN_ENTRY_LENGTH)}"; expected tasks:`,
        });
      }
    }
    list = found;
  }

  const ids = new Set<string>();
  if (list === null || (isScalar(list) && list.value === '')) {
    return { ids: [], problems, unusable: false };
  }
  if (!isSeq(list)) {
    const line = lineOf(list.range?.[0]);
    problems.push({ path, line, message: 'expected a list of task ids, or tasks: and a list' });
    return { ids: [], problems, unusable: false };
  }

  for (const item of list.items) {
    const node = item as Node | null;
    const line = lineOf(node?.range?.[0]);
    const value = isScalar(node) ? String(node.value) : undefined;
    if (value !== undefined && isTaskId(value)) {
      ids.add(value);
    } else {
      problems.push({
        path,
        line,
        message:
          value === undefined
            ? 'not a task id (a list or map)'
            : describeBadTaskId(value, SHOWN_ENTRY_LENGTH),
      });
    }
  }

  return { ids: [...ids], problems, unusable: false };
}

/** Options of createTaskFileWatcher. */
export interface TaskFileWatcherOptions {
  /** Absolute glob patterns. */
  patterns: string[];
  /** Longest time between two reads of every file, in milliseconds: the poll interval. */
  intervalMs: number;
  store: TaskStore;
  logger: Logger;
  /** Quiet time after a change before reading, in milliseconds. */
  debounceMs?: number;
  /** Called with the number of ids the store refused for the task limit, after each read. */
  onRefused?: (count: number) => void;
  /**
   * The API key and the API token, read at every read of the files (reloads apply): a file
   * that holds one of them, such as `api_key_file` caught by a glob, is skipped.
   */
  secrets?: () => (Secret | undefined)[];
}

/** Keeps the store's `file` source equal to what the task files list. */
export interface TaskFileWatcher {
  /** Reads every file now; resolves once the store has the result. */
  refresh(): Promise<void>;
  /** Starts watching the directories and reading at least every interval. */
  start(): void;
  /** Swaps the patterns and interval, as a config reload does, and reads again. */
  reconfigure(patterns: string[], intervalMs: number): Promise<void>;
  /** Stops watching. */
  close(): void;
}

interface FileState {
  text: string;
  ids: string[];
}

/**
 * Creates a watcher of task files, in the spirit of Prometheus' file_sd: files are found by
 * glob, re-read when their directory reports a change (debounced) and at least every
 * interval, so a missed event or a new subdirectory costs at most one interval.
 */
export function createTaskFileWatcher(options: TaskFileWatcherOptions): TaskFileWatcher {
  const { store, logger } = options;
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  let patterns = options.patterns;
  let intervalMs = options.intervalMs;
  const files = new Map<string, FileState>();
  const watchers = new Map<string, FSWatcher>();
  let running: Promise<void> | undefined;
  let again = false;
  let debounceTimer: NodeJS.Timeout | undefined;
  let intervalTimer: NodeJS.Timeout | undefined;
  let started = false;
  let closed = false;
  let lastRefusedCount = 0;
  // Files skipped because they hold a secret, so that the warning comes once, not every read.
  const secretFiles = new Set<string>();

  async function readAll(): Promise<void> {
    const paths = patterns.length === 0 ? [] : await glob(patterns, globOptions());
    const matched = new Set(paths);
    for (const path of files.keys()) {
      if (!matched.has(path)) {
        files.delete(path);
      }
    }
    for (const path of secretFiles) {
      if (!matched.has(path)) {
        secretFiles.delete(path);
      }
    }
    for (const path of paths.sort()) {
      await readOne(path);
    }

    const ids = new Set<string>();
    for (const state of files.values()) {
      for (const id of state.ids) {
        ids.add(id);
      }
    }
    const refused = store.syncSource('file', ids);
    if (refused.length > 0) {
      options.onRefused?.(refused.length);
    }
    if (refused.length !== lastRefusedCount && refused.length > 0) {
      logger.error(
        { refused: refused.length, example: refused[0] },
        'task limit reached; some tasks from task files are not tracked',
      );
    }
    lastRefusedCount = refused.length;
    logger.debug({ files: files.size, tasks: ids.size }, 'task files read');
    if (started && !closed) {
      updateWatchers(paths);
    }
  }

  async function readOne(path: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        files.delete(path);
        return;
      }
      // The previous ids stay: a file being replaced must not untrack its tasks for a moment.
      logger.warn({ file: path, code }, 'cannot read task file; keeping its previous tasks');
      return;
    }

    if (holdsSecret(text, options.secrets?.() ?? [])) {
      // Neither its lines nor its ids may reach a log line, the API or /metrics.
      files.delete(path);
      if (!secretFiles.has(path)) {
        secretFiles.add(path);
        logger.warn(
          { file: path },
          'task file holds the API key or token (api_key_file or api.token_file?); skipped',
        );
      }
      return;
    }
    secretFiles.delete(path);

    const previous = files.get(path);
    if (previous?.text === text) {
      return;
    }

    const parsed = parseTaskFile(path, text);
    if (parsed.unusable) {
      const [first] = parsed.problems;
      const fields = {
        file: path,
        line: first?.line,
        location: `${path}:${first?.line ?? 0}`,
        problem: first?.message,
        errors: parsed.problems.length,
      };
      if (previous === undefined) {
        logger.warn(fields, 'task file unusable; none of its tasks are tracked');
        files.set(path, { text, ids: [] });
      } else {
        logger.warn(fields, 'task file unusable; keeping its previous tasks');
        files.set(path, { text, ids: previous.ids });
      }
      return;
    }

    for (const problem of parsed.problems) {
      logger.warn(
        {
          file: path,
          line: problem.line,
          location: `${path}:${problem.line}`,
          problem: problem.message,
        },
        'bad entry in task file; skipped',
      );
    }
    files.set(path, { text, ids: parsed.ids });
  }

  function refresh(): Promise<void> {
    if (running !== undefined) {
      again = true;
      return running;
    }

    running = (async () => {
      try {
        do {
          again = false;
          await readAll();
        } while (again);
      } finally {
        running = undefined;
      }
    })();

    return running;
  }

  function refreshQuietly(): void {
    refresh().catch((error: unknown) => {
      logger.error({ err: error }, 'reading task files failed');
    });
  }

  function onChange(): void {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(refreshQuietly, debounceMs);
    debounceTimer.unref();
  }

  function updateWatchers(paths: string[]): void {
    const wanted = new Set(paths.map((path) => dirname(path)));
    for (const pattern of patterns) {
      wanted.add(staticBase(pattern));
    }
    for (const [directory, watcher] of watchers) {
      if (!wanted.has(directory)) {
        watcher.close();
        watchers.delete(directory);
      }
    }
    for (const directory of wanted) {
      if (watchers.has(directory)) {
        continue;
      }
      try {
        const watcher = watch(directory, { persistent: false }, onChange);
        watcher.on('error', () => {
          watcher.close();
          watchers.delete(directory);
        });
        watchers.set(directory, watcher);
      } catch {
        // Not there yet, or not a directory: the periodic read covers it.
      }
    }
  }

  function scheduleInterval(): void {
    clearTimeout(intervalTimer);
    if (closed) {
      return;
    }
    intervalTimer = setTimeout(() => {
      refreshQuietly();
      scheduleInterval();
    }, intervalMs);
    intervalTimer.unref();
  }

  return {
    refresh,
    start() {
      started = true;
      scheduleInterval();
      updateWatchers([...files.keys()]);
    },
    async reconfigure(nextPatterns, nextIntervalMs) {
      patterns = nextPatterns;
      intervalMs = nextIntervalMs;
      if (started) {
        scheduleInterval();
      }
      await refresh();
    },
    close() {
      closed = true;
      clearTimeout(debounceTimer);
      clearTimeout(intervalTimer);
      for (const watcher of watchers.values()) {
        watcher.close();
      }
      watchers.clear();
    },
  };
}

function globOptions() {
  return { absolute: true, onlyFiles: true, expandDirectories: false, followSymbolicLinks: true };
}

/** The directory part of a pattern before its first glob character; the pattern's dir if none. */
function staticBase(pattern: string): string {
  const segments = pattern.split(sep);
  const firstGlob = segments.findIndex((segment) => /[*?[\]{}()!]/.test(segment));
  if (firstGlob === -1) {
    return dirname(pattern);
  }

  return segments.slice(0, firstGlob).join(sep) || sep;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? '';
}

/** Whether a file's whole text, or one of its lines, is one of the secrets. */
function holdsSecret(text: string, secrets: (Secret | undefined)[]): boolean {
  const values = secrets.map((secret) => secret?.reveal() ?? '').filter((value) => value !== '');
  if (values.length === 0) {
    return false;
  }
  const candidates = new Set([text.trim(), ...text.split(/\r?\n/).map((line) => line.trim())]);

  return values.some((value) => candidates.has(value));
}
