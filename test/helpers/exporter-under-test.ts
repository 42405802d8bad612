import type { ExporterFlags } from '../../src/cli.js';
import { type RunningExporter, startExporter } from '../../src/main.js';
import type { Simulator } from '../../src/simulator/simulator.js';
import { captureLogs, type LogCapture } from './log-capture.js';
import { parseScrape, type Scrape } from './scrape.js';
import { createTempDir, type TempDir } from './temp-dir.js';

/** What goes into the exporter's YAML config. */
export interface ExporterConfigSpec {
  /** DriveQuant base URL, usually the simulator's. */
  baseUrl: string;
  /** The API key written inline into the file. */
  apiKey: string;
  /** Task ids of the `tasks:` list. */
  tasks: readonly string[];
  /** `poll.interval`, as a duration string. */
  interval?: string;
  /** `drivequant.timeout`, as a duration string. */
  timeout?: string;
  /** `drivequant.retries`. */
  retries?: number;
  /** `poll.concurrency`. */
  concurrency?: number;
  /** `poll.not_found_limit`. */
  notFoundLimit?: number;
  /** More top-level YAML, appended as is (an `api:` section, for example). */
  extraYaml?: string;
}

/** Renders a config file; the key is inline on purpose, so leaks of the file show up too. */
export function renderExporterConfig(spec: ExporterConfigSpec): string {
  return [
    'drivequant:',
    `  base_url: ${spec.baseUrl}`,
    `  api_key: '${spec.apiKey}'`,
    `  timeout: ${spec.timeout ?? '1s'}`,
    `  retries: ${spec.retries ?? 0}`,
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
export interface ExporterUnderTestOptions extends Omit<ExporterConfigSpec, 'baseUrl'> {
  simulator: Simulator;
  /** Serves POST /-/reload. */
  enableLifecycle?: boolean;
  /** `--web.config.file`, absolute. */
  webConfigFile?: string;
  /** Environment for `${VAR}` in the config; empty by default. */
  env?: NodeJS.ProcessEnv;
}

/** An exporter started in-process, with its config file, temp dir and captured debug logs. */
export interface ExporterUnderTest {
  readonly exporter: RunningExporter;
  readonly url: string;
  readonly logs: LogCapture;
  readonly dir: TempDir;
  readonly configPath: string;
  /** Rewrites the config file (reload it with exporter.reload() or POST /-/reload). */
  writeConfig(spec: Omit<ExporterConfigSpec, 'baseUrl'>): Promise<void>;
  /** GET /metrics, parsed, with the time the answer took in milliseconds. */
  scrape(): Promise<Scrape & { elapsedMs: number }>;
  /** Durations of every finished poll cycle so far, from the debug log, in milliseconds. */
  cycleDurationsMs(): number[];
  close(): Promise<void>;
}

/** Writes a config for the simulator and starts the exporter on 127.0.0.1, port 0. */
export async function startExporterUnderTest(
  options: ExporterUnderTestOptions,
): Promise<ExporterUnderTest> {
  const { simulator, enableLifecycle, webConfigFile, env, ...spec } = options;
  const dir = await createTempDir();
  const configPath = await dir.write(
    'config.yml',
    renderExporterConfig({ ...spec, baseUrl: simulator.url }),
  );
  const logs = captureLogs({ level: 'debug' });
  const flags: ExporterFlags = {
    configFile: configPath,
    listen: { host: '127.0.0.1', port: 0 },
    logLevel: 'debug',
    logFormat: 'json',
    configCheck: false,
    demo: false,
    enableLifecycle: enableLifecycle ?? false,
    webConfigFile,
    shard: undefined,
  };
  let exporter: RunningExporter;
  try {
    exporter = await startExporter({ flags, logger: logs.logger, env: env ?? {} });
  } catch (error) {
    await dir.remove();
    throw error;
  }

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
    async close() {
      await exporter.close();
      await dir.remove();
    },
  };
}
