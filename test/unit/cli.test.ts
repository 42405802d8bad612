import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type Command,
  DEFAULT_LISTEN_ADDRESS,
  parseCommandLine,
  parseListenAddress,
  USAGE,
  UsageError,
} from '../../src/cli.js';
import { main } from '../../src/main.js';
import { VERSION } from '../../src/version.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';

function runFlags(argv: string[]) {
  const command: Command = parseCommandLine(argv);
  if (command.kind !== 'run') {
    throw new Error(`expected a run command, got ${command.kind}`);
  }

  return command.flags;
}

function usageErrorOf(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      return error.message;
    }
    throw error;
  }

  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('parseCommandLine', () => {
  it('runs on :9850 at info level with JSON logs when given only the config file', () => {
    const flags = runFlags(['--config.file=dq.yaml']);

    expect(DEFAULT_LISTEN_ADDRESS).toBe(':9850');
    expect(flags).toEqual({
      configFile: 'dq.yaml',
      listen: { host: undefined, port: 9850 },
      logLevel: 'info',
      logFormat: 'json',
      configCheck: false,
      demo: false,
      enableLifecycle: false,
      webConfigFile: undefined,
      shard: undefined,
    });
  });

  it('reads every flag, with = or as the next argument', () => {
    const flags = runFlags([
      '--config.file=/etc/dq.yaml',
      '--web.listen-address',
      '127.0.0.1:9000',
      '--log.level=debug',
      '--log.format=logfmt',
      '--config.check',
      '--web.enable-lifecycle',
      '--web.config.file=web.yaml',
      '--shard.index=1',
      '--shard.total=3',
    ]);

    expect(flags).toEqual({
      configFile: '/etc/dq.yaml',
      listen: { host: '127.0.0.1', port: 9000 },
      logLevel: 'debug',
      logFormat: 'logfmt',
      configCheck: true,
      demo: false,
      enableLifecycle: true,
      webConfigFile: 'web.yaml',
      shard: { index: 1, total: 3 },
    });
  });

  it('runs the demo without a config file', () => {
    const flags = runFlags(['--demo']);

    expect(flags).toMatchObject({ demo: true, configFile: undefined });
  });

  it.each([
    [['--help'], 'help'],
    [['-h'], 'help'],
    [['--version'], 'version'],
    [['--demo', '--help'], 'help'],
  ])('reads %j as %s', (argv, kind) => {
    expect(parseCommandLine(argv).kind).toBe(kind);
  });

  it('hands the rest of the line to the simulate and retry subcommands', () => {
    const simulate = parseCommandLine(['simulate', '--tasks=5']);
    const retry = parseCommandLine(['retry', 'trips', '--register', 'http://x']);

    expect(simulate).toEqual({ kind: 'simulate', argv: ['--tasks=5'] });
    expect(retry).toEqual({ kind: 'retry', argv: ['trips', '--register', 'http://x'] });
  });

  it.each([
    [['--log.level=trace'], '--log.level: "trace" is not one of debug, info, warn, error'],
    [['--log.format=text'], '--log.format: "text" is not one of json, logfmt'],
    [['--demo', 'now'], 'unexpected argument "now"'],
    [[], '--config.file is required (or try --demo)'],
    [['--config.check'], '--config.file is required (or try --demo)'],
    [
      ['--demo', '--config.file=nonexist.yaml', '--config.check'],
      '--demo and --config.file exclude each other: the demo brings its own configuration',
    ],
    [
      ['--config.file=c.yaml', '--shard.index=0', '--shard.total=1e1'],
      '--shard.total: "1e1" is not a whole number from 1 to 1000',
    ],
    [
      ['--config.file=c.yaml', '--shard.index=0x0', '--shard.total=2'],
      '--shard.index: "0x0" is not a whole number from 0 to 1',
    ],
    [
      ['--config.file=c.yaml', '--shard.index=', '--shard.total=2'],
      '--shard.index: "" is not a whole number from 0 to 1',
    ],
    [
      ['--config.file=c.yaml', '--shard.index=1.0', '--shard.total=2'],
      '--shard.index: "1.0" is not a whole number from 0 to 1',
    ],
    [['--shard.index=0'], '--shard.index and --shard.total go together'],
    [
      ['--shard.index=0', '--shard.total=0'],
      '--shard.total: "0" is not a whole number from 1 to 1000',
    ],
    [
      ['--shard.index=2', '--shard.total=2'],
      '--shard.index: "2" is not a whole number from 0 to 1',
    ],
    [
      ['--shard.index=a', '--shard.total=2'],
      '--shard.index: "a" is not a whole number from 0 to 1',
    ],
    [
      ['--web.listen-address=9850'],
      '--web.listen-address: "9850" is not [HOST]:PORT (for example :9850 or 127.0.0.1:9850)',
    ],
  ])('refuses %j with a message naming the flag', (argv, message) => {
    expect(usageErrorOf(argv)).toBe(message);
  });

  it('refuses an unknown flag, naming it', () => {
    const message = usageErrorOf(['--config.fil=x.yaml']);

    expect(message).toContain("'--config.fil'");
  });

  it('refuses a string flag given without its value', () => {
    const message = usageErrorOf(['--config.file']);

    expect(message).toContain('--config.file');
  });
});

