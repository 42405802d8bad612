import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_BASE_URL, loadConfigFile, parseConfig } from '../../src/config.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/config');
const BAD = join(FIXTURES, 'bad');
const SECRET = 's3cr3t-Malformed-Key-Value';
/** The environment every bad fixture is loaded with: its value must never show. */
const FIXTURE_ENV = { DQ_TEST_SECRET: 'SIM-SEKRIT-77' };

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

/** Loads a config file, expecting it to be refused; returns the whole error message. */
function messageOf(path: string): string {
  try {
    loadConfigFile(path, {});
  } catch (error) {
    if (error instanceof ConfigError) {
      return error.message;
    }
    throw error;
  }

  throw new Error(`${path} was accepted`);
}

/** Bytes that look random but are the same on every run. */
function pseudoRandomBytes(length: number, seed: number): Buffer {
  const blocks: Buffer[] = [];
  for (let index = 0; index * 32 < length; index += 1) {
    blocks.push(createHash('sha256').update(`${seed}:${index}`).digest());
  }

  return Buffer.concat(blocks).subarray(0, length);
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
    'tasks[0]: must be quoted: YAML reads 675303083100000000000000 as a number, write "675303083100000000000000"',
  ],
  ['task-id-hex.yaml', 'tasks[0]: must be quoted: YAML reads 0x1F as a number, write "0x1F"'],
  ['too-many-tasks.yaml', 'tasks: 3 ids listed, more than poll.max_tasks (2)'],
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
  [
    'section-from-env.yaml',
    'drivequant: must be a map of keys, got <value from ${DQ_TEST_SECRET}>',
  ],
  ['api-section-from-env.yaml', 'api: must be a map of keys, got <value from ${DQ_TEST_SECRET}>'],
  [
    'base-url-from-env.yaml',
    'drivequant.base_url: must be an http:// or https:// URL without query or fragment, got <value from ${DQ_TEST_SECRET}>',
  ],
  ['base-url-userinfo.yaml', 'drivequant.base_url: must not contain a user name or password'],
  [
    'api-key-file-from-env.yaml',
    'drivequant.api_key_file: cannot read <value from ${DQ_TEST_SECRET}>: no such file',
  ],
  [
    'long-value.yaml',
    `poll.interval: must be a duration such as 500ms, 30s, 5m or 24h (between cycles), got "${'a'.repeat(99)}... (202 characters)`,
  ],
  [
    'control-characters.yaml',
    'poll.interval: must be a duration such as 500ms, 30s, 5m or 24h (between cycles), got "30s\\u001b[2J\\u0085\\u202eevil"',
  ],
  ['interval-too-long.yaml', 'poll.interval: must be at most 24d (between cycles), got "30d"'],
  ['timeout-too-long.yaml', 'drivequant.timeout: must be at most 24d (per request), got "100y"'],
  ['timeout-zero.yaml', 'drivequant.timeout: must be longer than 0 (per request), got "0s"'],
  [
    'rate-too-small.yaml',
    'poll.max_requests_per_second: must be a number of at least 0.01, got 0.001',
  ],
  ['api-key-newline.yaml', 'drivequant.api_key: contains a control character or newline'],
  [
    'api-key-file-newline.yaml',
    'drivequant.api_key_file: "<dir>/two-line.key" contains a control character or newline',
  ],
  [
    'token-whitespace.yaml',
    'api.token: contains whitespace, which an Authorization: Bearer header cannot carry',
  ],
  [
    'token-file-whitespace.yaml',
    'api.token_file: "<dir>/spaced.token" contains whitespace, which an Authorization: Bearer header cannot carry',
  ],
  ['alias-bomb.yaml', 'YAML: Excessive alias count indicates a resource exhaustion attack'],
];

