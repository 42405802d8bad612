import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument, type YAMLError } from 'yaml';
import { z } from 'zod';
import {
  describeFsError,
  describeIssue,
  describeValue,
  type Expansions,
  findUnquotedTaskIds,
  formatPath,
  pathKey,
  printable,
  type ValueOrigins,
} from './config-messages.js';
import { parseDuration } from './duration.js';
import { Secret } from './secret.js';
import { TASK_ID_PATTERN, TASK_ID_RULE } from './task-id.js';

/** DriveQuant's production API. */
export const DEFAULT_BASE_URL = 'https://service.drivequant.com';

/** The exporter's configuration, validated, with durations in milliseconds and secrets read. */
export interface ExporterConfig {
  drivequant: {
    /** Base URL of the API, without a trailing slash. */
    baseUrl: string;
    /** The enterprise API key, sent as `x-dq-enterprise-api-key`. */
    apiKey: Secret;
    /** Time allowed for one request, in milliseconds. */
    timeoutMs: number;
    /** Extra attempts after a timeout, network error, 429 or 5xx. */
    retries: number;
  };
  poll: {
    /** Time between the starts of two poll cycles, in milliseconds. */
    intervalMs: number;
    /** Requests in flight at most. */
    concurrency: number;
    /** How long a COMPLETED, CANCELED or FAILED task stays exported, in milliseconds. */
    terminalRetentionMs: number;
    /** Tracked tasks at most, across every source. */
    maxTasks: number;
    /** 404 answers in a row after which a task is marked not found and no longer polled. */
    notFoundLimit: number;
    /** Requests started per second at most, when set. */
    maxRequestsPerSecond: number | undefined;
  };
  /** Task ids from the config file, de-duplicated, in file order. */
  tasks: string[];
  api: {
    /** Bearer token that guards the write endpoints; undefined turns them off. */
    token: Secret | undefined;
  };
  storage: {
    /** Directory for the registered-task state file, absolute. */
    path: string;
  };
  /** Glob patterns of task files, absolute. */
  taskFiles: string[];
}

/** A config that cannot be used, with one line per problem, each naming its key path. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(source: string, problems: string[]) {
    super(`invalid configuration in ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A loaded config and the non-fatal remarks about it (duplicates, insecure URLs). */
export interface LoadedConfig {
  config: ExporterConfig;
  warnings: string[];
}

/** Longest interval or timeout, in milliseconds: Node fires a timer past 2^31-1 ms at once. */
const MAX_TIMER_MS = 24 * 86_400_000;

const duration = (what: string, options: { allowZero?: boolean; timer?: boolean } = {}) =>
  z
    .string({ error: `must be a duration such as 500ms, 30s, 5m or 24h (${what})` })
    .transform((text, context) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        context.addIssue({
          code: 'custom',
          message: `must be a duration such as 500ms, 30s, 5m or 24h (${what})`,
        });
        return z.NEVER;
      }
      // A zero interval or timeout would spin the poller or fail every request at once.
      if (ms === 0 && options.allowZero === false) {
        context.addIssue({ code: 'custom', message: `must be longer than 0 (${what})` });
        return z.NEVER;
      }
      if (ms > MAX_TIMER_MS && options.timer === true) {
        context.addIssue({ code: 'custom', message: `must be at most 24d (${what})` });
        return z.NEVER;
      }

      return ms;
    });

const wholeNumber = (min: number, max: number) =>
  z
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be a whole number from ${min} to ${max}` })
    .max(max, { error: `must be a whole number from ${min} to ${max}` });

const nonEmpty = z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' });

const baseUrl = z
  .string({ error: 'must be an http:// or https:// URL' })
  .superRefine((text, context) => {
    // A password in the URL would be echoed by this very message and by the http warning.
    if (/^[^:/?#]*:\/\/[^/?#]*@/.test(text)) {
      context.addIssue({
        code: 'custom',
        message: 'must not contain a user name or password',
        params: { hideValue: true },
      });
      return;
    }
    if (!(/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(text) && URL.canParse(text))) {
      context.addIssue({
        code: 'custom',
        message: 'must be an http:// or https:// URL without query or fragment',
      });
    }
  });

const taskId = z
  // YAML reads an id of digits only as a number, which may already have lost digits.
  .string({ error: 'must be a task id (a string; quote an id made of digits only)' })
  .regex(TASK_ID_PATTERN, { error: `is not a task id (${TASK_ID_RULE})` });

/** A mapping that may be left empty: `api:` followed only by comments is YAML's null. */
const section = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === null ? undefined : value), schema);

const configSchema = z.strictObject({
  drivequant: section(
    z
      .strictObject({
        base_url: baseUrl.prefault(DEFAULT_BASE_URL),
        api_key: nonEmpty.optional(),
        api_key_file: nonEmpty.optional(),
        timeout: duration('per request', { allowZero: false, timer: true }).prefault('10s'),
        retries: wholeNumber(0, 10).prefault(2),
      })
      .prefault({}),
  ),
  poll: section(
    z
      .strictObject({
        interval: duration('between cycles', { allowZero: false, timer: true }).prefault('30s'),
        concurrency: wholeNumber(1, 1000).prefault(4),
        terminal_retention: duration('how long finished tasks stay').prefault('24h'),
        max_tasks: wholeNumber(1, 1_000_000).prefault(10_000),
        not_found_limit: wholeNumber(1, 1000).prefault(3),
        // Below 0.01 the limiter's spacing outgrows what a Node timer can wait.
        max_requests_per_second: z
          .number({ error: 'must be a number of at least 0.01' })
          .min(0.01, { error: 'must be a number of at least 0.01' })
          .optional(),
      })
      .prefault({}),
  ),
  tasks: z.array(taskId, { error: 'must be a list of task ids' }).nullable().prefault([]),
  api: section(
    z
      .strictObject({
        token: nonEmpty.optional(),
        token_file: nonEmpty.optional(),
      })
      .prefault({}),
  ),
  storage: section(z.strictObject({ path: nonEmpty.prefault('./data') }).prefault({})),
  task_files: z
    .array(nonEmpty, { error: 'must be a list of glob patterns' })
    .nullable()
    .prefault([]),
});

type RawConfig = z.output<typeof configSchema>;

/** Reads, expands and validates a config file. Throws ConfigError naming every bad key. */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${describeFsError(error)}`]);
  }

  return parseConfig(text, { source: path, baseDir: dirname(resolve(path)), env });
}

