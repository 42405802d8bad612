import got, { HTTPError } from 'got';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { API_KEY_HEADER } from '../../src/drivequant-client.js';
import { serializeError } from '../../src/logger.js';
import { Secret } from '../../src/secret.js';
import { UpstreamError } from '../../src/upstream-error.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { captureLogs } from '../helpers/log-capture.js';

const API_KEY = 'logger-test-key-7f3a9c';

describe('JSON output', () => {
  it('writes one JSON object per line with level, ISO time, message and fields', () => {
    const capture = captureLogs({ format: 'json', level: 'info' });

    capture.logger.info({ taskId: 'abc', remaining: 12 }, 'polled task');

    expect(capture.lines).toHaveLength(1);
    const [record] = capture.records();
    expect(record).toEqual({
      level: 'info',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      taskId: 'abc',
      remaining: 12,
      msg: 'polled task',
    });
  });

  it('leaves out lines below the level', () => {
    const capture = captureLogs({ format: 'json', level: 'warn' });

    capture.logger.debug('debug line');
    capture.logger.info('info line');
    capture.logger.warn('warn line');
    capture.logger.error('error line');

    expect(capture.records().map((record) => record.msg)).toEqual(['warn line', 'error line']);
  });

  it('keeps the fields of a child logger', () => {
    const capture = captureLogs({ format: 'json' });

    capture.logger.child({ taskId: 'abc' }).warn({ reason: 'timeout' }, 'task poll failed');

    expect(capture.records()[0]).toMatchObject({
      level: 'warn',
      taskId: 'abc',
      reason: 'timeout',
      msg: 'task poll failed',
    });
  });
});

describe('logfmt output', () => {
  it('writes key=value pairs, quoting values with spaces', () => {
    const capture = captureLogs({ format: 'logfmt', level: 'info' });

    capture.logger.info({ taskId: 'abc', remaining: 12 }, 'polled task');

    expect(capture.lines).toHaveLength(1);
    expect(capture.lines[0]).toMatch(
      /^level=info time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z taskId=abc remaining=12 msg="polled task"$/,
    );
  });

  it('flattens nested fields with dotted keys', () => {
    const capture = captureLogs({ format: 'logfmt' });

    capture.logger.warn({ err: new UpstreamError('TIMEOUT', 'too slow') }, 'task poll failed');

    expect(capture.lines[0]).toContain(
      'err.type=UpstreamError err.message="too slow" err.code=TIMEOUT',
    );
  });
});

describe('redaction', () => {
  it.each([
    ['the key header', { headers: { [API_KEY_HEADER]: API_KEY } }],
    ['the key header one level down', { request: { headers: { [API_KEY_HEADER]: API_KEY } } }],
    [
      'the key header two levels down',
      { a: { options: { headers: { [API_KEY_HEADER]: API_KEY } } } },
    ],
    ['an authorization header', { request: { headers: { authorization: `Bearer ${API_KEY}` } } }],
    ['apiKey', { apiKey: API_KEY }],
    ['api_key one level down', { drivequant: { api_key: API_KEY } }],
    ['token', { token: API_KEY }],
    ['a Secret', { key: new Secret(API_KEY) }],
  ])('hides %s', (_what, fields) => {
    const capture = captureLogs({ format: 'json' });

    capture.logger.info(fields, 'something happened');

    expect(capture.lines).toHaveLength(1);
    expect(capture.text()).not.toContain(API_KEY);
  });

  it('hides a redacted value in logfmt too', () => {
    const capture = captureLogs({ format: 'logfmt' });

    capture.logger.info({ request: { headers: { [API_KEY_HEADER]: API_KEY } } }, 'request');

    expect(capture.lines[0]).toContain(`request.headers.${API_KEY_HEADER}=[REDACTED]`);
  });
});

describe('serializeError', () => {
  it('keeps the name, message, code and status of an upstream error, not its cause', () => {
    const cause = Object.assign(new Error('boom'), { options: { headers: { key: API_KEY } } });
    const error = new UpstreamError('SERVER_ERROR', 'DriveQuant answered HTTP 500', 500, cause);

    const serialized = serializeError(error);

    expect(serialized).toEqual({
      type: 'UpstreamError',
      message: 'DriveQuant answered HTTP 500',
      code: 'SERVER_ERROR',
      statusCode: 500,
    });
  });

  it('turns something that is not an Error into a message', () => {
    expect(serializeError('plain text')).toEqual({ message: 'plain text' });
  });

  describe('with a real got error', () => {
    let server: TestServer;

    beforeEach(async () => {
      server = await startTestServer((_request, response) => {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('upstream broke');
      });
    });

    afterEach(async () => {
      await server.close();
    });

    async function failingRequest(): Promise<HTTPError> {
      try {
        await got(`${server.url}/v1/enterprise/task/abc`, {
          headers: { [API_KEY_HEADER]: API_KEY },
          retry: { limit: 0 },
          throwHttpErrors: true,
        });
      } catch (error) {
        if (error instanceof HTTPError) {
          return error;
        }
        throw error;
      }

      throw new Error('the request did not fail');
    }

    it('drops the request options, so the key header is not logged at debug', async () => {
      const capture = captureLogs({ format: 'json', level: 'debug' });
      const error = await failingRequest();

      capture.logger.debug({ err: error }, 'request failed');

      expect(server.requests[0]?.headers[API_KEY_HEADER]).toBe(API_KEY);
      expect(error.options.headers[API_KEY_HEADER]).toBe(API_KEY);
      expect(capture.records()[0]?.err).toEqual({
        type: 'HTTPError',
        message: expect.stringContaining('500'),
        code: 'ERR_NON_2XX_3XX_RESPONSE',
      });
      expect(capture.text()).not.toContain(API_KEY);
    });

    it('drops the request options in logfmt too', async () => {
      const capture = captureLogs({ format: 'logfmt', level: 'debug' });
      const error = await failingRequest();

      capture.logger.debug({ err: error }, 'request failed');

      expect(capture.lines).toHaveLength(1);
      expect(capture.text()).not.toContain(API_KEY);
    });

    it('serialises an error logged under `error` the same way, options dropped', async () => {
      const capture = captureLogs({ format: 'json', level: 'debug' });
      const error = await failingRequest();

      capture.logger.debug({ error }, 'request failed');

      expect(capture.records()[0]?.error).toEqual({
        type: 'HTTPError',
        message: expect.stringContaining('500'),
        code: 'ERR_NON_2XX_3XX_RESPONSE',
      });
      expect(capture.text()).not.toContain(API_KEY);
    });

    it('leaves a plain `error` string as it is', () => {
      const capture = captureLogs({ format: 'json' });

      capture.logger.warn({ error: 'DriveQuant answered HTTP 500' }, 'task poll failed');

      expect(capture.records()[0]?.error).toBe('DriveQuant answered HTTP 500');
    });
  });
});
