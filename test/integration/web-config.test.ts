import { writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { SecureVersion, TLSSocket } from 'node:tls';
import bcrypt from 'bcryptjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { loadWebConfigFile } from '../../src/web-config.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';
import {
  type CertificateFiles,
  createTestPki,
  type TestPki,
} from '../helpers/test-certificates.js';

const API_KEY = 'web-config-suite-key';
const PASSWORD = 'correct horse battery staple';
// Cost 4 is bcrypt's minimum: these tests are about the protocol, not about bcrypt's cost.
const HASH = bcrypt.hashSync(PASSWORD, 4);
const AUTH_FOR_HEADERS = `basic_auth_users:\n  prometheus: '${HASH}'`;

let dir: TempDir;
let pki: TestPki;
let simulator: Simulator;
let under: ExporterUnderTest | undefined;

beforeAll(async () => {
  dir = await createTempDir();
  pki = createTestPki(dir.path);
  simulator = await startSimulator({ apiKey: API_KEY });
});

afterEach(async () => {
  await under?.close();
  under = undefined;
});

afterAll(async () => {
  await simulator.close();
  await dir.remove();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Common name of the certificate the server presented, over TLS. */
  serverName?: string;
}

interface RequestOptions {
  method?: string;
  /** `user:password` for basic auth. */
  auth?: string;
  authorization?: string;
  clientCertificate?: CertificateFiles;
  maxVersion?: SecureVersion;
}

/** One request on a fresh connection, so that every TLS test does its own handshake. */
function send(url: string, path: string, options: RequestOptions = {}): Promise<Answer> {
  const target = new URL(path, url);
  const headers: Record<string, string> = {};
  if (options.auth !== undefined) {
    headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
  }
  if (options.authorization !== undefined) {
    headers.authorization = options.authorization;
  }
  const common = { method: options.method ?? 'GET', headers, agent: false as const };

  return new Promise((resolve, reject) => {
    const onResponse = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      const socket = response.socket as TLSSocket;
      const serverName =
        typeof socket.getPeerCertificate === 'function'
          ? String(socket.getPeerCertificate().subject?.CN)
          : undefined;
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          serverName,
        }),
      );
    };
    const outgoing =
      target.protocol === 'https:'
        ? httpsRequest(
            target,
            {
              ...common,
              ca: pki.ca.cert,
              cert: options.clientCertificate?.cert,
              key: options.clientCertificate?.key,
              maxVersion: options.maxVersion,
            },
            onResponse,
          )
        : httpRequest(target, common, onResponse);
    outgoing.on('error', reject);
    outgoing.end();
  });
}

async function startWithWebConfig(yaml: string, enableLifecycle = false, extraYaml?: string) {
  const [taskId = ''] = simulator.addTasks(1, { pendingMs: 0 });
  const webConfigFile = await dir.write(`web-${Math.random().toString(36).slice(2)}.yml`, yaml);
  under = await startExporterUnderTest({
    simulator,
    apiKey: API_KEY,
    tasks: [taskId],
    enableLifecycle,
    webConfigFile,
    extraYaml,
  });

  return { exporter: under, webConfigFile };
}

function tlsConfig(extra = ''): string {
  return [
    'tls_server_config:',
    `  cert_file: ${pki.server.certFile}`,
    `  key_file: ${pki.server.keyFile}`,
    extra,
  ].join('\n');
}

const EVERY_ROUTE: [string, string][] = [
  ['GET', '/metrics'],
  ['GET', '/'],
  ['GET', '/-/healthy'],
  ['GET', '/-/ready'],
  ['POST', '/-/reload'],
  ['GET', '/api/v1/tasks'],
  ['GET', '/no/such/route'],
  ['PUT', '/metrics'],
];