/** Options of parseConfig. */
export interface ParseConfigOptions {
  /** Name of the config in messages, usually its path. */
  source: string;
  /** Directory that relative paths in the config are resolved against. */
  baseDir: string;
  /** Environment that `${VAR}` is read from. */
  env: NodeJS.ProcessEnv;
  /** Whether a config without an API key is acceptable (the demo brings its own). */
  apiKeyOptional?: boolean;
}

/** Parses config text. Throws ConfigError naming every bad key. */
export function parseConfig(text: string, options: ParseConfigOptions): LoadedConfig {
  const document = readYaml(options.source, () => parseDocument(text, { uniqueKeys: true }));
  if (document.errors.length > 0) {
    throw new ConfigError(options.source, describeYamlErrors(document.errors));
  }

  const problems: string[] = [];
  const origins: ValueOrigins = {
    expansions: new Map(),
    unquotedTaskIds: findUnquotedTaskIds(document),
  };
  const value = readYaml(options.source, () => document.toJS());
  const raw = expandEnv(value ?? {}, [], options.env, origins.expansions, problems);
  if (problems.length > 0) {
    throw new ConfigError(options.source, problems);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      options.source,
      parsed.error.issues.flatMap((issue) => describeIssue(issue, raw, origins)),
    );
  }

  return resolveConfig(parsed.data, options, origins, problems);
}

/** Runs a step of the YAML library, which throws plain errors (an alias bomb's ReferenceError). */
function readYaml<T>(source: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    throw new ConfigError(source, [`YAML: ${printable((error as Error).message)}`]);
  }
}

/** YAML errors shown at most, so that a binary file gives a short answer. */
const MAX_YAML_ERRORS = 10;

function describeYamlErrors(errors: readonly YAMLError[]): string[] {
  const lines = errors.slice(0, MAX_YAML_ERRORS).map((error) => {
    // The message quotes the offending token, which may be binary or long; the position stays.
    const firstLine = error.message.split('\n')[0] ?? '';
    const match = /^(.*?)( at line \d+, column \d+)?:?$/s.exec(firstLine);

    return `YAML syntax: ${printable(match?.[1] ?? firstLine)}${match?.[2] ?? ''}`;
  });
  if (errors.length > MAX_YAML_ERRORS) {
    lines.push(`YAML syntax: ${errors.length - MAX_YAML_ERRORS} more errors not shown`);
  }

  return lines;
}

