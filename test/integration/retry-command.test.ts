import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runRetryCommand } from '../../src/retry-command.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';

const API_KEY = 'retry-test-key-do-not-print';
const TOKEN = 'retry-test-token-do-not-print';

let sim: Simulator;
let dir: TempDir;
let configPath: string;
let exporter: ExporterUnderTest | undefined;
let server: TestServer | undefined;

beforeEach(async () => {
  sim = await startSimulator({ apiKey: API_KEY });
  dir = await createTempDir();
  configPath = await dir.write(
    'cli.yaml',
    `drivequant:\n  base_url: ${sim.url}\n  api_key: \${DQ_KEY}\n`,
  );
});

afterEach(async () => {
  await exporter?.close();
  exporter = undefined;
  await server?.close();
  server = undefined;
  await dir.remove();
  await sim.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function retry(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runRetryCommand(argv, {
    env: { DQ_KEY: API_KEY, ...env },
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });

  return { code, stdout, stderr };
}

/** The URL of a loopback port that was just free: nothing listens there. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));

  return `http://127.0.0.1:${port}`;
}

async function startExporter(poll = '{interval: 1h}', yaml = ''): Promise<ExporterUnderTest> {
  exporter = await startExporterUnderTest({
    simulator: sim,
    apiKey: API_KEY,
    yaml: `api: {token: ${TOKEN}}\npoll: ${poll}\n${yaml}`,
  });

  return exporter;
}

/** A config whose DriveQuant is a local server that answers as `handle` says. */
async function configForDriveQuant(handle: Parameters<typeof startTestServer>[0]): Promise<string> {
  server = await startTestServer(handle);

  return dir.write(
    'odd-drivequant.yaml',
    `drivequant:\n  base_url: ${server.url}\n  api_key: \${DQ_KEY}\n  timeout: 500ms\n`,
  );
}

describe('retry trips|crashes', () => {
  it('starts a retry and prints the new task id and its item count', async () => {
    const run = await retry(['trips', `--config.file=${configPath}`]);

    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const [taskId] = sim.taskIds();
    expect(run.stdout).toMatch(new RegExp(`^task ${taskId}: \\d+ items\\n$`));
  });

  it('prints JSON with --output=json', async () => {
    const run = await retry(['crashes', `--config.file=${configPath}`, '--output=json']);

    const printed = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(run.code).toBe(0);
    expect(printed).toEqual({
      kind: 'crashes',
      taskId: sim.taskIds()[0],
      items: expect.any(Number),
      registration: null,
    });
  });

  it('shows "already in progress" plainly and exits 1 while a retry of that kind runs', async () => {
    await retry(['trips', `--config.file=${configPath}`]);

    const run = await retry(['trips', `--config.file=${configPath}`]);

    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'drivequant-task-exporter retry: retry of failed trips refused: DriveQuant answered HTTP 409: A retry of failed trips is already in progress\n',
    );
    expect(sim.taskIds()).toHaveLength(1);
  });

  it('says the API key was refused on a 401, without printing it', async () => {
    const run = await retry(['trips', `--config.file=${configPath}`], { DQ_KEY: 'wrong-key' });

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'drivequant-task-exporter retry: DriveQuant refused the API key (HTTP 401); check drivequant.api_key\n',
    );
    expect(run.stderr + run.stdout).not.toContain('wrong-key');
  });

  it('exits 2 on a bad command line, before asking DriveQuant anything', async () => {
    const runs = await Promise.all([
      retry([`--config.file=${configPath}`]),
      retry(['everything', `--config.file=${configPath}`]),
      retry(['trips']),
      retry(['trips', `--config.file=${configPath}`, '--output=xml']),
      retry(['trips', `--config.file=${configPath}`, '--register', 'localhost:9850']),
    ]);

    expect(runs.map((run) => run.code)).toEqual([2, 2, 2, 2, 2]);
    expect(runs.map((run) => run.stderr.split('\n')[0])).toEqual([
      'drivequant-task-exporter retry: say what to retry: trips or crashes',
      'drivequant-task-exporter retry: "everything" is not trips or crashes',
      'drivequant-task-exporter retry: --config.file is required: the DriveQuant base_url and api_key are read from it',
      'drivequant-task-exporter retry: --output: "xml" is not text or json',
      'drivequant-task-exporter retry: --register: "localhost:9850" is not an http:// or https:// URL',
    ]);
    expect(sim.taskIds()).toEqual([]);
  });

  it('says DriveQuant accepted the retry when a 200 answer cannot be read, and exits 1', async () => {
    const odd = await configForDriveQuant((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' }).end('<html>maintenance</html>');
    });

    const run = await retry(['trips', `--config.file=${odd}`]);

    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'drivequant-task-exporter retry: DriveQuant accepted the retry of failed trips (HTTP 200) but its answer could not be read (the answer is not JSON): the retry may have started, with a task id nobody knows; check with DriveQuant before retrying again\n',
    );
    expect(run.stderr).not.toContain('refused');
  });

  it('says the retry may have started when DriveQuant does not answer in time', async () => {
    const odd = await configForDriveQuant(() => undefined);

    const run = await retry(['crashes', `--config.file=${odd}`]);

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      'drivequant-task-exporter retry: DriveQuant did not answer the retry of failed crashes in time: the retry may have started; check with DriveQuant before retrying again\n',
    );
    expect(server?.requests.map((request) => request.method)).toEqual(['POST']);
  });

  it('exits 1 with the config error for a config it cannot use', async () => {
    const run = await retry(['trips', `--config.file=${configPath}`], { DQ_KEY: undefined });

    expect(run.code).toBe(1);
    expect(run.stderr).toContain('drivequant.api_key: environment variable DQ_KEY is not set');
  });
});

