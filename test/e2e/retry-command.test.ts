import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { BUILT_MAIN, type ExporterProcess, startExporterProcess } from './exporter-process.js';

const API_KEY = 'e2e-retry-key';
const TOKEN = 'e2e-retry-token';
const run = promisify(execFile);

let sim: Simulator;
let dir: TempDir;
let configPath: string;
let exporter: ExporterProcess;

beforeAll(async () => {
  sim = await startSimulator({ apiKey: API_KEY });
  dir = await createTempDir();
  configPath = await dir.write(
    'exporter.yaml',
    `drivequant:\n  base_url: ${sim.url}\n  api_key: \${DQ_KEY}\npoll:\n  interval: 1h\napi:\n  token: \${DRIVEQUANT_EXPORTER_TOKEN}\nstorage:\n  path: ./data\n`,
  );
  exporter = await startExporterProcess({
    args: [`--config.file=${configPath}`],
    env: {
      DQ_KEY: API_KEY,
      DRIVEQUANT_EXPORTER_TOKEN: TOKEN,
    },
  });
});

afterAll(async () => {
  await exporter?.kill('SIGTERM');
  await dir?.remove();
  await sim?.close();
});

describe('drivequant-task-exporter retry', () => {
  it('starts a retry, registers it with the running exporter, and a second one is refused', async () => {
    const env = { PATH: process.env.PATH, DQ_KEY: API_KEY, DRIVEQUANT_EXPORTER_TOKEN: TOKEN };
    const args = [
      BUILT_MAIN,
      'retry',
      'crashes',
      `--config.file=${configPath}`,
      '--register',
      exporter.url,
    ];

    const first = await run(process.execPath, args, { env });
    const second = await run(process.execPath, args, { env }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );

    const [taskId = ''] = sim.taskIds();
    expect(first.stdout).toMatch(new RegExp(`^task ${taskId}: \\d+ items\\nregistered with `));
    const listed = await (await fetch(`${exporter.url}/api/v1/tasks/${taskId}`)).json();
    expect(listed).toMatchObject({ taskId, sources: ['api'] });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('A retry of failed crashes is already in progress');
  });
});
