import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from './config.js';
import { createDriveQuantClient, type RetryAnswer } from './drivequant-client.js';
import { Secret } from './secret.js';
import { TASK_API_PATH } from './task-api.js';
import { UpstreamError } from './upstream-error.js';

/** The environment variable the retry command reads the exporter's API token from. */
export const TOKEN_ENV = 'DRIVEQUANT_EXPORTER_TOKEN';

/** How long the registration request may take, in milliseconds. */
const REGISTER_TIMEOUT_MS = 10_000;

export const RETRY_USAGE = `Usage:
  drivequant-task-exporter retry trips|crashes --config.file=PATH [--register URL]
      [--token-file PATH] [--output=text|json]

Asks DriveQuant to push the failed trips or crashes again, prints the new task id and its
item count, and, with --register, registers the task with a running exporter.

Flags:
  --config.file=PATH   the exporter's configuration (drivequant.base_url and api_key)
  --register URL       the exporter's address, such as http://localhost:9850
  --token-file PATH    file holding the exporter's api.token; otherwise ${TOKEN_ENV},
                       otherwise api.token from the configuration
  --output=FORMAT      text (default) or json
`;

/** Where the command reads and writes; the process's own by default. */
export interface RetryCommandIo {
  env: NodeJS.ProcessEnv;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

interface RetryArguments {
  kind: 'trips' | 'crashes';
  configFile: string;
  registerUrl: string | undefined;
  tokenFile: string | undefined;
  output: 'text' | 'json';
}

/** What registering with the exporter gave. */
type Registration =
  | { ok: true; created: boolean; url: string }
  | { ok: false; url: string; error: string };

class RetryUsageError extends Error {}

/**
 * Runs `retry trips|crashes`. Resolves with the exit code: 0 when the retry started (and was
 * registered, when asked), 1 when DriveQuant or the exporter refused, 2 for a bad command line.
 */
export async function runRetryCommand(
  argv: string[],
  io: RetryCommandIo = { env: process.env, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const fail = (message: string, code: number) => {
    io.stderr.write(`drivequant-task-exporter retry: ${hideUserinfo(message)}\n`);
    return code;
  };

  let args: RetryArguments | 'help';
  try {
    args = parseRetryArguments(argv);
  } catch (error) {
    return fail(`${(error as Error).message}\nTry retry --help.`, 2);
  }
  if (args === 'help') {
    io.stdout.write(RETRY_USAGE);
    return 0;
  }

  let config: ReturnType<typeof loadConfigFile>['config'];
  let token: Secret | undefined;
  try {
    config = loadConfigFile(args.configFile, io.env).config;
    token = args.registerUrl === undefined ? undefined : readToken(args, io.env, config.api.token);
  } catch (error) {
    return fail((error as Error).message, error instanceof RetryUsageError ? 2 : 1);
  }

  // A retry starts work at DriveQuant: make sure first that its task can be registered.
  if (args.registerUrl !== undefined && token !== undefined) {
    const problem = await checkRegistration(args.registerUrl, token);
    if (problem !== undefined) {
      return fail(`${problem}; no retry was started`, 1);
    }
  }

  const client = createDriveQuantClient({
    baseUrl: config.drivequant.baseUrl,
    apiKey: config.drivequant.apiKey,
    timeoutMs: config.drivequant.timeoutMs,
    retries: 0,
    maxRetryDelayMs: 0,
    maxSockets: 1,
  });
  let answer: RetryAnswer;
  try {
    answer = await client.retryFailed(args.kind);
  } catch (error) {
    return fail(describeRetryError(args.kind, error), 1);
  } finally {
    client.close();
  }

  const registration =
    args.registerUrl === undefined || token === undefined
      ? undefined
      : await register(args.registerUrl, token, answer.taskId);
  const print = (text: string) => io.stdout.write(hideUserinfo(text));
  if (args.output === 'json') {
    print(
      `${JSON.stringify({ kind: args.kind, ...answer, registration: registration ?? null })}\n`,
    );
  } else {
    print(`task ${answer.taskId}: ${answer.items} items\n`);
    if (registration?.ok) {
      const what = registration.created ? 'registered with' : 'already tracked by';
      print(`${what} ${registration.url}\n`);
    }
  }

  if (registration !== undefined && !registration.ok) {
    return fail(
      `task ${answer.taskId} was started but not registered with ${registration.url}: ${registration.error}`,
      1,
    );
  }

  return 0;
}

function parseRetryArguments(argv: string[]): RetryArguments | 'help' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'config.file': { type: 'string' },
      register: { type: 'string' },
      'token-file': { type: 'string' },
      output: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    return 'help';
  }

  const [kind, extra] = positionals;
  if (kind !== 'trips' && kind !== 'crashes') {
    throw new RetryUsageError(
      kind === undefined
        ? 'say what to retry: trips or crashes'
        : `"${kind}" is not trips or crashes`,
    );
  }
  if (extra !== undefined) {
    throw new RetryUsageError(`unexpected argument "${extra}"`);
  }
  const configFile = values['config.file'];
  if (configFile === undefined) {
    throw new RetryUsageError(
      '--config.file is required: the DriveQuant base_url and api_key are read from it',
    );
  }
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') {
    throw new RetryUsageError(`--output: "${output}" is not text or json`);
  }

  return {
    kind,
    configFile,
    registerUrl: values.register === undefined ? undefined : parseRegisterUrl(values.register),
    tokenFile: values['token-file'],
    output,
  };
}

