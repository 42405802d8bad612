import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_BASE_URL, loadConfigFile, parseConfig } from '../../src/config.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/config');
const BAD = join(FIXTURES, 'bad');
const SECRET = 's3cr3t-Malformed-Key-Value';

/** Loads a config file, expecting it to be refused; returns the problem lines. */
function problemsOf(path: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    loadConfigFile(path, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      return error.problems;
    }
    throw error;
  }

  throw new Error(`${path} was accepted`);
}

/** Parses config text, expecting it to be refused; returns the whole error message. */
function refusalOf(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(text, { source: 'inline', baseDir: '/', env });
  } catch (error) {
    if (error instanceof ConfigError) {
      return error.message;
    }
    throw error;
  }

  throw new Error('the config was accepted');
}

// Each bad fixture, with the one line its error must say; `<dir>` is the fixture folder.
const BAD_FILES: [file: string, message: string][] = [
  ['unknown-key.yaml', 'poll.intervall: unknown key'],
  [
    'bad-duration.yaml',
    'poll.interval: must be a duration such as 500ms, 30s, 5m or 24h (between cycles), got "30 seconds"',
  ],
  [
    'duration-as-number.yaml',
    'drivequant.timeout: must be a duration such as 500ms, 30s, 5m or 24h (per request), got 10',
  ],
  ['interval-zero.yaml', 'poll.interval: must be longer than 0 (between cycles), got "0s"'],
  ['concurrency-zero.yaml', 'poll.concurrency: must be a whole number from 1 to 1000, got 0'],
  ['concurrency-word.yaml', 'poll.concurrency: must be a whole number from 1 to 1000, got "four"'],
  [
    'task-id-parent-path.yaml',
    'tasks[1]: is not a task id (1 to 64 of A-Z a-z 0-9 _ -), got "../x"',
  ],
  ['task-id-slash.yaml', 'tasks[0]: is not a task id (1 to 64 of A-Z a-z 0-9 _ -), got "a/b"'],
  [
    'task-id-too-long.yaml',
    `tasks[0]: is not a task id (1 to 64 of A-Z a-z 0-9 _ -), got "${'a'.repeat(65)}"`,
  ],
  [
    'task-id-digits.yaml',
    'tasks[0]: must be a task id (a string; quote an id made of digits only), got 6.753030831e+23',
  ],
  [
    'missing-env-var.yaml',
    'drivequant.api_key: environment variable DQ_TEST_UNSET_VARIABLE is not set',
  ],
  ['both-key-and-key-file.yaml', 'drivequant: set api_key or api_key_file, not both'],
  [
    'no-key.yaml',
    'drivequant: one of api_key or api_key_file is required (for example api_key: ${DRIVEQUANT_API_KEY})',
  ],
  [
    'unreadable-key-file.yaml',
    'drivequant.api_key_file: cannot read "<dir>/does-not-exist.key": no such file',
  ],
  ['empty-key-file.yaml', 'drivequant.api_key_file: "<dir>/empty.key" is empty'],
  [
    'base-url-ftp.yaml',
    'drivequant.base_url: must be an http:// or https:// URL without query or fragment, got "ftp://service.drivequant.com"',
  ],
  [
    'base-url-query.yaml',
    'drivequant.base_url: must be an http:// or https:// URL without query or fragment, got "https://service.drivequant.com/?region=eu"',
  ],
  [
    'yaml-syntax-error.yaml',
    'YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ] at line 4, column 1',
  ],
  ['duplicate-key.yaml', 'YAML syntax: Map keys must be unique at line 5, column 3'],
  ['top-level-list.yaml', '(top level): must be a map of keys, got ["drivequant","poll"]'],
  ['malformed-api-key.yaml', 'drivequant.api_key: must be a string, got <secret>'],
];

