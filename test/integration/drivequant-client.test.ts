import type { ServerResponse } from 'node:http';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AttemptObservation,
  createDriveQuantClient,
  type DriveQuantClient,
  type DriveQuantClientOptions,
  parseRetryAfter,
  retryDelayMs,
} from '../../src/drivequant-client.js';
import { Secret } from '../../src/secret.js';
import { HttpStatusError, UpstreamError } from '../../src/upstream-error.js';
import { DOCUMENTED_TASK, DOCUMENTED_TASK_ID } from '../helpers/documented-task.js';
import { sendJson, startTestServer, type TestServer } from '../helpers/http-server.js';

const API_KEY = 'client-test-key-5b1e0d';

let server: TestServer;
let client: DriveQuantClient | undefined;
let attempts: AttemptObservation[];
let retryDelays: number[];
// Answers that a test has left hanging, ended before the server closes.
let hanging: ServerResponse[];

beforeEach(async () => {
  attempts = [];
  retryDelays = [];
  hanging = [];
  server = await startTestServer((_request, response) => sendJson(response, 200, DOCUMENTED_TASK));
});

afterEach(async () => {
  client?.close();
  client = undefined;
  for (const response of hanging) {
    response.destroy();
  }
  await server.close();
});

function createClient(options: Partial<DriveQuantClientOptions> = {}): DriveQuantClient {
  client = createDriveQuantClient({
    baseUrl: server.url,
    apiKey: new Secret(API_KEY),
    timeoutMs: 2000,
    retries: 2,
    maxRetryDelayMs: 50,
    maxSockets: 4,
    onAttempt: (observation) => attempts.push(observation),
    onRetry: (_error, delayMs) => retryDelays.push(delayMs),
    ...options,
  });

  return client;
}

/** Answers each request with the next handler of the list; the last one repeats. */
function answerInTurn(...handlers: ((response: ServerResponse) => void)[]): void {
  let index = 0;
  server.handle((_request, response) => {
    const handler = handlers[Math.min(index, handlers.length - 1)];
    index += 1;
    handler?.(response);
  });
}

function status(code: number, headers: Record<string, string> = {}) {
  return (response: ServerResponse) => {
    response.writeHead(code, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify({ error: `HTTP ${code}` }));
  };
}

const ok = (response: ServerResponse) => sendJson(response, 200, DOCUMENTED_TASK);

async function failureOf(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UpstreamError) {
      return error;
    }
    throw error;
  }

  throw new Error('the request succeeded');
}

describe('a good answer', () => {
  it('is asked for with the key header and parsed into a snapshot', async () => {
    const dq = createClient();

    const snapshot = await dq.getTask(DOCUMENTED_TASK_ID);

    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({
      method: 'GET',
      url: `/v1/enterprise/task/${DOCUMENTED_TASK_ID}`,
    });
    expect(server.requests[0]?.headers['x-dq-enterprise-api-key']).toBe(API_KEY);
    expect(server.requests[0]?.headers.accept).toBe('application/json');
    expect(snapshot).toEqual({
      taskId: DOCUMENTED_TASK_ID,
      taskType: 'PUSH_FAILED_TRIPS',
      status: 'IN_PROGRESS',
      items: 321,
      remainingItems: 12,
      createdSeconds: 1733753657.574,
    });
  });

  it('is fetched over one kept-alive connection, poll after poll', async () => {
    const dq = createClient();

    for (let index = 0; index < 3; index += 1) {
      await dq.getTask(DOCUMENTED_TASK_ID);
    }

    expect(server.requests).toHaveLength(3);
    expect(server.connectionCount).toBe(1);
  });

  it('is asked for under a base URL with a path', async () => {
    const dq = createClient({ baseUrl: `${server.url}/gateway` });

    await dq.getTask(DOCUMENTED_TASK_ID);

    expect(server.requests[0]?.url).toBe(`/gateway/v1/enterprise/task/${DOCUMENTED_TASK_ID}`);
  });

  it('is observed as one attempt with code 200', async () => {
    const dq = createClient();

    await dq.getTask(DOCUMENTED_TASK_ID);

    expect(attempts).toEqual([{ code: '200', durationSeconds: expect.any(Number) }]);
    expect(attempts[0]?.durationSeconds).toBeGreaterThan(0);
  });
});