describe('a bad config file', () => {
  it.each(BAD_FILES)('%s is refused with exactly one line naming the key', (file, message) => {
    const problems = problemsOf(join(BAD, file), FIXTURE_ENV);

    expect(problems).toEqual([message.replaceAll('<dir>', BAD)]);
    expect(problems.join('\n')).not.toContain(FIXTURE_ENV.DQ_TEST_SECRET);
  });

  it('that lists more tasks than the default poll.max_tasks is refused, counting them', () => {
    const ids = Array.from({ length: 10_001 }, (_, index) => `t${index}`);
    const text = `drivequant:\n  api_key: k\ntasks:\n${ids.map((id) => `  - ${id}\n`).join('')}`;

    const message = refusalOf(text);

    expect(message).toContain('tasks: 10001 ids listed, more than poll.max_tasks (10000)');
  });

  it('that is an alias bomb is refused as a config error naming the file', () => {
    const path = join(BAD, 'alias-bomb.yaml');

    expect(() => loadConfigFile(path, {})).toThrow(
      new ConfigError(path, ['YAML: Excessive alias count indicates a resource exhaustion attack']),
    );
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

  it.each([
    [
      'a section',
      'drivequant: ${KEY}\n',
      'drivequant: must be a map of keys, got <value from ${KEY}>',
    ],
    [
      'part of a value',
      'drivequant:\n  api_key: k\n  timeout: ${KEY}s\n',
      'drivequant.timeout: must be a duration such as 500ms, 30s, 5m or 24h (per request), got <value from ${KEY}>',
    ],
    [
      'an item of a list shown whole',
      '- ${KEY}\n- plain\n',
      '(top level): must be a map of keys, got ["<value from ${KEY}>","plain"]',
    ],
    [
      'an api_key inside a list shown whole',
      `- drivequant:\n    api_key: ${SECRET}\n`,
      '(top level): must be a map of keys, got [{"drivequant":{"api_key":"<secret>"}}]',
    ],
  ])('is not echoed when it is %s', (_what, text, line) => {
    const message = refusalOf(text, { KEY: SECRET });

    expect(message.split('\n')[1]).toBe(`  ${line}`);
    expect(message).not.toContain(SECRET);
  });

  it('is not echoed from a base_url with a password in it', () => {
    const message = refusalOf(`drivequant:\n  base_url: https://svc:${SECRET}@x.example.com\n`);

    expect(message).toContain('drivequant.base_url: must not contain a user name or password');
    expect(message).not.toContain(SECRET);
  });

  it.each([
    ['api_key', 'a newline', 'drivequant:\n  api_key: ${KEY}\n', `${SECRET}\n`],
    ['api_key', 'a tab', 'drivequant:\n  api_key: ${KEY}\n', `${SECRET}\tx`],
    ['api_key', 'a DEL', 'drivequant:\n  api_key: ${KEY}\n', `${SECRET}\u007f`],
    [
      'api.token',
      'a carriage return',
      'drivequant:\n  api_key: k\napi:\n  token: ${KEY}\n',
      `${SECRET}\r`,
    ],
  ])(
    'makes %s with %s a load error, not a failure of every request',
    (_key, _what, text, value) => {
      const message = refusalOf(text, { KEY: value });

      expect(message).toContain(': contains a control character or newline');
      expect(message).not.toContain(SECRET);
    },
  );

  it('refuses an api_key beyond Latin-1, which no HTTP header can carry', () => {
    const message = refusalOf('drivequant:\n  api_key: ${KEY}\n', { KEY: `${SECRET}\u20ac` });

    expect(message).toContain(
      'drivequant.api_key: contains a character that an HTTP header cannot carry (beyond Latin-1)',
    );
    expect(message).not.toContain(SECRET);
  });

  it('is not echoed when the api token is malformed', () => {
    const text = `drivequant:\n  api_key: k\napi:\n  token: [${SECRET}]\n`;

    const message = refusalOf(text);

    expect(message).toContain('api.token: must be a string, got <secret>');
    expect(message).not.toContain(SECRET);
  });
});

describe('a config that is not text', () => {
  let dir: TempDir;

  beforeEach(async () => {
    dir = await createTempDir();
  });

  afterEach(async () => {
    await dir.remove();
  });

  it.each([1, 2, 3, 4, 5])(
    'of 4 KB of random bytes (seed %i) gets a short answer without raw control bytes',
    async (seed) => {
      const path = join(dir.path, 'config.yaml');
      await writeFile(path, pseudoRandomBytes(4096, seed));

      const message = messageOf(path);

      expect(message.length).toBeLessThan(2500);
      expect(message.replaceAll('\n', '')).not.toMatch(/[\p{Cc}\uFFFD]/u);
    },
  );
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

  it('does not show values from the environment in its warnings', () => {
    const text = 'drivequant:\n  base_url: ${URL}\n  api_key: k\ntasks: [a1, "${TASK}"]\n';
    const env = { URL: 'http://dq.example.com/SIM-SEKRIT-77', TASK: 'a1' };

    const { warnings } = parseConfig(text, { source: 'inline', baseDir: '/', env });

    expect(warnings).toEqual([
      'tasks[1]: <value from ${TASK}> is listed more than once; it is tracked once',
      'drivequant.base_url: <value from ${URL}> is plain http to a non-loopback host; the API key would travel unencrypted',
    ]);
  });

  it('accepts the longest interval and timeout a timer can wait, and the slowest rate', () => {
    const text =
      'drivequant:\n  api_key: k\n  timeout: 24d\npoll:\n  interval: 24d\n  max_requests_per_second: 0.01\n';

    const { config } = parseConfig(text, { source: 'inline', baseDir: '/', env: {} });

    expect(config.drivequant.timeoutMs).toBe(24 * 86_400_000);
    expect(config.poll.intervalMs).toBe(24 * 86_400_000);
    expect(config.poll.maxRequestsPerSecond).toBe(0.01);
  });

  it('accepts as many listed tasks as poll.max_tasks', () => {
    const ids = Array.from({ length: 10_000 }, (_, index) => `t${index}`);
    const text = `drivequant:\n  api_key: k\ntasks:\n${ids.map((id) => `  - ${id}\n`).join('')}`;

    const { config } = parseConfig(text, { source: 'inline', baseDir: '/', env: {} });

    expect(config.tasks).toHaveLength(10_000);
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