describe('without --web.config.file', () => {
  it('serves plain HTTP without asking for credentials', async () => {
    const [taskId = ''] = simulator.addTasks(1);
    under = await startExporterUnderTest({ simulator, apiKey: API_KEY, tasks: [taskId] });

    const answer = await send(under.url, '/metrics');

    expect(under.url).toMatch(/^http:\/\//);
    expect(answer.status).toBe(200);
    expect(answer.headers['www-authenticate']).toBeUndefined();
  });
});

describe('tls_server_config', () => {
  it('serves every endpoint over HTTPS with the configured certificate', async () => {
    const { exporter } = await startWithWebConfig(tlsConfig());

    const metrics = await send(exporter.url, '/metrics');
    const landing = await send(exporter.url, '/');

    expect(exporter.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('drivequant_up');
    expect(metrics.serverName).toBe('localhost');
    expect(landing.status).toBe(200);
  });

  it('does not answer plain HTTP on the TLS port', async () => {
    const { exporter } = await startWithWebConfig(tlsConfig());

    const plain = await send(exporter.url.replace('https:', 'http:'), '/metrics').catch(String);

    expect(plain).toMatch(/socket hang up|ECONNRESET/);
  });

  it('refuses TLS 1.2 when min_version is TLS13', async () => {
    const { exporter } = await startWithWebConfig(tlsConfig('  min_version: TLS13'));

    const old = await send(exporter.url, '/metrics', { maxVersion: 'TLSv1.2' }).catch(String);
    const current = await send(exporter.url, '/metrics');

    expect(old).toMatch(/protocol version/);
    expect(current.status).toBe(200);
  });

  const CLIENT_AUTH_CASES = [
    { type: 'RequireAndVerifyClientCert', none: false, trusted: true, stranger: false },
    { type: 'VerifyClientCertIfGiven', none: true, trusted: true, stranger: false },
    { type: 'RequireAnyClientCert', none: false, trusted: true, stranger: true },
    { type: 'RequestClientCert', none: true, trusted: true, stranger: true },
  ];

  it.each(CLIENT_AUTH_CASES)(
    'with client_auth_type $type admits no certificate: $none, a trusted one: $trusted, a stranger: $stranger',
    async ({ type, none, trusted, stranger }) => {
      const ca = type.includes('Verify') ? `  client_ca_file: ${pki.ca.certFile}\n` : '';
      const { exporter } = await startWithWebConfig(
        tlsConfig(`  client_auth_type: ${type}\n${ca}`),
      );
      const admitted = (clientCertificate?: CertificateFiles) =>
        send(exporter.url, '/metrics', { clientCertificate }).then(
          (answer) => answer.status === 200,
          () => false,
        );

      const outcomes = {
        none: await admitted(),
        trusted: await admitted(pki.client),
        stranger: await admitted(pki.stranger),
      };

      expect(outcomes).toEqual({ none, trusted, stranger });
    },
  );
});

describe('basic_auth_users', () => {
  const AUTH = `basic_auth_users:\n  prometheus: '${HASH}'\n`;

  it.each(EVERY_ROUTE)(
    'answers %s %s with 401 and WWW-Authenticate: Basic without credentials',
    async (method, path) => {
      const { exporter } = await startWithWebConfig(AUTH, true);

      const answer = await send(exporter.url, path, { method });

      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe('Basic');
      expect(answer.body).toBe('Unauthorized\n');
    },
  );

  it.each([
    ['a wrong password', { auth: 'prometheus:hunter2' }],
    ['an unknown user with the right password', { auth: `grafana:${PASSWORD}` }],
    ['an empty user', { auth: `:${PASSWORD}` }],
    ['a bearer token', { authorization: 'Bearer abc' }],
    ['garbage after Basic', { authorization: 'Basic %%%' }],
    ['the password as the user name', { auth: PASSWORD }],
  ])('refuses %s with 401', async (_name, options) => {
    const { exporter } = await startWithWebConfig(AUTH);

    const answer = await send(exporter.url, '/metrics', options);

    expect(answer.status).toBe(401);
  });

  it('admits the right user and password on every route', async () => {
    const { exporter } = await startWithWebConfig(AUTH);
    const statuses: Record<string, number> = {};

    for (const [method, path] of EVERY_ROUTE) {
      const answer = await send(exporter.url, path, { method, auth: `prometheus:${PASSWORD}` });
      statuses[`${method} ${path}`] = answer.status;
    }

    expect(statuses).toEqual({
      'GET /metrics': 200,
      'GET /': 200,
      'GET /-/healthy': 200,
      'GET /-/ready': expect.any(Number),
      'POST /-/reload': 403,
      'GET /api/v1/tasks': 200,
      'GET /no/such/route': 404,
      'PUT /metrics': 405,
    });
  });

  it('remembers a successful check so that each scrape does not pay for bcrypt again', async () => {
    const slowHash = bcrypt.hashSync(PASSWORD, 12);
    const { exporter } = await startWithWebConfig(
      `basic_auth_users:\n  prometheus: '${slowHash}'\n`,
    );
    const timed = async () => {
      const started = performance.now();
      const answer = await send(exporter.url, '/-/healthy', { auth: `prometheus:${PASSWORD}` });
      expect(answer.status).toBe(200);
      return performance.now() - started;
    };

    const firstMs = await timed();
    const laterMs = [await timed(), await timed(), await timed()];

    expect(Math.max(...laterMs)).toBeLessThan(firstMs / 4);
  });

  it('lets the task API be used with its bearer token alone, and only with the right one', async () => {
    const { exporter } = await startWithWebConfig(AUTH, false, 'api:\n  token: task-api-token\n');
    const [newTask = ''] = simulator.addTasks(1);
    const register = (authorization: string) =>
      fetch(`${exporter.url}/api/v1/tasks`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ taskId: newTask }),
      });

    const withToken = await register('Bearer task-api-token');
    const withWrongToken = await register('Bearer not-the-token');
    const metricsWithToken = await send(exporter.url, '/metrics', {
      authorization: 'Bearer task-api-token',
    });

    expect(withToken.status).toBe(201);
    expect(withWrongToken.status).toBe(401);
    expect(withWrongToken.headers.get('www-authenticate')).toBe('Basic');
    expect(metricsWithToken.status).toBe(401);
  });

  it('works over TLS too', async () => {
    const { exporter } = await startWithWebConfig(`${tlsConfig()}\n${AUTH}`);

    const refused = await send(exporter.url, '/metrics');
    const admitted = await send(exporter.url, '/metrics', { auth: `prometheus:${PASSWORD}` });

    expect(refused.status).toBe(401);
    expect(admitted.status).toBe(200);
  });
});