describe('a bad config file', () => {
  it.each(BAD_FILES)('%s is refused with exactly one line naming the key', (file, message) => {
    const problems = problemsOf(join(BAD, file));

    expect(problems).toEqual([message.replaceAll('<dir>', BAD)]);
  });

  it('is reported with its path in the error message, one problem per indented line', () => {
    const path = join(BAD, 'unknown-key.yaml');

    expect(() => loadConfigFile(path, {})).toThrow(
      `invalid configuration in ${path}:\n  poll.intervall: unknown key`,
    );
  });

  it('lists every problem at once, not only the first', () => {
    const text =
      'drivequant:\n  api_key: k\n  retries: -1\npoll:\n  interval: soon\n  colour: red\n';

    const message = refusalOf(text);

    expect(message.split('\n').slice(1)).toEqual([
      '  drivequant.retries: must be a whole number from 0 to 10, got -1',
      '  poll.interval: must be a duration such as 500ms, 30s, 5m or 24h (between cycles), got "soon"',
      '  poll.colour: unknown key',
    ]);
  });

  it('that does not exist is refused with its path', () => {
    const path = join(BAD, 'no-such-config.yaml');

    expect(problemsOf(path)).toEqual(['cannot read the file: no such file']);
  });
});

describe('the secret in a refused config', () => {
  it('is not echoed when api_key has the wrong type', () => {
    const path = join(BAD, 'malformed-api-key.yaml');

    const problems = problemsOf(path);

    expect(problems.join('\n')).toContain('drivequant.api_key');
    expect(problems.join('\n')).not.toContain(SECRET);
  });

  it.each([
    ['a number', 'drivequant:\n  api_key: 424242424242\n', '424242424242'],
    ['a map', `drivequant:\n  api_key:\n    value: ${SECRET}\n`, SECRET],
    ['fine but another key is bad', 'drivequant:\n  api_key: ${KEY}\n  timeout: 1 s\n', SECRET],
  ])('is not echoed when api_key is %s', (_what, text, secret) => {
    const env = { KEY: SECRET };

    const message = refusalOf(text, env);

    expect(message).toContain('drivequant.');
    expect(message).not.toContain(secret);
  });

  it('is not echoed when the api token is malformed', () => {
    const text = `drivequant:\n  api_key: k\napi:\n  token: [${SECRET}]\n`;

    const message = refusalOf(text);

    expect(message).toContain('api.token: must be a string, got <secret>');
    expect(message).not.toContain(SECRET);
  });
});

