import { parseArgs } from 'node:util';
import { DEMO_TASK_IDS, seedDemoTasks } from './demo-tasks.js';
import { startSimulator } from './simulator.js';

/** The API key used when neither `--api-key` nor `DRIVEQUANT_API_KEY` gives one. */
export const DEMO_API_KEY = 'demo-key-not-secret';

const DEFAULT_LISTEN_ADDRESS = '127.0.0.1:9851';

const USAGE = `Usage: drivequant-task-exporter simulate [options]

Runs a DriveQuant enterprise API simulator seeded with demo tasks.

  --listen-address=HOST:PORT  address to listen on (default ${DEFAULT_LISTEN_ADDRESS})
  --api-key=KEY               accepted API key (default $DRIVEQUANT_API_KEY, else ${DEMO_API_KEY})
  --tasks=N                   extra random tasks to seed (default 0)
  --latency=MS                delay before every answer, in milliseconds (default 0)
  --time-scale=X              simulated seconds per real second (default 1)
  --control                   serve the /_control/ endpoints for fault injection
  --help                      show this help
`;

/** What the `simulate` command line asks for. */
export interface SimulatorCliOptions {
  /** Address to listen on. */
  host: string;
  /** TCP port. */
  port: number;
  /** The accepted API key. */
  apiKey: string;
  /** Where the API key came from, to print instead of a key that may be real. */
  apiKeySource: '--api-key' | 'DRIVEQUANT_API_KEY' | 'demo';
  /** Extra random tasks to seed, in tasks. */
  extraTasks: number;
  /** Delay before every answer, in milliseconds. */
  latencyMs: number;
  /** Simulated seconds per real second. */
  timeScale: number;
  /** Whether the `/_control/` endpoints are served. */
  control: boolean;
  /** Whether only the usage was asked for. */
  help: boolean;
}

/** Where the command line writes, and what stops it besides SIGINT and SIGTERM. */
export interface SimulatorCliIo {
  /** Receives the task ids, one line each. */
  out: (line: string) => void;
  /** Receives messages for the person at the terminal. */
  err: (line: string) => void;
  /** Stops the simulator when aborted, as a signal would. */
  stop?: AbortSignal;
}

const processIo: SimulatorCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Parses the arguments that follow `simulate`; throws an Error naming the bad flag. */
export function parseSimulatorArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): SimulatorCliOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      'listen-address': { type: 'string', default: DEFAULT_LISTEN_ADDRESS },
      'api-key': { type: 'string' },
      tasks: { type: 'string', default: '0' },
      latency: { type: 'string', default: '0' },
      'time-scale': { type: 'string', default: '1' },
      control: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const { host, port } = parseListenAddress(values['listen-address']);
  const envKey = env.DRIVEQUANT_API_KEY;
  const timeScale = parseNumberFlag('--time-scale', values['time-scale']);
  if (timeScale <= 0) {
    throw new Error(`--time-scale: "${values['time-scale']}" is not a positive number`);
  }

  return {
    host,
    port,
    apiKey: values['api-key'] ?? (envKey || DEMO_API_KEY),
    apiKeySource:
      values['api-key'] !== undefined ? '--api-key' : envKey ? 'DRIVEQUANT_API_KEY' : 'demo',
    extraTasks: parseNumberFlag('--tasks', values.tasks, { integer: true }),
    latencyMs: parseNumberFlag('--latency', values.latency),
    timeScale,
    control: values.control,
    help: values.help,
  };
}

function parseListenAddress(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  const portText = text.slice(colon + 1);
  const port = Number(portText);
  if (colon < 0 || !/^\d+$/.test(portText) || port > 65_535) {
    throw new Error(`--listen-address: "${text}" is not HOST:PORT`);
  }

  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');

  // An empty host means every interface, as in Prometheus' `--web.listen-address=:9850`.
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function parseNumberFlag(flag: string, text: string, rules: { integer?: boolean } = {}): number {
  const value = Number(text);
  const valid = text.trim() !== '' && Number.isFinite(value) && value >= 0;
  if (!valid || (rules.integer === true && !Number.isInteger(value))) {
    const expected = rules.integer === true ? 'a whole number' : 'a number';
    throw new Error(`${flag}: "${text}" is not ${expected} of 0 or more`);
  }

  return value;
}

/**
 * Runs the simulator alone: `argv` holds the arguments after `simulate`. Resolves with the
 * exit code once SIGINT or SIGTERM (or `io.stop`) has stopped it: 2 for bad arguments.
 */
export async function runSimulatorCli(argv: string[], io = processIo): Promise<number> {
  let options: SimulatorCliOptions;
  try {
    options = parseSimulatorArgs(argv);
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }

  if (options.help) {
    io.out(USAGE);
    return 0;
  }

  const sim = await startSimulator({
    apiKey: options.apiKey,
    host: options.host,
    port: options.port,
    latencyMs: options.latencyMs,
    timeScale: options.timeScale,
    control: options.control,
  });
  seedDemoTasks(sim);
  sim.addTasks(options.extraTasks);

  io.err(`DriveQuant simulator listening on ${sim.url}`);
  io.err(options.apiKeySource === 'demo' ? `API key: ${DEMO_API_KEY}` : describeKey(options));
  io.err(`${DEMO_TASK_IDS.length} demo tasks and ${options.extraTasks} random ones:`);
  io.out(sim.taskIds().join('\n'));

  await waitForStop(io.stop);
  await sim.close();
  io.err('DriveQuant simulator stopped');

  return 0;
}

// A key that came from outside may be a real one: name its source, never print it.
function describeKey(options: SimulatorCliOptions): string {
  return `API key: the one given by ${options.apiKeySource}`;
}

function waitForStop(stop: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      stop?.removeEventListener('abort', finish);
      resolve();
    };
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    if (stop?.aborted === true) {
      finish();
      return;
    }

    stop?.addEventListener('abort', finish, { once: true });
  });
}
