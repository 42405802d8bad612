import { parseArgs } from 'node:util';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './logger.js';

/** Default `--web.listen-address`: every interface, the exporter's registered port. */
export const DEFAULT_LISTEN_ADDRESS = ':9850';

/** Flags of the exporter itself. */
export interface ExporterFlags {
  configFile: string | undefined;
  listen: ListenAddress;
  logLevel: LogLevel;
  logFormat: LogFormat;
  configCheck: boolean;
  demo: boolean;
  enableLifecycle: boolean;
  webConfigFile: string | undefined;
  shard: { index: number; total: number } | undefined;
}

/** A `[HOST]:PORT` address; no host means every interface. */
export interface ListenAddress {
  host: string | undefined;
  port: number;
}

/** What the command line asks for. */
export type Command =
  | { kind: 'run'; flags: ExporterFlags }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'simulate'; argv: string[] }
  | { kind: 'retry'; argv: string[] };

/** A command line that cannot be followed; the message says what is wrong. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `Usage:
  drivequant-task-exporter [flags]
  drivequant-task-exporter retry trips|crashes --config.file=PATH [--register URL]
      [--token-file PATH] [--output=text|json]        (see retry --help)
  drivequant-task-exporter simulate [--listen-address=HOST:PORT] [--tasks=N] [--latency=MS]

Prometheus exporter for DriveQuant push-retry tasks.

Flags:
  --config.file=PATH            YAML configuration (required unless --demo)
  --web.listen-address=[HOST]:PORT
                                address to serve /metrics on (default ${DEFAULT_LISTEN_ADDRESS})
  --web.config.file=PATH        TLS and basic auth, in the exporter-toolkit format
  --web.enable-lifecycle        allow POST /-/reload
  --log.level=LEVEL             debug, info, warn or error (default info)
  --log.format=FORMAT           json or logfmt (default json)
  --config.check                validate the configuration, then exit 0 (valid) or 1
  --shard.index=I --shard.total=N
                                export only the tasks whose id hashes to shard I of N
  --demo                        poll the bundled simulator; no configuration or key needed
                                (not with --config.file)
  --version                     print the version and exit
  --help                        print this help and exit
`;

/** Parses the command line (without `node` and the script). Throws UsageError. */
export function parseCommandLine(argv: string[]): Command {
  const [first, ...rest] = argv;
  if (first === 'simulate') {
    return { kind: 'simulate', argv: rest };
  }
  if (first === 'retry') {
    return { kind: 'retry', argv: rest };
  }

  let parsed: ReturnType<typeof parseExporterArgs>;
  try {
    parsed = parseExporterArgs(argv);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"`);
  }
  if (values.help) {
    return { kind: 'help' };
  }
  if (values.version) {
    return { kind: 'version' };
  }

  const flags: ExporterFlags = {
    configFile: values['config.file'],
    listen: parseListenAddress(values['web.listen-address'] ?? DEFAULT_LISTEN_ADDRESS),
    logLevel: oneOf('--log.level', values['log.level'] ?? 'info', LOG_LEVELS),
    logFormat: oneOf('--log.format', values['log.format'] ?? 'json', LOG_FORMATS),
    configCheck: values['config.check'] ?? false,
    demo: values.demo ?? false,
    enableLifecycle: values['web.enable-lifecycle'] ?? false,
    webConfigFile: values['web.config.file'],
    shard: parseShard(values['shard.index'], values['shard.total']),
  };
  // The demo polls its own simulator with its own config: a file given too would be ignored.
  if (flags.demo && flags.configFile !== undefined) {
    throw new UsageError(
      '--demo and --config.file exclude each other: the demo brings its own configuration',
    );
  }
  if (!flags.demo && flags.configFile === undefined) {
    throw new UsageError('--config.file is required (or try --demo)');
  }

  return { kind: 'run', flags };
}

function parseExporterArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'config.file': { type: 'string' },
      'web.listen-address': { type: 'string' },
      'web.config.file': { type: 'string' },
      'web.enable-lifecycle': { type: 'boolean' },
      'log.level': { type: 'string' },
      'log.format': { type: 'string' },
      'config.check': { type: 'boolean' },
      'shard.index': { type: 'string' },
      'shard.total': { type: 'string' },
      demo: { type: 'boolean' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** Parses `[HOST]:PORT`, `HOST:PORT` or `[IPV6]:PORT`. Throws UsageError. */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65_535) {
    throw new UsageError(
      `--web.listen-address: "${text}" is not [HOST]:PORT (for example :9850 or 127.0.0.1:9850)`,
    );
  }

  const host = match[1] ?? match[2];

  return { host: host === '' ? undefined : host, port };
}

function parseShard(
  indexText: string | undefined,
  totalText: string | undefined,
): ExporterFlags['shard'] {
  if (indexText === undefined && totalText === undefined) {
    return undefined;
  }
  if (indexText === undefined || totalText === undefined) {
    throw new UsageError('--shard.index and --shard.total go together');
  }

  // Number() would also read 0x0, 1e1 or an empty string.
  const index = /^\d+$/.test(indexText) ? Number(indexText) : Number.NaN;
  const total = /^\d+$/.test(totalText) ? Number(totalText) : Number.NaN;
  if (!Number.isInteger(total) || total < 1 || total > 1000) {
    throw new UsageError(`--shard.total: "${totalText}" is not a whole number from 1 to 1000`);
  }
  if (!Number.isInteger(index) || index < 0 || index >= total) {
    throw new UsageError(
      `--shard.index: "${indexText}" is not a whole number from 0 to ${total - 1}`,
    );
  }

  return { index, total };
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag}: "${value}" is not one of ${allowed.join(', ')}`);
  }

  return value as T;
}