describe('an answer that no retry can fix', () => {
  it.each([
    [401, 'UNAUTHORIZED', 'unauthorized'],
    [403, 'UNAUTHORIZED', 'unauthorized'],
    [404, 'NOT_FOUND', 'not_found'],
    [400, 'HTTP_ERROR', 'http_error'],
  ])('%d fails at once as %s, without a retry', async (code, errorCode, reason) => {
    answerInTurn(status(code));
    const dq = createClient({ retries: 3 });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(server.requests).toHaveLength(1);
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error.code).toBe(errorCode);
    expect(error.reason).toBe(reason);
    expect(error.statusCode).toBe(code);
    expect(error.message).toBe(`DriveQuant answered HTTP ${code}`);
    expect(attempts.map((attempt) => attempt.code)).toEqual([String(code)]);
  });

  it('is malformed JSON: INVALID_RESPONSE, without a retry', async () => {
    answerInTurn((response) => sendJson(response, 200, '{"taskId": "abc", '));
    const dq = createClient({ retries: 3 });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(server.requests).toHaveLength(1);
    expect(error.code).toBe('INVALID_RESPONSE');
    expect(error.message).toBe('the answer is not JSON');
  });

  it('is about another task: INVALID_RESPONSE', async () => {
    answerInTurn((response) => sendJson(response, 200, { ...DOCUMENTED_TASK, taskId: 'other' }));
    const dq = createClient();

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(error.code).toBe('INVALID_RESPONSE');
    expect(error.message).toBe('the answer is about another task');
  });

  it.each([
    ['with a content-length', true],
    ['chunked, without a content-length', false],
  ])('is larger than the size cap (%s): INVALID_RESPONSE', async (_what, withLength) => {
    const huge = JSON.stringify({ ...DOCUMENTED_TASK, padding: 'x'.repeat(5000) });
    answerInTurn((response) => {
      response.writeHead(200, {
        'content-type': 'application/json',
        ...(withLength ? { 'content-length': String(huge.length) } : {}),
      });
      response.write(huge.slice(0, 2000));
      response.end(huge.slice(2000));
    });
    const dq = createClient({ maxBodyBytes: 1024 });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(server.requests).toHaveLength(1);
    expect(error.code).toBe('INVALID_RESPONSE');
    expect(error.message).toBe('the answer is larger than 1024 bytes');
    expect(attempts.map((attempt) => attempt.code)).toEqual(['200']);
  });
});