describe('a good config file', () => {
  let dir: TempDir;

  beforeEach(async () => {
    dir = await createTempDir();
  });

  afterEach(async () => {
    await dir.remove();
  });

  it('gets every default when it sets only the key', () => {
    const path = join(FIXTURES, 'good/minimal.yaml');

    const { config, warnings } = loadConfigFile(path, { DRIVEQUANT_API_KEY: 'key-1' });

    expect(warnings).toEqual([]);
    expect(config.drivequant.apiKey.reveal()).toBe('key-1');
    expect({ ...config, drivequant: { ...config.drivequant, apiKey: undefined } }).toEqual({
      drivequant: { baseUrl: DEFAULT_BASE_URL, apiKey: undefined, timeoutMs: 10_000, retries: 2 },
      poll: {
        intervalMs: 30_000,
        concurrency: 4,
        terminalRetentionMs: 86_400_000,
        maxTasks: 10_000,
        notFoundLimit: 3,
        maxRequestsPerSecond: undefined,
      },
      tasks: [],
      api: { token: undefined },
      storage: { path: join(FIXTURES, 'good/data') },
      taskFiles: [],
    });
  });

  it('reads every key it sets', () => {
    const path = join(FIXTURES, 'good/full.yaml');

    const { config } = loadConfigFile(path, { DRIVEQUANT_API_KEY: 'k', EXPORTER_TOKEN: 't' });

    expect(config.drivequant.baseUrl).toBe('https://eu.service.example.com/api');
    expect(config.drivequant.timeoutMs).toBe(2500);
    expect(config.drivequant.retries).toBe(0);
    expect(config.poll).toEqual({
      intervalMs: 60_000,
      concurrency: 8,
      terminalRetentionMs: 5_400_000,
      maxTasks: 500,
      notFoundLimit: 5,
      maxRequestsPerSecond: 2.5,
    });
    expect(config.tasks).toEqual(['6753030831fe9826412bac5c', 'task_with-underscore']);
    expect(config.api.token?.reveal()).toBe('t');
  });

  it('expands ${VAR} from the given environment, inside longer strings too', () => {
    const text = 'drivequant:\n  base_url: https://${HOST}:8443\n  api_key: ${KEY}\n';
    const env = { HOST: 'dq.example.com', KEY: 'abc' };

    const { config } = parseConfig(text, { source: 'inline', baseDir: '/', env });

    expect(config.drivequant.baseUrl).toBe('https://dq.example.com:8443');
    expect(config.drivequant.apiKey.reveal()).toBe('abc');
  });

  it('reads $$ as a literal dollar and does not expand what follows it', () => {
    const text = "drivequant:\n  api_key: 'pa$$word$${NOT_A_VAR}'\n";

    const { config } = parseConfig(text, { source: 'inline', baseDir: '/', env: {} });

    expect(config.drivequant.apiKey.reveal()).toBe('pa$word${NOT_A_VAR}');
  });

  it('tracks a task listed twice once, in file order, and warns about the duplicate', () => {
    const text = 'drivequant:\n  api_key: k\ntasks:\n  - b1\n  - a2\n  - b1\n';

    const { config, warnings } = parseConfig(text, { source: 'inline', baseDir: '/', env: {} });

    expect(config.tasks).toEqual(['b1', 'a2']);
    expect(warnings).toEqual(['tasks[2]: "b1" is listed more than once; it is tracked once']);
  });

  it('reads api_key_file relative to the config file, trimmed of whitespace', async () => {
    await dir.write('api.key', '  the-key-from-a-file \n');
    const path = await dir.write('config.yaml', 'drivequant:\n  api_key_file: api.key\n');

    const { config } = loadConfigFile(path, {});

    expect(config.drivequant.apiKey.reveal()).toBe('the-key-from-a-file');
  });

  it('resolves storage.path and task_files against the config file directory', async () => {
    const path = await dir.write(
      'config.yaml',
      'drivequant:\n  api_key: k\nstorage:\n  path: ./state\ntask_files:\n  - tasks.d/*.txt\n  - /etc/dq/*.txt\n',
    );

    const { config } = loadConfigFile(path, {});

    expect(config.storage.path).toBe(join(dir.path, 'state'));
    expect(config.taskFiles).toEqual([join(dir.path, 'tasks.d/*.txt'), '/etc/dq/*.txt']);
  });

  it('accepts a section left empty, as when every key in it is commented out', () => {
    const text = 'drivequant:\n  api_key: k\npoll:\n  # interval: 30s\n';

    const { config } = parseConfig(text, { source: 'inline', baseDir: '/', env: {} });

    expect(config.poll.intervalMs).toBe(30_000);
  });

  it('warns about plain http to a remote host, where the key would travel in clear', () => {
    const text = 'drivequant:\n  base_url: http://dq.example.com/\n  api_key: k\n';

    const { warnings } = parseConfig(text, { source: 'inline', baseDir: '/', env: {} });

    expect(warnings).toEqual([
      'drivequant.base_url: "http://dq.example.com" is plain http to a non-loopback host; the API key would travel unencrypted',
    ]);
  });

  it.each([
    'http://127.0.0.1:8080',
    'http://localhost:8080',
    'http://[::1]:8080',
    'https://dq.example.com',
  ])('does not warn about %s', (url) => {
    const text = `drivequant:\n  base_url: ${url}\n  api_key: k\n`;

    const { warnings } = parseConfig(text, { source: 'inline', baseDir: '/', env: {} });

    expect(warnings).toEqual([]);
  });

  it('lets the demo go without a key when the key is optional', () => {
    const { config } = parseConfig('tasks: [a]\n', {
      source: 'demo',
      baseDir: '/',
      env: {},
      apiKeyOptional: true,
    });

    expect(config.tasks).toEqual(['a']);
  });
});
