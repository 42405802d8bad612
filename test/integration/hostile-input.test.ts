import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { injectFault } from '../helpers/fault-cases.js';
import { viewTask } from '../helpers/task-view.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'hostile-input-suite-key';
const TOKEN = 'hostile-input-suite-token';
const STACK_TRACE = /at .*\((?:file:|\/|node:)|\.(?:ts|js):\d+:\d+/;

let simulator: Simulator;
let under: ExporterUnderTest;
let taskId: string;

beforeAll(async () => {
  simulator = await startSimulator({ apiKey: API_KEY, control: true });
  [taskId = ''] = simulator.addTasks(1, { pendingMs: 0 });
  under = await startExporterUnderTest({
    simulator,
    apiKey: API_KEY,
    tasks: [taskId],
    interval: '200ms',
    enableLifecycle: true,
    extraYaml: `api:\n  token: ${TOKEN}`,
  });
});

afterAll(async () => {
  await under?.close();
  await simulator?.close();
});

/** Writes bytes on a fresh TCP connection and returns everything the server sent back. */
function rawExchange(bytes: string): Promise<string> {
  const { port } = new URL(under.url);

  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNRESET'
        ? resolve(Buffer.concat(chunks).toString('latin1'))
        : reject(error),
    );
    socket.end(bytes);
  });
}

function statusOf(rawAnswer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(rawAnswer)?.[1]);
}

async function expectStillServing(): Promise<void> {
  const response = await fetch(`${under.url}/-/healthy`);
  expect(response.status).toBe(200);
}

describe('malformed HTTP requests', () => {
  it.each([
    [
      'a malformed percent-encoding, which no route matches',
      'GET /% HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      404,
    ],
    [
      'a malformed encoding in the task API',
      'GET /api/v1/tasks/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      400,
    ],
    [
      'a 64 KiB header',
      `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(65_536)}\r\n\r\n`,
      431,
    ],
    ['a 64 KiB URL', `GET /${'a'.repeat(65_536)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    ['a request line that is not HTTP', 'HELLO THERE\r\n\r\n', 400],
    [
      'a header with a control character',
      'GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n',
      400,
    ],
    [
      'a body length that is not a number',
      'POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n',
      400,
    ],
  ])('answers %s with a 4xx and no stack trace', async (_name, bytes, status) => {
    const answer = await rawExchange(bytes);

    expect(statusOf(answer)).toBe(status);
    expect(answer).not.toMatch(STACK_TRACE);
    await expectStillServing();
  });
});

describe('unknown routes and methods', () => {
  it.each([
    ['GET', '/no/such/page', 404],
    ['GET', '/../../etc/passwd', 404],
    ['GET', '/metrics/..%2F..%2Fetc%2Fpasswd', 404],
    ['GET', '/%2e%2e/%2e%2e/etc/passwd', 404],
    ['PUT', '/metrics', 405],
    ['POST', '/metrics', 405],
    ['DELETE', '/', 405],
    ['PATCH', '/-/healthy', 405],
    ['PUT', '/-/ready', 405],
    ['GET', '/-/reload', 405],
    ['PUT', '/api/v1/tasks', 405],
  ])(
    'answers %s %s with %i and a short text, without a stack trace',
    async (method, path, status) => {
      const answer = await rawExchange(
        `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );

      expect(statusOf(answer)).toBe(status);
      expect(answer).not.toMatch(STACK_TRACE);
      expect(answer.length).toBeLessThan(1000);
    },
  );
});

describe('the task API', () => {
  const post = (body: string, token = TOKEN) =>
    fetch(`${under.url}/api/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });

  it('refuses a body over 16 KiB with 413 before reading it all', async () => {
    const response = await post(JSON.stringify({ taskId: 'a'.repeat(1024 * 1024) }));

    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: expect.stringContaining('16kb') });
  });

  it.each(['../../etc/passwd', '..%2F..%2Fetc', 'a/b', 'a?b=c', 'a#b', ' abc', 'abc\n', ''])(
    'refuses the task id %j with 400',
    async (badId) => {
      const response = await post(JSON.stringify({ taskId: badId }));

      expect(response.status).toBe(400);
      expect(await response.text()).not.toMatch(STACK_TRACE);
    },
  );

  it('refuses malformed JSON with 400 and no stack trace', async () => {
    const response = await post('{"taskId": ');

    expect(response.status).toBe(400);
    expect(await response.text()).not.toMatch(STACK_TRACE);
  });

  it('refuses a wrong token with 401 and never echoes it', async () => {
    const response = await post(JSON.stringify({ taskId: 'abc' }), 'not-the-token');

    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain('not-the-token');
  });
});

describe('the landing page', () => {
  it('shows upstream text only escaped, even when DriveQuant sends markup', async () => {
    await injectFault(simulator.url, taskId, {
      kind: 'fields',
      patch: { status: '<script>alert(1)</script>', type: '<img src=x onerror=alert(2)>' },
    });
    await waitFor(
      async () =>
        viewTask(await under.scrape(), taskId).current?.status === '_SCRIPT_ALERT_1_SCRIPT_',
      { what: 'the odd status to be exported' },
    );

    const page = await (await fetch(`${under.url}/`)).text();

    expect(page).not.toMatch(/<script|<img|onerror=/i);
    expect(page).toContain('_SCRIPT_ALERT_1_SCRIPT_');
  });
});