describe('parseListenAddress', () => {
  it.each([
    [':9850', { host: undefined, port: 9850 }],
    ['127.0.0.1:9850', { host: '127.0.0.1', port: 9850 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['[::1]:9850', { host: '::1', port: 9850 }],
    ['[::]:65535', { host: '::', port: 65535 }],
  ])('reads %s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each(['9850', ':65536', ':', 'host', '::1:9850', '[::1]9850', ':98a0', 'a b:80'])(
    'refuses %s',
    (text) => {
      expect(() => parseListenAddress(text)).toThrow(UsageError);
    },
  );
});

describe('USAGE', () => {
  it.each([
    '--config.file',
    '--web.listen-address',
    '--log.level',
    '--log.format',
    '--config.check',
    '--demo',
    '--version',
    '--help',
    '--web.enable-lifecycle',
    '--web.config.file',
    '--shard.index',
    '--shard.total',
    'retry trips|crashes',
    '--register',
  ])('mentions %s', (flag) => {
    expect(USAGE).toContain(flag);
  });
});

describe('main', () => {
  let dir: TempDir;
  let stdout: string;
  let stderr: string;

  beforeEach(async () => {
    dir = await createTempDir();
    stdout = '';
    stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      stdout += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    await dir.remove();
  });

  it('prints the help and exits 0', async () => {
    const code = await main(['--help']);

    expect(code).toBe(0);
    expect(stdout).toBe(USAGE);
  });

  it('prints the version and exits 0', async () => {
    const code = await main(['--version']);

    expect(code).toBe(0);
    expect(stdout).toBe(`drivequant-task-exporter ${VERSION} (node ${process.version})\n`);
  });

  it('exits 2 on a bad flag and points to --help', async () => {
    const code = await main(['--log.level=loud']);

    expect(code).toBe(2);
    expect(stderr).toBe(
      'drivequant-task-exporter: --log.level: "loud" is not one of debug, info, warn, error\nTry --help.\n',
    );
  });

  it('exits 0 from --config.check on a valid config, with its warnings', async () => {
    const path = await dir.write(
      'config.yaml',
      'drivequant:\n  api_key: k\ntasks:\n  - a\n  - b\n  - a\n',
    );

    const code = await main([`--config.file=${path}`, '--config.check']);

    expect(code).toBe(0);
    expect(stdout).toBe(
      'warning: tasks[2]: "a" is listed more than once; it is tracked once\nconfiguration is valid: 2 tasks\n',
    );
  });

  it('exits 1 from --config.check on a broken config, naming the bad key', async () => {
    const path = await dir.write('config.yaml', 'drivequant:\n  api_key: k\n  retries: many\n');

    const code = await main([`--config.file=${path}`, '--config.check']);

    expect(code).toBe(1);
    expect(stderr).toBe(
      `drivequant-task-exporter: invalid configuration in ${path}:\n  drivequant.retries: must be a whole number from 0 to 10, got "many"\n`,
    );
  });

  it('exits 2 from --config.check without a config file, as from any usage error', async () => {
    const code = await main(['--config.check']);

    expect(code).toBe(2);
    expect(stderr).toBe(
      'drivequant-task-exporter: --config.file is required (or try --demo)\nTry --help.\n',
    );
  });

  it('exits 2 without starting when there is neither a config file nor --demo', async () => {
    const code = await main(['--web.listen-address=127.0.0.1:0']);

    expect(code).toBe(2);
    expect(stderr).toBe(
      'drivequant-task-exporter: --config.file is required (or try --demo)\nTry --help.\n',
    );
  });

  it('exits 2 from --demo with a config file, which the demo would ignore', async () => {
    const code = await main(['--demo', '--config.file=nonexist.yaml', '--config.check']);

    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('--demo and --config.file exclude each other');
  });

  it('exits 1 from --config.check on more tasks than poll.max_tasks', async () => {
    const path = await dir.write(
      'config.yaml',
      'drivequant:\n  api_key: k\npoll:\n  max_tasks: 2\ntasks: [a, b, c]\n',
    );

    const code = await main([`--config.file=${path}`, '--config.check']);

    expect(code).toBe(1);
    expect(stderr).toContain('tasks: 3 ids listed, more than poll.max_tasks (2)');
  });

  it('does not print a value from the environment when --config.check refuses it', async () => {
    vi.stubEnv('DQ_CLI_TEST_KEY', 'SIM-SEKRIT-77');
    const path = await dir.write('config.yaml', 'drivequant: ${DQ_CLI_TEST_KEY}\n');

    const code = await main([`--config.file=${path}`, '--config.check']);

    expect(code).toBe(1);
    expect(stderr).toContain(
      'drivequant: must be a map of keys, got <value from ${DQ_CLI_TEST_KEY}>',
    );
    expect(stderr).not.toContain('SIM-SEKRIT-77');
  });

  it.each([[['simulate', '--bogus']], [['simulate', '--tasks=-1']]])(
    'exits 2 from %j with a message, without starting the simulator',
    async (argv) => {
      const code = await main(argv);

      expect(code).toBe(2);
      expect(stderr).toMatch(/^error: .*(--bogus|--tasks)/);
    },
  );
});
