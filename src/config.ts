import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { Secret } from './secret.js';

/** DriveQuant's production API. */
export const DEFAULT_BASE_URL = 'https://service.drivequant.com';

/** What a task id may look like: what the retry endpoints return, and nothing a URL could abuse. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

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

const duration = (what: string, allowZero = true) =>
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
      if (ms === 0 && !allowZero) {
        context.addIssue({ code: 'custom', message: `must be longer than 0 (${what})` });
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
  .refine((text) => /^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(text) && URL.canParse(text), {
    error: 'must be an http:// or https:// URL without query or fragment',
  });

const taskId = z
  // YAML reads an id of digits only as a number, which may already have lost digits.
  .string({ error: 'must be a task id (a string; quote an id made of digits only)' })
  .regex(TASK_ID_PATTERN, { error: 'is not a task id (1 to 64 of A-Z a-z 0-9 _ -)' });

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
        timeout: duration('per request', false).prefault('10s'),
        retries: wholeNumber(0, 10).prefault(2),
      })
      .prefault({}),
  ),
  poll: section(
    z
      .strictObject({
        interval: duration('between cycles', false).prefault('30s'),
        concurrency: wholeNumber(1, 1000).prefault(4),
        terminal_retention: duration('how long finished tasks stay').prefault('24h'),
        max_tasks: wholeNumber(1, 1_000_000).prefault(10_000),
        not_found_limit: wholeNumber(1, 1000).prefault(3),
        max_requests_per_second: z
          .number({ error: 'must be a number above 0' })
          .positive({ error: 'must be a number above 0' })
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
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      options.source,
      document.errors.map(
        (error) => `YAML syntax: ${error.message.split('\n')[0]?.replace(/:$/, '')}`,
      ),
    );
  }

  const problems: string[] = [];
  const raw = expandEnv(document.toJS() ?? {}, [], options.env, problems);
  if (problems.length > 0) {
    throw new ConfigError(options.source, problems);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      options.source,
      parsed.error.issues.map((i) => describeIssue(i, raw)),
    );
  }

  return resolveConfig(parsed.data, options, problems);
}

function resolveConfig(
  raw: RawConfig,
  options: ParseConfigOptions,
  problems: string[],
): LoadedConfig {
  const warnings: string[] = [];
  const apiKey = readSecret(raw.drivequant, 'api_key', 'drivequant', options, problems);
  const token = readSecret(raw.api, 'token', 'api', options, problems);
  if (apiKey === undefined && !options.apiKeyOptional && problems.length === 0) {
    problems.push(
      'drivequant: one of api_key or api_key_file is required (for example api_key: ${DRIVEQUANT_API_KEY})',
    );
  }
  if (problems.length > 0) {
    throw new ConfigError(options.source, problems);
  }

  const tasks: string[] = [];
  const seen = new Set<string>();
  for (const [index, id] of (raw.tasks ?? []).entries()) {
    if (seen.has(id)) {
      warnings.push(`tasks[${index}]: "${id}" is listed more than once; it is tracked once`);
      continue;
    }
    seen.add(id);
    tasks.push(id);
  }

  const baseUrlText = raw.drivequant.base_url.replace(/\/+$/, '');
  if (isPlainHttpToRemoteHost(baseUrlText)) {
    warnings.push(
      `drivequant.base_url: "${baseUrlText}" is plain http to a non-loopback host; the API key would travel unencrypted`,
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
  name: string,
  sectionPath: string,
  options: ParseConfigOptions,
  problems: string[],
): Secret | undefined {
  const inline = section[name];
  const file = section[`${name}_file`];
  if (typeof inline === 'string' && typeof file === 'string') {
    problems.push(`${sectionPath}: set ${name} or ${name}_file, not both`);
    return undefined;
  }
  if (typeof inline === 'string') {
    return new Secret(inline);
  }
  if (typeof file !== 'string') {
    return undefined;
  }

  const path = resolve(options.baseDir, file);
  let value: string;
  try {
    value = readFileSync(path, 'utf8').trim();
  } catch (error) {
    problems.push(`${sectionPath}.${name}_file: cannot read "${path}": ${describeFsError(error)}`);
    return undefined;
  }
  if (value === '') {
    problems.push(`${sectionPath}.${name}_file: "${path}" is empty`);
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
  problems: string[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name?: string) => {
      if (name === undefined) {
        return '$';
      }
      const found = env[name];
      if (found === undefined) {
        problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
        return whole;
      }

      return found;
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => expandEnv(item, [...path, index], env, problems));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        expandEnv(item, [...path, key], env, problems),
      ]),
    );
  }

  return value;
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key`).join('\n  ');
  }

  const path = formatPath(issue.path);
  const value = valueAt(raw, issue.path);
  if (value === undefined) {
    return `${path}: is required`;
  }
  const message =
    issue.code === 'invalid_type' && issue.expected === 'object'
      ? 'must be a map of keys'
      : issue.message;

  // Secrets are never echoed back, even when they are malformed.
  const shown = /(api_key|token)$/.test(path) ? '<secret>' : JSON.stringify(value);

  return `${path}: ${message}, got ${shown}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (current === null || typeof current !== 'object') {
      return undefined;
    }
    current = (current as Record<PropertyKey, unknown>)[key];
  }

  return current;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) {
    return '(top level)';
  }

  return path
    .map((key, index) =>
      typeof key === 'number' ? `[${key}]` : `${index > 0 ? '.' : ''}${String(key)}`,
    )
    .join('');
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

/** A short reason for a failed file read: "no such file", "permission denied"... */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    return 'no such file';
  }
  if (code === 'EACCES') {
    return 'permission denied';
  }
  if (code === 'EISDIR') {
    return 'is a directory';
  }

  return code ?? String(error);
}
