import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { renderExporterConfig } from '../helpers/exporter-under-test.js';
import { parseScrape, type Scrape, sampleValue } from '../helpers/scrape.js';
import { viewTask } from '../helpers/task-view.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { type ExporterProcess, startExporterProcess } from './exporter-process.js';

const API_KEY = 'reload-signal-suite-key';

let simulator: Simulator;
let dir: TempDir;
let exporter: ExporterProcess | undefined;

beforeEach(async () => {
  simulator = await startSimulator({ apiKey: API_KEY });
  dir = await createTempDir();
});

afterEach(async () => {
  await exporter?.kill('SIGTERM');
  exporter = undefined;
  await simulator.close();
  await dir.remove();
});

async function scrape(url: string): Promise<Scrape> {
  return parseScrape(await (await fetch(`${url}/metrics`)).text());
}

function writeConfig(path: string, tasks: string[]): Promise<void> {
  return writeFile(
    path,
    renderExporterConfig({ baseUrl: simulator.url, apiKey: API_KEY, tasks, interval: '300ms' }),
  );
}

describe('SIGHUP to the built exporter', () => {
  it('swaps in a valid config: the new task is polled, the removed one disappears', async () => {
    const [removed = '', added = ''] = simulator.addTasks(2, { pendingMs: 0 });
    const configPath = await dir.write('config.yml', '');
    await writeConfig(configPath, [removed]);
    exporter = await startExporterProcess({ args: [`--config.file=${configPath}`] });
    const url = exporter.url;
    await waitFor(async () => viewTask(await scrape(url), removed).lastSuccessSeconds, {
      what: 'a first poll',
    });

    await writeConfig(configPath, [added]);
    exporter.child.kill('SIGHUP');

    const after = await waitFor(
      async () => {
        const current = await scrape(url);
        return viewTask(current, added).lastSuccessSeconds !== undefined && current;
      },
      { what: 'the new task to be polled' },
    );
    expect(viewTask(after, removed).seriesCount).toBe(0);
    expect(sampleValue(after, 'drivequant_exporter_config_last_reload_successful')).toBe(1);
    expect(exporter.logs()).toContain('configuration reloaded');
  });

  it('keeps the running config when the new one is invalid, and says why', async () => {
    const [taskId = ''] = simulator.addTasks(1, { pendingMs: 0 });
    const configPath = await dir.write('config.yml', '');
    await writeConfig(configPath, [taskId]);
    exporter = await startExporterProcess({ args: [`--config.file=${configPath}`] });
    const url = exporter.url;
    const first = await waitFor(
      async () => viewTask(await scrape(url), taskId).lastSuccessSeconds,
      {
        what: 'a first poll',
      },
    );

    await writeFile(configPath, 'drivequant:\n  timeout: later\n');
    exporter.child.kill('SIGHUP');

    await waitFor(
      async () =>
        sampleValue(await scrape(url), 'drivequant_exporter_config_last_reload_successful') === 0,
      { what: 'the failed reload to show in the metrics' },
    );
    await waitFor(
      async () => (viewTask(await scrape(url), taskId).lastSuccessSeconds ?? 0) > first,
      {
        what: 'polling to go on under the old config',
      },
    );
    expect(exporter.logs()).toContain(
      'configuration reload failed; keeping the running configuration',
    );
    expect(exporter.logs()).toContain('drivequant.timeout: must be a duration');
    expect(exporter.child.exitCode).toBeNull();
  });
});
