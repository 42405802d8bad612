import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { renderExporterConfig } from '../helpers/exporter-under-test.js';
import { FAILING_FAULTS, injectFault } from '../helpers/fault-cases.js';
import { parseScrape } from '../helpers/scrape.js';
import {
  CANARY_API_KEY,
  CANARY_FORMS,
  canaryConfig,
  captureEveryEndpoint,
  ECHOING_FAULTS,
} from '../helpers/secret-leak.js';
import { totalErrors, viewTask } from '../helpers/task-view.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { requireBuild, startExporterProcess } from './exporter-process.js';

const FAULTS = [...FAILING_FAULTS, ...ECHOING_FAULTS];

let simulator: Simulator;
let dir: TempDir;

beforeEach(async () => {
  requireBuild();
  simulator = await startSimulator({ apiKey: CANARY_API_KEY, control: true });
  dir = await createTempDir();
});

afterEach(async () => {
  await simulator.close();
  await dir.remove();
});

describe.each(['json', 'logfmt'])('the built exporter at --log.level=debug, %s logs', (format) => {
  it('never prints the API key or token, under every fault, reload and signal', async () => {
    const taskIds = simulator.addTasks(FAULTS.length + 1, { pendingMs: 0 });
    const configPath = await dir.write(
      'config.yml',
      renderExporterConfig({ baseUrl: simulator.url, ...canaryConfig(taskIds) }),
    );
    const exporter = await startExporterProcess({
      args: [
        `--config.file=${configPath}`,
        '--log.level=debug',
        `--log.format=${format}`,
        '--web.enable-lifecycle',
      ],
    });
    const scrapeTask = async (taskId: string) =>
      viewTask(parseScrape(await (await fetch(`${exporter.url}/metrics`)).text()), taskId);
    await waitFor(async () => (await scrapeTask(taskIds.at(-1) ?? '')).lastSuccessSeconds, {
      what: 'a good first poll',
    });

    for (const [index, row] of FAULTS.entries()) {
      await injectFault(simulator.url, taskIds[index] ?? '', row.fault);
    }
    await waitFor(
      async () => {
        const views = await Promise.all(taskIds.slice(0, FAULTS.length).map(scrapeTask));
        return views.every((view) => totalErrors(view) >= 2);
      },
      { timeoutMs: 30_000, what: 'every fault to fail two polls' },
    );
    const answers = await captureEveryEndpoint(exporter.url, taskIds);
    const goodConfig = await readFile(configPath, 'utf8');
    await writeFile(
      configPath,
      goodConfig.replace(/api_key: .*/, `api_key: ['${CANARY_API_KEY}']`),
    );
    exporter.child.kill('SIGHUP');
    answers.push(...(await captureEveryEndpoint(exporter.url, taskIds)));
    await waitFor(() => exporter.logs().includes('configuration reload failed'), {
      what: 'the failed reload to be logged',
    });
    await exporter.kill('SIGTERM');

    const output = exporter.logs();
    expect(exporter.child.exitCode).toBe(0);
    expect(output).toContain('polled task');
    expect(output).toContain('task poll failed');
    for (const form of CANARY_FORMS) {
      expect(output).not.toContain(form);
      expect(answers.map((answer) => answer.text).join('\n')).not.toContain(form);
    }
  });
});
