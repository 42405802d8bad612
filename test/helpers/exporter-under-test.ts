import { parseCommandLine } from '../../src/cli.js';
import { type RunningExporter, startExporter } from '../../src/main.js';
import type { Simulator } from '../../src/simulator/simulator.js';
import { captureLogs, type LogCapture } from './log-capture.js';
import { parseScrape, type Scrape } from './scrape.js';
import { createTempDir, type TempDir } from './temp-dir.js';

/** The `drivequant:` section of the exporter's YAML config. */
export interface DriveQuantSpec {
  /** DriveQuant base URL, usually the simulator's. */
  baseUrl: string;
  /** The API key written inline into the file. */
  apiKey: string;
  /** `drivequant.timeout`, as a duration string; 2s by default. */
  timeout?: string;
  /** `drivequant.retries`; 0 by default. */
  retries?: number;
}

/** A config whose `poll:` and `tasks:` sections are rendered from fields. */
export interface PollSpec {
  /** Task ids of the `tasks:` list. */
  tasks: readonly string[];
  /** `poll.interval`, as a duration string. */
  interval?: string;
  /** `poll.concurrency`. */
  concurrency?: number;
  /** `poll.not_found_limit`. */
  notFoundLimit?: number;
  /** More top-level YAML, appended as is (an `api:` section, for example). */
  extraYaml?: string;
}

/** A config whose every section but `drivequant:` is given as YAML, the rest left to defaults. */
export interface RawYamlSpec {
  /** Top-level YAML after the `drivequant:` section (poll:, tasks:, api:, task_files:...). */
  yaml: string;
}

/** What goes into the config file besides the DriveQuant base URL. */
export type ConfigBody = Omit<DriveQuantSpec, 'baseUrl'> & (PollSpec | RawYamlSpec);

/** What goes into the exporter's YAML config. */
export type ExporterConfigSpec = DriveQuantSpec & (PollSpec | RawYamlSpec);

/** Renders a config file; the key is inline on purpose, so leaks of the file show up too. */
export function renderExporterConfig(spec: ExporterConfigSpec): string {
  const drivequant = [
    'drivequant:',
    `  base_url: ${spec.baseUrl}`,
    `  api_key: '${spec.apiKey}'`,
    `  timeout: ${spec.timeout ?? '2s'}`,
    `  retries: ${spec.retries ?? 0}`,
  ];
  if ('yaml' in spec) {
    return [...drivequant, spec.yaml, ''].join('\n');
  }

  return [
    ...drivequant,
    'poll:',
    `  interval: ${spec.interval ?? '1s'}`,
    `  concurrency: ${spec.concurrency ?? 8}`,
    `  not_found_limit: ${spec.notFoundLimit ?? 3}`,
    'tasks:',
    ...spec.tasks.map((id) => `  - ${id}`),
    spec.extraYaml ?? '',
    '',
  ].join('\n');
}

/** How to start an exporter against a running simulator. */
export type ExporterUnderTestOptions = ConfigBody & {
  simulator: Simulator;
  /** Serves POST /-/reload. */
  enableLifecycle?: boolean;
  /** `--web.config.file`, absolute. */
  webConfigFile?: string;
  /** More command-line flags, such as `--shard.index=0`. */
  args?: readonly string[];
  /** Environment for `${VAR}` in the config; empty by default. */
  env?: NodeJS.ProcessEnv;
  /** A temp dir to reuse, to restart an exporter on the state another one left there. */
  dir?: TempDir;
};

/** An exporter started in-process, with its config file, temp dir and captured debug logs. */
export interface ExporterUnderTest {
  readonly exporter: RunningExporter;
  readonly url: string;
  readonly logs: LogCapture;
  /** Holds the config; `storage.path` defaults to `<dir>/data`. */
  readonly dir: TempDir;
  readonly configPath: string;
  /** Rewrites the config file (reload it with exporter.reload() or POST /-/reload). */
  writeConfig(body: ConfigBody): Promise<void>;
  /** GET /metrics, parsed, with the time the answer took in milliseconds. */
  scrape(): Promise<Scrape & { elapsedMs: number }>;
  /** Durations of every finished poll cycle so far, from the debug log, in milliseconds. */
  cycleDurationsMs(): number[];
  /** Stops the exporter and keeps the temp dir, to restart on the same state. */
  stop(): Promise<void>;
  /** Stops the exporter and removes the temp dir. */
  close(): Promise<void>;
}

/** Writes a config for the simulator and starts the exporter on 127.0.0.1, port 0. */
export async function startExporterUnderTest(
  options: ExporterUnderTestOptions,
): Promise<ExporterUnderTest> {
  const { simulator, enableLifecycle, webConfigFile, args, env, dir: reused, ...body } = options;
  const dir = reused ?? (await createTempDir());
  const configPath = await dir.write(
    'config.yml',
    renderExporterConfig({ ...body, baseUrl: simulator.url }),
  );
  const command = parseCommandLine([
    `--config.file=${configPath}`,
    '--web.listen-address=127.0.0.1:0',
    '--log.level=debug',
    ...(enableLifecycle === true ? ['--web.enable-lifecycle'] : []),
    ...(webConfigFile === undefined ? [] : [`--web.config.file=${webConfigFile}`]),
    ...(args ?? []),
  ]);
  if (command.kind !== 'run') {
    throw new Error(`the harness's flags parsed as a ${command.kind} command`);
  }

  const logs = captureLogs({ level: 'debug' });
  let exporter: RunningExporter;
  try {
    exporter = await startExporter({ flags: command.flags, logger: logs.logger, env: env ?? {} });
  } catch (error) {
    if (reused === undefined) {
      await dir.remove();
    }
    throw error;
  }
  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      await exporter.close();
    }
  };

  return {
    exporter,
    url: exporter.url,
    logs,
    dir,
    configPath,
    async writeConfig(next) {
      await dir.write('config.yml', renderExporterConfig({ ...next, baseUrl: simulator.url }));
    },
    async scrape() {
      const started = performance.now();
      const response = await fetch(`${exporter.url}/metrics`);
      const text = await response.text();
      const elapsedMs = performance.now() - started;
      if (response.status !== 200) {
        throw new Error(`/metrics answered ${response.status}`);
      }

      return { ...parseScrape(text), elapsedMs };
    },
    cycleDurationsMs() {
      return logs
        .records()
        .filter((record) => record.msg === 'poll cycle finished')
        .map((record) => Number(record.durationMs));
    },
    stop,
    async close() {
      await stop();
      await dir.remove();
    },
  };
}