describe('http_server_config.headers', () => {
  it('adds the configured headers to every answer, refusals included', async () => {
    const yaml = [
      'http_server_config:',
      '  headers:',
      '    X-Frame-Options: deny',
      '    X-Content-Type-Options: nosniff',
      '    Content-Security-Policy: "default-src \'self\'"',
      AUTH_FOR_HEADERS,
    ].join('\n');
    const { exporter } = await startWithWebConfig(yaml);

    const refused = await send(exporter.url, '/metrics');
    const admitted = await send(exporter.url, '/', { auth: `prometheus:${PASSWORD}` });

    for (const answer of [refused, admitted]) {
      expect(answer.headers['x-frame-options']).toBe('deny');
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['content-security-policy']).toBe("default-src 'self'");
    }
  });
});

describe('a reload', () => {
  it('swaps the users: the new password works and the old one no longer does', async () => {
    const { exporter, webConfigFile } = await startWithWebConfig(
      `basic_auth_users:\n  prometheus: '${HASH}'\n`,
      true,
    );
    const newPassword = 'a brand new password';
    await writeFile(
      webConfigFile,
      `basic_auth_users:\n  prometheus: '${bcrypt.hashSync(newPassword, 4)}'\n`,
    );

    const reload = await send(exporter.url, '/-/reload', {
      method: 'POST',
      auth: `prometheus:${PASSWORD}`,
    });
    const old = await send(exporter.url, '/metrics', { auth: `prometheus:${PASSWORD}` });
    const fresh = await send(exporter.url, '/metrics', { auth: `prometheus:${newPassword}` });

    expect(reload.status).toBe(200);
    expect(old.status).toBe(401);
    expect(fresh.status).toBe(200);
  });

  it('refuses a web config that turns TLS off, and keeps serving HTTPS', async () => {
    const { exporter, webConfigFile } = await startWithWebConfig(tlsConfig(), true);
    await writeFile(webConfigFile, `basic_auth_users:\n  prometheus: '${HASH}'\n`);

    const reload = await send(exporter.url, '/-/reload', { method: 'POST' });
    const after = await send(exporter.url, '/metrics');

    expect(reload.status).toBe(500);
    expect(reload.body).toContain('TLS cannot be turned on or off by a reload');
    expect(after.status).toBe(200);
  });

  it('refuses an invalid web config with its key path, and keeps the old users', async () => {
    const { exporter, webConfigFile } = await startWithWebConfig(
      `basic_auth_users:\n  prometheus: '${HASH}'\n`,
      true,
    );
    await writeFile(webConfigFile, 'basic_auth_users:\n  prometheus: plaintext\n');

    const reload = await send(exporter.url, '/-/reload', {
      method: 'POST',
      auth: `prometheus:${PASSWORD}`,
    });
    const after = await send(exporter.url, '/metrics', { auth: `prometheus:${PASSWORD}` });

    expect(reload.status).toBe(500);
    expect(reload.body).toContain('basic_auth_users.prometheus: must be a bcrypt hash');
    expect(reload.body).not.toContain('plaintext');
    expect(after.status).toBe(200);
  });
});