describe('retry --register', () => {
  it('registers the new task with a running exporter, token from the environment', async () => {
    const running = await startExporter();

    const run = await retry(['trips', `--config.file=${configPath}`, '--register', running.url], {
      DRIVEQUANT_EXPORTER_TOKEN: TOKEN,
    });

    const [taskId = ''] = sim.taskIds();
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(`^task ${taskId}: \\d+ items\\nregistered with ${running.url}/api/v1/tasks\\n$`),
    );
    expect(running.exporter.store.get(taskId)?.sources).toEqual(new Set(['api']));
  });

  it('reads the token from --token-file', async () => {
    const running = await startExporter();
    const tokenFile = await dir.write('token', `${TOKEN}\n`);

    const run = await retry([
      'crashes',
      `--config.file=${configPath}`,
      `--register=${running.url}/api/v1/tasks`,
      `--token-file=${tokenFile}`,
      '--output=json',
    ]);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      registration: { ok: true, created: true, url: `${running.url}/api/v1/tasks` },
    });
    expect(running.exporter.store.size).toBe(1);
  });

  it('checks the token with the exporter first, and starts no retry when it is refused', async () => {
    const running = await startExporter();

    const run = await retry(['trips', `--config.file=${configPath}`, '--register', running.url], {
      DRIVEQUANT_EXPORTER_TOKEN: 'wrong-token',
    });

    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `drivequant-task-exporter retry: the exporter at ${running.url}/api/v1/tasks answered HTTP 401: the token was refused (check --token-file, DRIVEQUANT_EXPORTER_TOKEN or api.token); no retry was started\n`,
    );
    expect(run.stderr).not.toContain('wrong-token');
    expect(sim.taskIds()).toEqual([]);
  });

  it('says the task started but was not registered when the exporter refuses the registration', async () => {
    const tracked = sim.addTask({ frozen: { status: 'IN_PROGRESS', remainingItems: 5 } });
    const running = await startExporter('{interval: 1h, max_tasks: 1}', `tasks: [${tracked}]`);

    const run = await retry(['trips', `--config.file=${configPath}`, '--register', running.url], {
      DRIVEQUANT_EXPORTER_TOKEN: TOKEN,
    });

    const taskId = sim.taskIds().find((id) => id !== tracked);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`^task ${taskId}: \\d+ items\\n$`));
    expect(run.stderr).toMatch(
      new RegExp(
        `^drivequant-task-exporter retry: task ${taskId} was started but not registered with ${running.url}/api/v1/tasks: HTTP 429: task limit reached`,
      ),
    );
  });

  it('refuses to start a retry it could not register, when no token is given', async () => {
    const run = await retry([
      'trips',
      `--config.file=${configPath}`,
      '--register',
      'http://127.0.0.1:9',
    ]);

    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      "drivequant-task-exporter retry: --register needs the exporter's token: --token-file, DRIVEQUANT_EXPORTER_TOKEN, or api.token in the configuration\n",
    );
    expect(sim.taskIds()).toEqual([]);
  });

  it('reports an exporter that cannot be reached, before starting a retry', async () => {
    const closedUrl = await closedPortUrl();

    const run = await retry(['trips', `--config.file=${configPath}`, '--register', closedUrl], {
      DRIVEQUANT_EXPORTER_TOKEN: TOKEN,
    });

    expect(run.code).toBe(1);
    expect(run.stderr).toBe(
      `drivequant-task-exporter retry: cannot reach the exporter at ${closedUrl}/api/v1/tasks: cannot connect (ECONNREFUSED); no retry was started\n`,
    );
    expect(sim.taskIds()).toEqual([]);
  });
});

describe('retry --register with a user and password in the URL', () => {
  const PASSWORD = 'url-password-do-not-print';

  function withUserinfo(url: string): string {
    return url.replace('://', `://alice:${PASSWORD}@`);
  }

  it('never prints them when the exporter cannot be reached', async () => {
    const closedUrl = await closedPortUrl();

    const run = await retry(
      ['trips', `--config.file=${configPath}`, '--register', withUserinfo(closedUrl)],
      { DRIVEQUANT_EXPORTER_TOKEN: TOKEN },
    );

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`cannot reach the exporter at ${closedUrl}/api/v1/tasks`);
    expect(run.stderr).not.toContain(PASSWORD);
    expect(run.stderr).not.toContain('alice');
  });

  it('never prints them when the registration fails after the retry started', async () => {
    server = await startTestServer((request, response) => {
      if (request.method === 'HEAD') {
        response.writeHead(200).end();
      } else {
        request.socket.destroy();
      }
    });

    const run = await retry(
      ['trips', `--config.file=${configPath}`, '--register', withUserinfo(server.url)],
      { DRIVEQUANT_EXPORTER_TOKEN: TOKEN },
    );

    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`was started but not registered with ${server.url}/api/v1/tasks`);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
  });

  it('registers with the bearer token alone and prints the address without them', async () => {
    const running = await startExporter();

    const run = await retry(
      ['trips', `--config.file=${configPath}`, '--register', withUserinfo(running.url)],
      { DRIVEQUANT_EXPORTER_TOKEN: TOKEN },
    );

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`registered with ${running.url}/api/v1/tasks\n`);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
  });

  it('never echoes them in a usage error', async () => {
    const run = await retry([
      'trips',
      `--config.file=${configPath}`,
      `--register=http://alice:${PASSWORD}@bad host`,
    ]);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--register: the URL is not an http:// or https:// URL');
    expect(run.stderr).not.toContain(PASSWORD);
  });
});
