import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { type ExporterProcess, requireBuild, startExporterProcess } from './exporter-process.js';

const API_KEY = 'kill-test-key';
const TOKEN = 'kill-test-token';
const ROUNDS = 3;
const WORKERS = 6;

let sim: Simulator;
let dir: TempDir;
let configPath: string;
let exporter: ExporterProcess | undefined;

beforeAll(async () => {
  requireBuild();
  sim = await startSimulator({ apiKey: API_KEY });
  dir = await createTempDir();
  configPath = await dir.write(
    'exporter.yaml',
    [
      'drivequant:',
      `  base_url: ${sim.url}`,
      '  api_key: ${DQ_KEY}',
      'poll:',
      '  interval: 1h',
      'api:',
      '  token: ${EXPORTER_TOKEN}',
      'storage:',
      '  path: ./data',
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await exporter?.kill('SIGKILL');
  await dir?.remove();
  await sim?.close();
});

function start(): Promise<ExporterProcess> {
  return startExporterProcess({
    args: [`--config.file=${configPath}`],
    env: {
      DQ_KEY: API_KEY,
      EXPORTER_TOKEN: TOKEN,
    },
  });
}

/**
 * Registers ids from several workers at once until `stop` says so; resolves with the ids
 * whose registration was acknowledged (201 or 200) before the process died.
 */
async function registerUntilKilled(
  url: string,
  round: number,
  stop: () => boolean,
): Promise<string[]> {
  const acknowledged: string[] = [];
  let next = 0;
  const worker = async () => {
    while (!stop()) {
      const taskId = `round${round}-task${String(next++).padStart(5, '0')}`;
      try {
        const response = await fetch(`${url}/api/v1/tasks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ taskId }),
        });
        if (response.status === 201 || response.status === 200) {
          acknowledged.push(taskId);
        }
      } catch {
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));

  return acknowledged;
}

async function listedIds(url: string): Promise<Set<string>> {
  const body = (await (await fetch(`${url}/api/v1/tasks`)).json()) as {
    tasks: { taskId: string; sources: string[] }[];
  };

  return new Set(
    body.tasks.filter((task) => task.sources.includes('api')).map((task) => task.taskId),
  );
}

describe('registrations and SIGKILL', () => {
  it('keeps every acknowledged registration across kills in the middle of registering', async () => {
    const everAcknowledged: string[] = [];

    for (let round = 0; round < ROUNDS; round++) {
      exporter = await start();
      const running = exporter;
      let killed = false;
      const killAfter = 40 + round * 25;
      const registering = registerUntilKilled(running.url, round, () => killed);
      // Kill while requests are in flight, once a round's worth has been acknowledged.
      while (!killed) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        const listed = await fetch(`${running.url}/api/v1/tasks`).then(
          (response) => response.json() as Promise<{ total: number }>,
          () => ({ total: Number.POSITIVE_INFINITY }),
        );
        if (listed.total >= everAcknowledged.length + killAfter) {
          running.child.kill('SIGKILL');
          killed = true;
        }
      }
      everAcknowledged.push(...(await registering));
      await running.kill('SIGKILL');
    }

    exporter = await start();
    const listed = await listedIds(exporter.url);

    expect(everAcknowledged.length).toBeGreaterThanOrEqual(ROUNDS * 40);
    expect(everAcknowledged.filter((taskId) => !listed.has(taskId))).toEqual([]);
    const files = await readdir(join(dir.path, 'data'));
    expect(files.filter((name) => name.includes('.corrupt-'))).toEqual([]);
    const saved = JSON.parse(
      await readFile(join(dir.path, 'data', 'registered-tasks.json'), 'utf8'),
    );
    expect(saved.version).toBe(1);
    expect(exporter.logs()).not.toContain(TOKEN);
  });
});