describe('an invalid web config', () => {
  const cases = () => [
    {
      yaml: 'tls_server_config: {}',
      problems: [
        'tls_server_config.cert_file: is required',
        'tls_server_config.key_file: is required',
      ],
    },
    {
      yaml: `tls_server_config: {cert_file: ${pki.server.certFile}, key_file: /nonexistent.key}`,
      problems: ['tls_server_config.key_file: cannot read "/nonexistent.key": no such file'],
    },
    {
      yaml: `tls_server_config: {cert_file: ${pki.server.certFile}, key_file: ${pki.server.certFile}}`,
      problems: [
        expect.stringMatching(
          /^tls_server_config: the certificate, key, CA or versions cannot be used together: /,
        ),
      ],
    },
    {
      yaml: `tls_server_config: {cert_file: ${pki.server.certFile}, key_file: ${pki.server.keyFile}, client_ca_file: ${pki.ca.certFile}}`,
      problems: [
        'tls_server_config.client_ca_file: set, but client_auth_type does not ask for client certificates',
      ],
    },
    {
      yaml: `tls_server_config: {cert_file: ${pki.server.certFile}, key_file: ${pki.server.keyFile}, client_auth_type: RequireAndVerifyClientCert}`,
      problems: [
        'tls_server_config.client_ca_file: required by client_auth_type RequireAndVerifyClientCert',
      ],
    },
    {
      yaml: `tls_server_config: {cert_file: a, key_file: b, client_auth_type: Always, min_version: TLS9}`,
      problems: [
        'tls_server_config.client_auth_type: must be one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert',
        'tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13',
      ],
    },
    {
      yaml: `tls_server_config: {cert_file: a, key_file: b, cipher_suites: [TLS_AES_128_GCM_SHA256]}`,
      problems: ['tls_server_config.cipher_suites: is not supported by this exporter'],
    },
    {
      yaml: 'basic_auth_users: {alice: hunter2}',
      problems: [
        'basic_auth_users.alice: must be a bcrypt hash ($2a$, $2b$ or $2y$), not a password',
      ],
    },
    {
      yaml: `basic_auth_users: {"a:b": '${HASH}'}`,
      problems: ['basic_auth_users.a:b: a user name must not contain ":"'],
    },
    {
      yaml: 'http_server_config: {headers: {X-Frame-Options: allow-from, X-Powered-By: me}}',
      problems: [
        'http_server_config.headers.X-Frame-Options: must be deny or sameorigin',
        'http_server_config.headers.X-Powered-By: unknown key',
      ],
    },
    { yaml: 'tls_config: {}', problems: ['tls_config: unknown key'] },
    {
      yaml: '- a list',
      problems: [
        '(top level): must be a mapping of tls_server_config, http_server_config and basic_auth_users',
      ],
    },
  ];

  it('is refused with every problem named by its key path, never echoing a password', async () => {
    for (const { yaml, problems } of cases()) {
      const file = await dir.write('invalid-web.yml', yaml);

      let caught: unknown;
      try {
        loadWebConfigFile(file);
      } catch (error) {
        caught = error;
      }

      expect(caught, yaml).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).problems, yaml).toEqual(problems);
      expect((caught as ConfigError).message).not.toContain('hunter2');
    }
  });

  it('keeps the exporter from starting', async () => {
    const webConfigFile = await dir.write('bad-web.yml', 'basic_auth_users: {alice: hunter2}');

    const starting = startExporterUnderTest({
      simulator,
      apiKey: API_KEY,
      tasks: [],
      webConfigFile,
    });

    await expect(starting).rejects.toThrow(/basic_auth_users\.alice: must be a bcrypt hash/);
  });
});