/**
 * The exporter's task endpoint from `--register`: a base URL, or the endpoint itself. A user
 * and password in it are dropped: the bearer token authenticates, also past basic auth, and
 * fetch refuses a URL that carries credentials.
 */
function parseRegisterUrl(text: string): string {
  if (!/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(text) || !URL.canParse(text)) {
    // A URL that does not parse may still hold a password: it is not echoed.
    const shown = text.includes('@') ? 'the URL' : `"${text}"`;
    throw new RetryUsageError(`--register: ${shown} is not an http:// or https:// URL`);
  }

  const url = new URL(text);
  url.username = '';
  url.password = '';
  const base = url.href.replace(/\/+$/, '');

  return base.endsWith(TASK_API_PATH) ? base : `${base}${TASK_API_PATH}`;
}

/** The token, read before DriveQuant is asked: a retry that cannot be registered is a surprise. */
function readToken(
  args: RetryArguments,
  env: NodeJS.ProcessEnv,
  configured: Secret | undefined,
): Secret {
  if (args.tokenFile !== undefined) {
    let value: string;
    try {
      value = readFileSync(args.tokenFile, 'utf8').trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new RetryUsageError(`--token-file: cannot read "${args.tokenFile}": ${code}`);
    }
    if (value === '') {
      throw new RetryUsageError(`--token-file: "${args.tokenFile}" is empty`);
    }

    return new Secret(value);
  }

  const fromEnv = env[TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return new Secret(fromEnv);
  }
  if (configured !== undefined) {
    return configured;
  }

  throw new RetryUsageError(
    `--register needs the exporter's token: --token-file, ${TOKEN_ENV}, or api.token in the configuration`,
  );
}

/**
 * Asks the exporter, without side effects, whether it would take a registration with this
 * token: `HEAD /api/v1/tasks` checks a bearer token when one is sent. Returns why not, or
 * undefined when it would.
 */
async function checkRegistration(url: string, token: Secret): Promise<string | undefined> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'HEAD',
      headers: { authorization: `Bearer ${token.reveal()}` },
      signal: AbortSignal.timeout(REGISTER_TIMEOUT_MS),
    });
  } catch (error) {
    return `cannot reach the exporter at ${url}: ${describeFetchError(error)}`;
  }

  if (response.ok) {
    return undefined;
  }
  const why =
    response.status === 401
      ? 'the token was refused (check --token-file, DRIVEQUANT_EXPORTER_TOKEN or api.token)'
      : response.status === 403
        ? 'its task API is read-only (no api.token configured)'
        : response.status === 404
          ? 'there is no task API at this address'
          : 'it did not accept the request';

  return `the exporter at ${url} answered HTTP ${response.status}: ${why}`;
}

async function register(url: string, token: Secret, taskId: string): Promise<Registration> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.reveal()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ taskId }),
      signal: AbortSignal.timeout(REGISTER_TIMEOUT_MS),
    });
  } catch (error) {
    return { ok: false, url, error: describeFetchError(error) };
  }

  if (response.status === 200 || response.status === 201) {
    await response.body?.cancel();
    return { ok: true, created: response.status === 201, url };
  }

  let detail = '';
  try {
    const body = (await response.json()) as { error?: unknown };
    detail = typeof body.error === 'string' ? `: ${body.error}` : '';
  } catch {
    // Not the exporter's JSON: the status says enough.
  }

  return { ok: false, url, error: `HTTP ${response.status}${detail}` };
}

function describeFetchError(error: unknown): string {
  if ((error as Error).name === 'TimeoutError') {
    return 'no answer in time';
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;

  return `cannot connect (${cause?.code ?? cause?.message ?? 'network error'})`;
}

function describeRetryError(kind: string, error: unknown): string {
  if (error instanceof ConfigError) {
    return error.message;
  }
  if (!(error instanceof UpstreamError)) {
    return `retry of failed ${kind} failed: ${(error as Error).message}`;
  }
  if (error.code === 'UNAUTHORIZED') {
    return `DriveQuant refused the API key (HTTP ${error.statusCode}); check drivequant.api_key`;
  }
  // The request reached DriveQuant and may have started the retry: asking again blindly
  // would be refused as "already in progress" at best, or start a second push at worst.
  if (error.code === 'INVALID_RESPONSE') {
    return `DriveQuant accepted the retry of failed ${kind} (HTTP ${error.statusCode ?? 200}) but its answer could not be read (${error.message}): the retry may have started, with a task id nobody knows; check with DriveQuant before retrying again`;
  }
  if (error.code === 'TIMEOUT') {
    return `DriveQuant did not answer the retry of failed ${kind} in time: the retry may have started; check with DriveQuant before retrying again`;
  }

  return `retry of failed ${kind} refused: ${error.message}`;
}

/** Drops the `user:password@` of every URL in a text: nothing printed may carry a password. */
function hideUserinfo(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s]*@/gi, '$1');
}