function resolveConfig(
  raw: RawConfig,
  options: ParseConfigOptions,
  origins: ValueOrigins,
  problems: string[],
): LoadedConfig {
  const warnings: string[] = [];
  const apiKey = readSecret(raw.drivequant, 'api_key', 'drivequant', options, origins, problems);
  const token = readSecret(raw.api, 'token', 'api', options, origins, problems);
  if (apiKey === undefined && !options.apiKeyOptional && problems.length === 0) {
    problems.push(
      'drivequant: one of api_key or api_key_file is required (for example api_key: ${DRIVEQUANT_API_KEY})',
    );
  }

  const tasks: string[] = [];
  const seen = new Set<string>();
  for (const [index, id] of (raw.tasks ?? []).entries()) {
    if (seen.has(id)) {
      const shown = describeValue(id, ['tasks', index], origins);
      warnings.push(`tasks[${index}]: ${shown} is listed more than once; it is tracked once`);
      continue;
    }
    seen.add(id);
    tasks.push(id);
  }
  // Past max_tasks the store would refuse the rest at every start, which --config.check
  // would not show.
  if (tasks.length > raw.poll.max_tasks) {
    problems.push(
      `tasks: ${tasks.length} ids listed, more than poll.max_tasks (${raw.poll.max_tasks})`,
    );
  }
  if (problems.length > 0) {
    throw new ConfigError(options.source, problems);
  }

  const baseUrlText = raw.drivequant.base_url.replace(/\/+$/, '');
  if (isPlainHttpToRemoteHost(baseUrlText)) {
    const shown = describeValue(baseUrlText, ['drivequant', 'base_url'], origins);
    warnings.push(
      `drivequant.base_url: ${shown} is plain http to a non-loopback host; the API key would travel unencrypted`,
    );
  }

  const config: ExporterConfig = {
    drivequant: {
      baseUrl: baseUrlText,
      apiKey: apiKey ?? new Secret(''),
      timeoutMs: raw.drivequant.timeout,
      retries: raw.drivequant.retries,
    },
    poll: {
      intervalMs: raw.poll.interval,
      concurrency: raw.poll.concurrency,
      terminalRetentionMs: raw.poll.terminal_retention,
      maxTasks: raw.poll.max_tasks,
      notFoundLimit: raw.poll.not_found_limit,
      maxRequestsPerSecond: raw.poll.max_requests_per_second,
    },
    tasks,
    api: { token },
    storage: { path: resolve(options.baseDir, raw.storage.path) },
    taskFiles: (raw.task_files ?? []).map((pattern) => resolve(options.baseDir, pattern)),
  };

  return { config, warnings };
}

/** Reads `<name>` or `<name>_file` of a section, exactly one of which may be set. */
function readSecret(
  section: Record<string, unknown>,
  name: 'api_key' | 'token',
  sectionPath: string,
  options: ParseConfigOptions,
  origins: ValueOrigins,
  problems: string[],
): Secret | undefined {
  const inline = section[name];
  const file = section[`${name}_file`];
  if (typeof inline === 'string' && typeof file === 'string') {
    problems.push(`${sectionPath}: set ${name} or ${name}_file, not both`);
    return undefined;
  }
  if (typeof inline === 'string') {
    return checkSecret(inline, name, `${sectionPath}.${name}:`, problems);
  }
  if (typeof file !== 'string') {
    return undefined;
  }

  const path = resolve(options.baseDir, file);
  // `api_key_file: ${DRIVEQUANT_API_KEY}` is an easy slip: a path from the environment is
  // not shown, as it may be the key itself.
  const shownPath = describeValue(path, [sectionPath, `${name}_file`], origins);
  let value: string;
  try {
    value = readFileSync(path, 'utf8').trim();
  } catch (error) {
    problems.push(
      `${sectionPath}.${name}_file: cannot read ${shownPath}: ${describeFsError(error)}`,
    );
    return undefined;
  }
  if (value === '') {
    problems.push(`${sectionPath}.${name}_file: ${shownPath} is empty`);
    return undefined;
  }

  return checkSecret(value, name, `${sectionPath}.${name}_file: ${shownPath}`, problems);
}

/**
 * Refuses a secret that could never be sent: Node rejects a header value with a control
 * character or a character beyond Latin-1 (ERR_INVALID_CHAR), and a bearer token ends at
 * the first space. The message names where the secret came from, never its value.
 */
function checkSecret(
  value: string,
  name: 'api_key' | 'token',
  where: string,
  problems: string[],
): Secret | undefined {
  let problem: string | undefined;
  if (/\p{Cc}/u.test(value)) {
    problem = 'contains a control character or newline';
  } else if (name === 'token' && /\s/.test(value)) {
    problem = 'contains whitespace, which an Authorization: Bearer header cannot carry';
  } else if (/[^\x20-\xff]/.test(value)) {
    problem = 'contains a character that an HTTP header cannot carry (beyond Latin-1)';
  }
  if (problem !== undefined) {
    problems.push(`${where} ${problem}`);
    return undefined;
  }

  return new Secret(value);
}

/**
 * Replaces `${VAR}` in every string value with the environment variable's value; `$$` stands
 * for a literal `$`. Expansion happens after YAML parsing, so a value can never inject keys.
 */
function expandEnv(
  value: unknown,
  path: (string | number)[],
  env: NodeJS.ProcessEnv,
  expansions: Expansions,
  problems: string[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name?: string) => {
      if (name === undefined) {
        return '$';
      }
      const key = pathKey(path);
      expansions.set(key, [...(expansions.get(key) ?? []), name]);
      const found = env[name];
      if (found === undefined) {
        problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
        return whole;
      }

      return found;
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => expandEnv(item, [...path, index], env, expansions, problems));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        expandEnv(item, [...path, key], env, expansions, problems),
      ]),
    );
  }

  return value;
}

function isPlainHttpToRemoteHost(url: string): boolean {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:') {
    return false;
  }

  return (
    !['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname) &&
    !parsed.hostname.startsWith('127.')
  );
}
