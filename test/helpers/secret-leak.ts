import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { ConfigBody } from './exporter-under-test.js';
import type { FaultCase } from './fault-cases.js';

// Keys no other text could contain by chance; every form they could take is searched for.
/** A DriveQuant API key to search every output for. */
export const CANARY_API_KEY = `dqLeakCanary${randomBytes(12).toString('hex')}`;
/** The exporter's own API token, a secret too. */
export const CANARY_API_TOKEN = `dqTokenCanary${randomBytes(12).toString('hex')}`;
/** Every form the two canaries could leak in: as is, upper-cased, base64. */
export const CANARY_FORMS = [CANARY_API_KEY, CANARY_API_TOKEN].flatMap((secret) => [
  secret,
  secret.toUpperCase(),
  Buffer.from(secret).toString('base64'),
]);

/** Upstreams that echo the request back: a debugging proxy, a chatty error page. */
export const ECHOING_FAULTS: readonly FaultCase[] = [
  {
    name: 'a 500 whose body echoes the key',
    fault: {
      kind: 'status',
      code: 500,
      body: `upstream rejected x-dq-enterprise-api-key: ${CANARY_API_KEY}`,
    },
    reason: 'server_error',
  },
  {
    name: 'a 401 whose JSON echoes the key',
    fault: { kind: 'status', code: 401, body: { error: 'bad key', key: CANARY_API_KEY } },
    reason: 'unauthorized',
  },
  {
    name: 'a 200 text page that echoes the key',
    fault: { kind: 'status', code: 200, body: `<html><pre>${CANARY_API_KEY}</pre></html>` },
    reason: 'invalid_response',
  },
];

/** A config that polls `taskIds` with both canaries inline, failing fast under faults. */
export function canaryConfig(taskIds: readonly string[]): ConfigBody {
  return {
    apiKey: CANARY_API_KEY,
    tasks: taskIds,
    interval: '1s',
    timeout: '250ms',
    retries: 1,
    concurrency: 16,
    extraYaml: `api:\n  token: '${CANARY_API_TOKEN}'`,
  };
}

/** One answer of the exporter: status, raw headers and body, and the request that got it. */
export interface CapturedAnswer {
  what: string;
  text: string;
}

/** Sends a raw request, so that malformed paths reach the server as written. */
export function rawRequest(
  url: string,
  method: string,
  path: string,
  body?: string,
  authorization?: string,
): Promise<CapturedAnswer> {
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

/** Every endpoint the exporter serves, right and wrong, POST /-/reload included. */
export async function captureEveryEndpoint(
  url: string,
  taskIds: readonly string[],
): Promise<CapturedAnswer[]> {
  const register = JSON.stringify({ taskId: 'abc' });
  const requests: [string, string, string?, string?][] = [
    ['GET', '/metrics'],
    ['GET', '/'],
    ['GET', '/-/healthy'],
    ['GET', '/-/ready'],
    ['GET', '/api/v1/tasks'],
    ...taskIds.map((id): [string, string] => ['GET', `/api/v1/tasks/${id}`]),
    ['POST', '/api/v1/tasks', register],
    ['POST', '/api/v1/tasks', register, `Bearer ${CANARY_API_TOKEN}x`],
    ['POST', '/api/v1/tasks', register, `Bearer ${CANARY_API_TOKEN}`],
    ['DELETE', '/api/v1/tasks/abc', undefined, `Bearer ${CANARY_API_TOKEN}`],
    ['DELETE', '/api/v1/tasks/abc'],
    ['GET', '/api/v1/tasks/..%2F..%2Fetc'],
    ['GET', '/nowhere'],
    ['GET', '/%'],
    ['PUT', '/metrics'],
    ['DELETE', '/'],
    ['GET', '/-/reload'],
    ['POST', '/-/reload'],
  ];
  const answers: CapturedAnswer[] = [];
  for (const [method, path, body, authorization] of requests) {
    answers.push(await rawRequest(url, method, path, body, authorization));
  }

  return answers;
}
