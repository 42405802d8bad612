import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { FAILING_FAULTS, injectFault } from '../helpers/fault-cases.js';
import {
  CANARY_API_KEY,
  CANARY_API_TOKEN,
  CANARY_FORMS,
  type CapturedAnswer,
  canaryConfig,
  captureEveryEndpoint,
  ECHOING_FAULTS,
  rawRequest,
} from '../helpers/secret-leak.js';
import { totalErrors, viewTask } from '../helpers/task-view.js';
import { waitFor } from '../helpers/wait-for.js';

// Reload failures whose config text holds the key next to the mistake.
const INVALID_CONFIGS = [
  {
    name: 'the key as a list',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: ['${CANARY_API_KEY}']`),
  },
  {
    name: 'the key as a mapping',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: {value: '${CANARY_API_KEY}'}`),
  },
  { name: 'the key beside a typo', edit: (text: string) => text.replace('api_key:', 'api_kye:') },
  {
    name: 'the key and a key file',
    edit: (text: string) => text.replace(/(api_key: .*)/, '$1\n  api_key_file: /nonexistent'),
  },
  {
    name: 'broken YAML on the key line',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: '${CANARY_API_KEY}' : [`),
  },
  {
    name: 'the API token as a list',
    edit: (text: string) => text.replace(/token: .*/, `token: ['${CANARY_API_TOKEN}']`),
  },
  {
    name: 'an unquoted key with a tab',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: ${CANARY_API_KEY}\t: x`),
  },
];

let simulator: Simulator;
let under: ExporterUnderTest;
const captured: CapturedAnswer[] = [];

/** Captures every endpoint's answer, each marked with the phase of the test it came from. */
async function captureAt(phase: string, taskIds: string[]): Promise<void> {
  for (const answer of await captureEveryEndpoint(under.url, taskIds)) {
    captured.push({ what: `${phase}: ${answer.what}`, text: answer.text });
  }
}

beforeAll(async () => {
  simulator = await startSimulator({ apiKey: CANARY_API_KEY, control: true });
  const faults = [...FAILING_FAULTS, ...ECHOING_FAULTS];
  const taskIds = simulator.addTasks(faults.length + 1, { pendingMs: 0, itemsPerSecond: 5 });
  under = await startExporterUnderTest({
    simulator,
    ...canaryConfig(taskIds),
    enableLifecycle: true,
  });
  await waitFor(
    async () => {
      const scrape = await under.scrape();
      return taskIds.every((id) => viewTask(scrape, id).lastSuccessSeconds !== undefined);
    },
    { what: 'a good first poll of every task' },
  );
  await captureAt('healthy', taskIds);

  for (const [index, row] of faults.entries()) {
    await injectFault(simulator.url, taskIds[index] ?? '', row.fault);
  }
  await waitFor(
    async () => {
      const scrape = await under.scrape();
      return taskIds.slice(0, faults.length).every((id) => totalErrors(viewTask(scrape, id)) >= 2);
    },
    { timeoutMs: 20_000, what: 'every fault to fail at least two polls' },
  );
  await captureAt('under faults', taskIds);

  const reloaded = await rawRequest(under.url, 'POST', '/-/reload');
  captured.push({ what: 'valid reload', text: reloaded.text });
  const goodConfig = await readFile(under.configPath, 'utf8');
  for (const { name, edit } of INVALID_CONFIGS) {
    await writeFile(under.configPath, edit(goodConfig));
    const failed = await rawRequest(under.url, 'POST', '/-/reload');
    captured.push({ what: `failed reload: ${name}`, text: failed.text });
    captured.push({
      what: `reload() outcome: ${name}`,
      text: JSON.stringify(await under.exporter.reload()),
    });
  }
  await writeFile(under.configPath, goodConfig);
  await captureAt('after reloads', taskIds);
}, 60_000);

afterAll(async () => {
  await under?.close();
  await simulator?.close();
});

describe('the DriveQuant API key', () => {
  it('appears in no HTTP answer of the exporter, headers and bodies alike', () => {
    for (const answer of captured) {
      for (const form of CANARY_FORMS) {
        expect(answer.text, answer.what).not.toContain(form);
      }
    }
  });

  it('appears in no log line, at debug level, under every fault and failed reload', () => {
    const text = under.logs.text();

    for (const form of CANARY_FORMS) {
      expect(text).not.toContain(form);
    }
  });

  it('was really exercised: failures were logged and reloads refused', () => {
    const messages = under.logs.records().map((record) => record.msg);
    const reasons = new Set(under.logs.records().map((record) => record.reason));

    expect(messages).toContain('polled task');
    expect(messages).toContain('task poll failed');
    expect(
      messages.filter(
        (msg) => msg === 'configuration reload failed; keeping the running configuration',
      ),
    ).toHaveLength(INVALID_CONFIGS.length * 2);
    for (const row of [...FAILING_FAULTS, ...ECHOING_FAULTS]) {
      expect(reasons).toContain(row.reason);
    }
    expect(captured.filter((answer) => answer.text.startsWith('500\n')).length).toBeGreaterThan(0);
  });
});
