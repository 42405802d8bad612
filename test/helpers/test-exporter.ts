import { join } from 'node:path';
import { parseCommandLine } from '../../src/cli.js';
import { type RunningExporter, startExporter } from '../../src/main.js';
import { captureLogs, type LogCapture } from './log-capture.js';
import { createTempDir, type TempDir } from './temp-dir.js';

/** An exporter started in-process on a loopback port, with its config in a temp dir. */
export interface TestExporter {
  readonly exporter: RunningExporter;
  /** Base URL of the exporter. */
  readonly url: string;
  /** The temp dir holding the config; `storage.path` is `<dir>/data` unless the YAML says otherwise. */
  readonly dir: TempDir;
  readonly configPath: string;
  readonly logs: LogCapture;
  /** Stops the exporter; the temp dir stays until `remove()`. */
  close(): Promise<void>;
  /** Stops the exporter and removes the temp dir. */
  remove(): Promise<void>;
}

/** Options of startTestExporter. */
export interface TestExporterOptions {
  /** DriveQuant's base URL (a simulator's). */
  baseUrl: string;
  apiKey: string;
  /** More YAML appended to the config (poll:, tasks:, api:, task_files:...). */
  yaml?: string;
  /** A temp dir to reuse, to restart an exporter on the same state. */
  dir?: TempDir;
  /** More command-line flags, such as `--shard.index=0`. */
  args?: string[];
}

/** Writes a config and starts an exporter on it. `storage.path` defaults to `<dir>/data`. */
export async function startTestExporter(options: TestExporterOptions): Promise<TestExporter> {
  const dir = options.dir ?? (await createTempDir());
  const yaml = options.yaml ?? '';
  const lines = [
    'drivequant:',
    `  base_url: ${options.baseUrl}`,
    '  api_key: ${TEST_API_KEY}',
    '  timeout: 2s',
    '  retries: 0',
    ...(yaml.includes('storage:') ? [] : ['storage:', `  path: ${join(dir.path, 'data')}`]),
    yaml,
  ];
  const configPath = await dir.write('exporter.yaml', `${lines.join('\n')}\n`);
  const command = parseCommandLine([
    `--config.file=${configPath}`,
    '--web.listen-address=127.0.0.1:0',
    ...(options.args ?? []),
  ]);
  if (command.kind !== 'run') {
    throw new Error('unexpected command');
  }

  const logs = captureLogs();
  const exporter = await startExporter({
    flags: command.flags,
    logger: logs.logger,
    env: { TEST_API_KEY: options.apiKey },
  });
  let closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await exporter.close();
    }
  };

  return {
    exporter,
    url: exporter.url,
    dir,
    configPath,
    logs,
    close,
    async remove() {
      await close();
      await dir.remove();
    },
  };
}