describe('a failure that a retry may fix', () => {
  it.each([
    [500, 'SERVER_ERROR'],
    [503, 'SERVER_ERROR'],
    [429, 'RATE_LIMITED'],
  ])('%d is retried `retries` times, then fails as %s', async (code, errorCode) => {
    answerInTurn(status(code));
    const dq = createClient({ retries: 2 });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(server.requests).toHaveLength(3);
    expect(error.code).toBe(errorCode);
    expect(error.statusCode).toBe(code);
    expect(attempts.map((attempt) => attempt.code)).toEqual([
      String(code),
      String(code),
      String(code),
    ]);
    expect(retryDelays).toHaveLength(2);
  });

  it('succeeds when a retry does, each attempt observed with its code', async () => {
    answerInTurn(status(500), status(503), ok);
    const dq = createClient({ retries: 2 });

    const snapshot = await dq.getTask(DOCUMENTED_TASK_ID);

    expect(snapshot.remainingItems).toBe(12);
    expect(attempts.map((attempt) => attempt.code)).toEqual(['500', '503', '200']);
  });

  it('is not retried at all with retries 0', async () => {
    answerInTurn(status(500));
    const dq = createClient({ retries: 0 });

    await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(server.requests).toHaveLength(1);
  });

  it('is a timeout: retried, then TIMEOUT, each attempt observed as timeout', async () => {
    answerInTurn((response) => hanging.push(response));
    const dq = createClient({ timeoutMs: 150, retries: 1 });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(server.requests).toHaveLength(2);
    expect(error.code).toBe('TIMEOUT');
    expect(error.reason).toBe('timeout');
    expect(error.message).toBe('DriveQuant did not answer in time');
    expect(attempts.map((attempt) => attempt.code)).toEqual(['timeout', 'timeout']);
    expect(attempts[0]?.durationSeconds).toBeGreaterThanOrEqual(0.14);
  });

  it('is a connection reset mid-body: retried, then NETWORK', async () => {
    answerInTurn((response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      response.write('{"taskId":', () => response.destroy());
    });
    const dq = createClient({ retries: 2 });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(server.requests).toHaveLength(3);
    expect(error.code).toBe('NETWORK');
    expect(error.reason).toBe('network');
    expect(attempts.map((attempt) => attempt.code)).toEqual(['network', 'network', 'network']);
  });

  it('is a refused connection: NETWORK, naming the code', async () => {
    const dq = createClient({ baseUrl: 'http://127.0.0.1:1', retries: 1 });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID));

    expect(error.code).toBe('NETWORK');
    expect(error.message).toBe('network error ECONNREFUSED');
    expect(attempts.map((attempt) => attempt.code)).toEqual(['network', 'network']);
  });
});

