import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { FAILING_FAULTS, type FaultCase, injectFault } from '../helpers/fault-cases.js';
import { totalErrors, viewTask } from '../helpers/task-view.js';
import { waitFor } from '../helpers/wait-for.js';

// A key no other text could contain by chance; every form it could take is searched for.
const API_KEY = `dqLeakCanary${randomBytes(12).toString('hex')}`;
// The exporter's own API token is a secret too.
const API_TOKEN = `dqTokenCanary${randomBytes(12).toString('hex')}`;
const KEY_FORMS = [API_KEY, API_TOKEN].flatMap((secret) => [
  secret,
  secret.toUpperCase(),
  Buffer.from(secret).toString('base64'),
]);

// Upstreams that echo the request back: a debugging proxy, a chatty error page.
const ECHOING_FAULTS: FaultCase[] = [
  {
    name: 'a 500 whose body echoes the key',
    fault: {
      kind: 'status',
      code: 500,
      body: `upstream rejected x-dq-enterprise-api-key: ${API_KEY}`,
    },
    reason: 'server_error',
  },
  {
    name: 'a 401 whose JSON echoes the key',
    fault: { kind: 'status', code: 401, body: { error: 'bad key', key: API_KEY } },
    reason: 'unauthorized',
  },
  {
    name: 'a 200 text page that echoes the key',
    fault: { kind: 'status', code: 200, body: `<html><pre>${API_KEY}</pre></html>` },
    reason: 'invalid_response',
  },
];

// Reload failures whose config text holds the key next to the mistake.
const INVALID_CONFIGS = [
  {
    name: 'the key as a list',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: ['${API_KEY}']`),
  },
  {
    name: 'the key as a mapping',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: {value: '${API_KEY}'}`),
  },
  { name: 'the key beside a typo', edit: (text: string) => text.replace('api_key:', 'api_kye:') },
  {
    name: 'the key and a key file',
    edit: (text: string) => text.replace(/(api_key: .*)/, '$1\n  api_key_file: /nonexistent'),
  },
  {
    name: 'broken YAML on the key line',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: '${API_KEY}' : [`),
  },
  {
    name: 'the API token as a list',
    edit: (text: string) => text.replace(/token: .*/, `token: ['${API_TOKEN}']`),
  },
  {
    name: 'an unquoted key with a tab',
    edit: (text: string) => text.replace(/api_key: .*/, `api_key: ${API_KEY}\t: x`),
  },
];

interface Captured {
  what: string;
  text: string;
}

let simulator: Simulator;
let under: ExporterUnderTest;
const captured: Captured[] = [];

/** Sends a raw request, so that malformed paths reach the server as written. */
function rawRequest(
  url: string,
  method: string,
  path: string,
  body?: string,
  authorization?: string,
): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const headers = authorization === undefined ? {} : { authorization };
    const outgoing = request(
      { host: target.hostname, port: target.port, method, path, headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            what: `${method} ${path}`,
            text: [
              `${response.statusCode}`,
              JSON.stringify(response.rawHeaders),
              Buffer.concat(chunks).toString('utf8'),
            ].join('\n'),
          }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Every endpoint the exporter serves, right and wrong. */
async function captureEveryEndpoint(phase: string, taskIds: string[]): Promise<void> {
  const requests: [string, string, string?, string?][] = [
    ['GET', '/metrics'],
    ['GET', '/'],
    ['GET', '/-/healthy'],
    ['GET', '/-/ready'],
    ['GET', '/api/v1/tasks'],
    ...taskIds.map((id): [string, string] => ['GET', `/api/v1/tasks/${id}`]),
    ['POST', '/api/v1/tasks', JSON.stringify({ taskId: 'abc' })],
    ['POST', '/api/v1/tasks', JSON.stringify({ taskId: 'abc' }), `Bearer ${API_TOKEN}x`],
    ['POST', '/api/v1/tasks', JSON.stringify({ taskId: 'abc' }), `Bearer ${API_TOKEN}`],
    ['DELETE', '/api/v1/tasks/abc', undefined, `Bearer ${API_TOKEN}`],
    ['DELETE', '/api/v1/tasks/abc'],
    ['GET', '/api/v1/tasks/..%2F..%2Fetc'],
    ['GET', '/nowhere'],
    ['GET', '/%'],
    ['PUT', '/metrics'],
    ['DELETE', '/'],
    ['GET', '/-/reload'],
  ];
  for (const [method, path, body, authorization] of requests) {
    const answer = await rawRequest(under.url, method, path, body, authorization);
    captured.push({ what: `${phase}: ${answer.what}`, text: answer.text });
  }
}

beforeAll(async () => {
  simulator = await startSimulator({ apiKey: API_KEY, control: true });
  const faults = [...FAILING_FAULTS, ...ECHOING_FAULTS];
  const taskIds = simulator.addTasks(faults.length + 1, { pendingMs: 0, itemsPerSecond: 5 });
  under = await startExporterUnderTest({
    simulator,
    apiKey: API_KEY,
    tasks: taskIds,
    interval: '1s',
    timeout: '250ms',
    retries: 1,
    concurrency: 16,
    enableLifecycle: true,
    extraYaml: `api:\n  token: '${API_TOKEN}'`,
  });
  await waitFor(
    async () => {
      const scrape = await under.scrape();
      return taskIds.every((id) => viewTask(scrape, id).lastSuccessSeconds !== undefined);
    },
    { what: 'a good first poll of every task' },
  );
  await captureEveryEndpoint('healthy', taskIds);

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
  await captureEveryEndpoint('under faults', taskIds);

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
  await captureEveryEndpoint('after reloads', taskIds);
}, 60_000);

afterAll(async () => {
  await under?.close();
  await simulator?.close();
});

describe('the DriveQuant API key', () => {
  it('appears in no HTTP answer of the exporter, headers and bodies alike', () => {
    for (const answer of captured) {
      for (const form of KEY_FORMS) {
        expect(answer.text, answer.what).not.toContain(form);
      }
    }
  });

  it('appears in no log line, at debug level, under every fault and failed reload', () => {
    const text = under.logs.text();

    for (const form of KEY_FORMS) {
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
