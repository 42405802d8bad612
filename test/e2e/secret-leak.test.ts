import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { renderExporterConfig } from '../helpers/exporter-under-test.js';
import { FAILING_FAULTS, type FaultCase, injectFault } from '../helpers/fault-cases.js';
import { parseScrape } from '../helpers/scrape.js';
import { BUILT_MAIN, requireBuild } from '../helpers/spawn-exporter.js';
import { totalErrors, viewTask } from '../helpers/task-view.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = `dqLeakCanary${randomBytes(12).toString('hex')}`;
const API_TOKEN = `dqTokenCanary${randomBytes(12).toString('hex')}`;
const SECRET_FORMS = [API_KEY, API_TOKEN].flatMap((secret) => [
  secret,
  secret.toUpperCase(),
  Buffer.from(secret).toString('base64'),
]);

const ECHOING_FAULT: FaultCase = {
  name: 'a 500 whose body echoes the key',
  fault: { kind: 'status', code: 500, body: `x-dq-enterprise-api-key: ${API_KEY}` },
  reason: 'server_error',
};
const FAULTS = [...FAILING_FAULTS, ECHOING_FAULT];

let simulator: Simulator;
let dir: TempDir;

beforeEach(async () => {
  requireBuild();
  simulator = await startSimulator({ apiKey: API_KEY, control: true });
  dir = await createTempDir();
});

afterEach(async () => {
  await simulator.close();
  await dir.remove();
});

/** The built exporter with every byte of its standard output and error kept. */
async function runBuiltExporter(args: string[]) {
  const child = spawn(process.execPath, [BUILT_MAIN, '--web.listen-address=127.0.0.1:0', ...args], {
    env: { PATH: process.env.PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const address = await waitFor(() => /address[":= ]+"?(127\.0\.0\.1:\d+)/.exec(output)?.[1], {
    timeoutMs: 30_000,
    what: 'the exporter to start',
  });

  return {
    url: `http://${address}`,
    output: () => output,
    signal: (name: NodeJS.Signals) => child.kill(name),
    exited,
  };
}

/** Every answer of every endpoint: status, raw headers and body. */
async function captureEndpoints(url: string, taskIds: string[]): Promise<string[]> {
  const requests: [string, string, string?][] = [
    ['GET', '/metrics'],
    ['GET', '/'],
    ['GET', '/-/ready'],
    ['GET', '/api/v1/tasks'],
    ...taskIds.map((id): [string, string] => ['GET', `/api/v1/tasks/${id}`]),
    ['POST', '/api/v1/tasks', `Bearer ${API_TOKEN}`],
    ['POST', '/-/reload'],
    ['GET', '/nowhere'],
    ['PUT', '/metrics'],
  ];
  const answers: string[] = [];
  for (const [method, path, authorization] of requests) {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: authorization === undefined ? {} : { authorization },
      body: method === 'POST' && path.startsWith('/api') ? '{"taskId":"abc"}' : undefined,
    });
    answers.push(`${method} ${path} ${response.status} ${JSON.stringify([...response.headers])}`);
    answers.push(await response.text());
  }

  return answers;
}

describe.each(['json', 'logfmt'])('the built exporter at --log.level=debug, %s logs', (format) => {
  it('never prints the API key or token, under every fault, reload and signal', async () => {
    const taskIds = simulator.addTasks(FAULTS.length + 1, { pendingMs: 0 });
    const configPath = await dir.write(
      'config.yml',
      renderExporterConfig({
        baseUrl: simulator.url,
        apiKey: API_KEY,
        tasks: taskIds,
        interval: '1s',
        timeout: '250ms',
        retries: 1,
        concurrency: 16,
        extraYaml: `api:\n  token: '${API_TOKEN}'`,
      }),
    );
    const exporter = await runBuiltExporter([
      `--config.file=${configPath}`,
      '--log.level=debug',
      `--log.format=${format}`,
      '--web.enable-lifecycle',
    ]);
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
    const answers = await captureEndpoints(exporter.url, taskIds);
    const goodConfig = await readFile(configPath, 'utf8');
    await writeFile(configPath, goodConfig.replace(/api_key: .*/, `api_key: ['${API_KEY}']`));
    exporter.signal('SIGHUP');
    answers.push(...(await captureEndpoints(exporter.url, taskIds)));
    await waitFor(() => exporter.output().includes('configuration reload failed'), {
      what: 'the failed reload to be logged',
    });
    exporter.signal('SIGTERM');
    const exitCode = await exporter.exited;

    const output = exporter.output();
    expect(exitCode).toBe(0);
    expect(output).toContain('polled task');
    expect(output).toContain('task poll failed');
    for (const form of SECRET_FORMS) {
      expect(output).not.toContain(form);
      expect(answers.join('\n')).not.toContain(form);
    }
  });
});