describe('429 Too Many Requests', () => {
  it('waits as many seconds as Retry-After says', async () => {
    answerInTurn(status(429, { 'retry-after': '1' }), ok);
    const dq = createClient({ maxRetryDelayMs: 5000 });
    const started = Date.now();

    await dq.getTask(DOCUMENTED_TASK_ID);

    expect(retryDelays).toEqual([1000]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(server.requests).toHaveLength(2);
  });

  it('waits until the HTTP date Retry-After gives', async () => {
    const retryAt = new Date(Date.now() + 3000);
    retryAt.setUTCMilliseconds(0);
    answerInTurn(status(429, { 'retry-after': retryAt.toUTCString() }), ok);
    const controller = new AbortController();
    const dq = createClient({
      maxRetryDelayMs: 60_000,
      // The wait is checked, then cut short so that the test does not sit through it.
      onRetry: (_error, delayMs) => {
        retryDelays.push(delayMs);
        controller.abort();
      },
    });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID, controller.signal));

    expect(error.code).toBe('RATE_LIMITED');
    expect(retryDelays).toHaveLength(1);
    expect(retryDelays[0]).toBeGreaterThan(1000);
    expect(retryDelays[0]).toBeLessThanOrEqual(3000);
  });

  it('waits no longer than maxRetryDelayMs however long Retry-After asks', async () => {
    answerInTurn(status(429, { 'retry-after': '3600' }), ok);
    const dq = createClient({ maxRetryDelayMs: 200 });
    const started = Date.now();

    const snapshot = await dq.getTask(DOCUMENTED_TASK_ID);

    expect(snapshot.taskId).toBe(DOCUMENTED_TASK_ID);
    expect(retryDelays).toEqual([200]);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe('an abort signal', () => {
  it('stops the retries after the attempt in flight', async () => {
    answerInTurn(status(500));
    const controller = new AbortController();
    const dq = createClient({
      retries: 5,
      onAttempt: (observation) => {
        attempts.push(observation);
        controller.abort();
      },
    });

    const error = await failureOf(dq.getTask(DOCUMENTED_TASK_ID, controller.signal));

    expect(error.code).toBe('SERVER_ERROR');
    expect(server.requests).toHaveLength(1);
  });

  it('stops a wait between attempts', async () => {
    answerInTurn(status(503));
    const controller = new AbortController();
    const dq = createClient({ retries: 5, maxRetryDelayMs: 60_000, random: () => 1 });
    const started = Date.now();

    const pending = failureOf(dq.getTask(DOCUMENTED_TASK_ID, controller.signal));
    setTimeout(() => controller.abort(), 100);
    const error = await pending;

    expect(error.code).toBe('SERVER_ERROR');
    expect(server.requests.length).toBeLessThanOrEqual(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('cuts a request in flight short, as the end of a cycle does', async () => {
    answerInTurn((response) => hanging.push(response));
    const controller = new AbortController();
    const dq = createClient({ timeoutMs: 10_000, retries: 3 });

    const pending = failureOf(dq.getTask(DOCUMENTED_TASK_ID, controller.signal));
    setTimeout(() => controller.abort(), 100);
    const error = await pending;

    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toBe('the poll was aborted at the end of its cycle');
    expect(server.requests).toHaveLength(1);
  });
});

describe('the API key', () => {
  it('appears in no error, however it is printed', async () => {
    answerInTurn(
      (response) => hanging.push(response),
      status(500),
      (response) => response.destroy(),
    );
    const dq = createClient({ timeoutMs: 100, retries: 0 });

    const errors = [
      await failureOf(dq.getTask(DOCUMENTED_TASK_ID)),
      await failureOf(dq.getTask(DOCUMENTED_TASK_ID)),
      await failureOf(dq.getTask(DOCUMENTED_TASK_ID)),
    ];

    for (const error of errors) {
      expect(error.message).not.toContain(API_KEY);
      expect(JSON.stringify(error)).not.toContain(API_KEY);
      expect(Object.keys(error)).not.toContain('cause');
      expect(inspect(error, { depth: 8 })).not.toContain(API_KEY);
    }
  });
});

describe('retryDelayMs', () => {
  const serverError = new HttpStatusError(500);

  it('doubles the ceiling each retry, with full jitter in its upper half', () => {
    const low = [0, 1, 2, 3].map((attempt) => retryDelayMs(serverError, attempt, 60_000, () => 0));
    const high = [0, 1, 2, 3].map((attempt) => retryDelayMs(serverError, attempt, 60_000, () => 1));

    expect(low).toEqual([100, 200, 400, 800]);
    expect(high).toEqual([200, 400, 800, 1600]);
  });

  it('never exceeds the cap', () => {
    expect(retryDelayMs(serverError, 20, 1000, () => 1)).toBe(1000);
    expect(retryDelayMs(new HttpStatusError(429, 90_000), 0, 1000)).toBe(1000);
  });

  it('takes the Retry-After of a 429 as it is when under the cap', () => {
    expect(retryDelayMs(new HttpStatusError(429, 1500), 3, 60_000, () => 0)).toBe(1500);
  });
});

describe('parseRetryAfter', () => {
  const nowMs = Date.UTC(2025, 0, 1, 12, 0, 0);

  it.each([
    ['seconds', '7', 7000],
    ['zero seconds', '0', 0],
    ['an HTTP date', 'Wed, 01 Jan 2025 12:00:05 GMT', 5000],
    ['an HTTP date in the past', 'Wed, 01 Jan 2025 11:00:00 GMT', 0],
    ['an obsolete RFC 850 date', 'Wednesday, 01-Jan-25 12:00:05 GMT', 5000],
  ])('reads %s', (_what, value, expectedMs) => {
    expect(parseRetryAfter({ 'retry-after': value }, nowMs)).toBe(expectedMs);
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['a negative number', '-5'],
    ['a decimal', '1.5'],
    ['words', 'later'],
  ])('gives nothing for %s', (_what, value) => {
    expect(parseRetryAfter({ 'retry-after': value }, nowMs)).toBeUndefined();
  });
});
