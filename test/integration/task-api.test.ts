import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { shardOf } from '../../src/shard.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { createTempDir } from '../helpers/temp-dir.js';

const API_KEY = 'simulator-key';
const TOKEN = 'exporter-token-0123456789';
const TASKS_URL = '/api/v1/tasks';

let sim: Simulator;
let running: ExporterUnderTest | undefined;

beforeEach(async () => {
  sim = await startSimulator({ apiKey: API_KEY });
});

afterEach(async () => {
  await running?.close();
  running = undefined;
  await sim.close();
});

async function start(yaml: string): Promise<ExporterUnderTest> {
  running = await startExporterUnderTest({ simulator: sim, apiKey: API_KEY, yaml });
  await running.exporter.poller.runCycle();

  return running;
}

function activeTask(taskId?: string): string {
  return sim.addTask({
    ...(taskId === undefined ? {} : { taskId }),
    frozen: { status: 'IN_PROGRESS', remainingItems: 5 },
  });
}

function call(
  method: string,
  path: string,
  options: { token?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...options.headers,
  };
  if (options.token !== undefined) {
    headers.authorization = `Bearer ${options.token}`;
  }

  return fetch(`${running?.url}${path}`, { method, headers, body: options.body });
}

function register(taskId: string, token = TOKEN): Promise<Response> {
  return call('POST', TASKS_URL, { token, body: JSON.stringify({ taskId }) });
}

async function refusedCount(reason: string): Promise<number | undefined> {
  const text = await (await fetch(`${running?.url}/metrics`)).text();
  const line = new RegExp(
    `^drivequant_task_registrations_refused_total\\{reason="${reason}"\\} (\\S+)$`,
    'm',
  );
  const value = line.exec(text)?.[1];

  return value === undefined ? undefined : Number(value);
}

describe('GET /api/v1/tasks', () => {
  it('lists every tracked task with its state, sources and last poll result', async () => {
    const taskId = activeTask();
    const missing = '6753030831fe9826412b0000';
    const exporter = await start(
      `tasks: ${JSON.stringify([taskId, missing])}\npoll: {interval: 1h}`,
    );

    const response = await fetch(`${exporter.url}${TASKS_URL}`);
    const body = (await response.json()) as { tasks: Record<string, unknown>[]; total: number };

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(body.total).toBe(2);
    expect(body.tasks[0]).toMatchObject({
      taskId,
      sources: ['config'],
      state: 'IN_PROGRESS',
      taskType: 'PUSH_FAILED_TRIPS',
      remainingItems: 5,
      registeredAt: null,
      lastPoll: { result: 'success' },
    });
    expect(body.tasks[1]).toMatchObject({
      taskId: missing,
      state: 'NOT_POLLED',
      lastPoll: { result: 'error', reason: 'not_found' },
      consecutiveNotFound: 1,
    });
  });

  it('is readable without a token', async () => {
    const exporter = await start(`api: {token: ${TOKEN}}`);

    const response = await fetch(`${exporter.url}${TASKS_URL}`);

    expect(response.status).toBe(200);
  });

  it('checks a bearer token when one is sent, with GET and HEAD, and changes nothing', async () => {
    await start(`api: {token: ${TOKEN}}`);

    const right = await call('HEAD', TASKS_URL, { token: TOKEN });
    const wrong = await call('HEAD', TASKS_URL, { token: 'nope' });
    const wrongGet = await call('GET', TASKS_URL, { token: 'nope' });

    expect(right.status).toBe(200);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(wrongGet.status).toBe(401);
    expect(await wrongGet.json()).toEqual({ error: 'wrong bearer token' });
    expect(running?.exporter.store.size).toBe(0);
  });

  it('answers 403 to a bearer token when the task API is read-only', async () => {
    await start('');

    const response = await call('HEAD', TASKS_URL, { token: TOKEN });

    expect(response.status).toBe(403);
  });
});

describe('GET /api/v1/tasks/{taskId}', () => {
  it('shows one tracked task', async () => {
    const taskId = activeTask();
    const exporter = await start(`tasks: ${JSON.stringify([taskId])}`);

    const response = await fetch(`${exporter.url}${TASKS_URL}/${taskId}`);

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ taskId, state: 'IN_PROGRESS' });
  });

  it('answers 404 JSON for a task that is not tracked', async () => {
    const exporter = await start('');

    const response = await fetch(`${exporter.url}${TASKS_URL}/6753030831fe9826412bac5c`);

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: 'task 6753030831fe9826412bac5c is unknown: it is not tracked',
    });
  });

  it('answers 400 JSON for an id that is not a task id', async () => {
    const exporter = await start('');

    const response = await fetch(`${exporter.url}${TASKS_URL}/abc.def`);

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: '"abc.def" is not a task id (1 to 64 of A-Z a-z 0-9 _ -)',
    });
  });
});

describe('POST /api/v1/tasks', () => {
  describe('without a configured token', () => {
    it('is disabled with a JSON reason', async () => {
      await start('');

      const response = await register(activeTask());

      expect(response.status).toBe(403);
      expect(((await response.json()) as { error: string }).error).toContain('api.token');
      expect(running?.exporter.store.size).toBe(0);
    });
  });

  describe('authentication', () => {
    it('answers 401 without an Authorization header', async () => {
      await start(`api: {token: ${TOKEN}}`);

      const response = await call('POST', TASKS_URL, { body: '{"taskId":"abc"}' });

      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expect(await response.json()).toEqual({
        error: 'missing bearer token: send Authorization: Bearer <api.token>',
      });
    });

    it('answers 401 with a wrong token, a token prefix or another scheme', async () => {
      await start(`api: {token: ${TOKEN}}`);
      const body = '{"taskId":"abc"}';

      const wrong = await call('POST', TASKS_URL, { token: 'nope', body });
      const prefix = await call('POST', TASKS_URL, { token: TOKEN.slice(0, -1), body });
      const basic = await call('POST', TASKS_URL, {
        body,
        headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` },
      });

      expect([wrong.status, prefix.status, basic.status]).toEqual([401, 401, 401]);
      expect(await wrong.json()).toEqual({ error: 'wrong bearer token' });
      expect(running?.exporter.store.size).toBe(0);
    });

    it('accepts the right token, also when read from token_file', async () => {
      const exporter = await start('');
      await exporter.stop();
      await exporter.dir.write('token', `${TOKEN}\n`);
      running = await startExporterUnderTest({
        simulator: sim,
        apiKey: API_KEY,
        dir: exporter.dir,
        yaml: 'api: {token_file: token}',
      });

      const response = await register('6753030831fe9826412bac5c');

      expect(response.status).toBe(201);
    });

    it('never writes the token into an answer or a log line', async () => {
      await start(`api: {token: ${TOKEN}}`);

      const wrong = await call('POST', TASKS_URL, { token: `${TOKEN}x`, body: '{"taskId":"a"}' });
      const right = await register('abc');
      const listing = await call('GET', TASKS_URL);

      for (const text of [await wrong.text(), await right.text(), await listing.text()]) {
        expect(text).not.toContain(TOKEN);
      }
      expect(running?.logs.text()).not.toContain(TOKEN);
    });
  });

  describe('with the right token', () => {
    it('starts tracking a new task: 201, Location, and the task in the list and the state file', async () => {
      const taskId = activeTask();
      const exporter = await start(`api: {token: ${TOKEN}}`);

      const response = await register(taskId);
      const body = (await response.json()) as Record<string, unknown>;

      expect(response.status).toBe(201);
      expect(response.headers.get('location')).toBe(`${TASKS_URL}/${taskId}`);
      expect(body).toMatchObject({ taskId, sources: ['api'], state: 'NOT_POLLED' });
      expect(body.registeredAt).toEqual(expect.any(String));
      const saved = await readFile(
        join(exporter.dir.path, 'data', 'registered-tasks.json'),
        'utf8',
      );
      expect(JSON.parse(saved)).toMatchObject({ version: 1, tasks: [{ taskId }] });
    });

    it('answers 200 for a task that is already tracked, and tracks it once', async () => {
      const taskId = activeTask();
      await start(`api: {token: ${TOKEN}}\ntasks: ${JSON.stringify([taskId])}`);

      const first = await register(taskId);
      const second = await register(taskId);

      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expect(await second.json()).toMatchObject({ taskId, sources: ['config', 'api'] });
      expect(running?.exporter.store.size).toBe(1);
    });

    it('polls the registered task and exports its series', async () => {
      const taskId = activeTask();
      const exporter = await start(`api: {token: ${TOKEN}}`);

      await register(taskId);
      await exporter.exporter.poller.runCycle();
      const metrics = await (await fetch(`${exporter.url}/metrics`)).text();

      expect(metrics).toContain(
        `drivequant_task_remaining_items{task_id="${taskId}",task_type="PUSH_FAILED_TRIPS"} 5`,
      );
    });
  });

  describe('bad requests', () => {
    const cases: [string, string, string][] = [
      ['malformed JSON', '{"taskId": ', 'the body is not valid JSON; send {"taskId": "..."}'],
      ['an empty body', '', 'taskId: is required'],
      ['a JSON array', '["abc"]', 'the body must be a JSON object: {"taskId": "..."}'],
      ['JSON null', 'null', 'the body must be a JSON object: {"taskId": "..."}'],
      ['a JSON string', '"abc"', 'the body must be a JSON object: {"taskId": "..."}'],
      ['a missing taskId', '{}', 'taskId: is required'],
      ['a numeric taskId', '{"taskId": 6753}', 'taskId: must be a string, got 6753'],
      [
        'an id with a path in it',
        '{"taskId": "../etc/passwd"}',
        'taskId: "../etc/passwd" is not a task id (1 to 64 of A-Z a-z 0-9 _ -)',
      ],
      [
        'an unknown field',
        '{"taskId": "abc", "type": "trips"}',
        'unknown field "type"; the body is {"taskId": "..."}',
      ],
    ];

    it.each(cases)('answers 400 JSON for %s', async (_name, body, error) => {
      await start(`api: {token: ${TOKEN}}`);

      const response = await call('POST', TASKS_URL, { token: TOKEN, body });

      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ error });
      expect(running?.exporter.store.size).toBe(0);
    });

    it('answers "taskId: is required" to a request without any body, as curl -X POST sends', async () => {
      const exporter = await start(`api: {token: ${TOKEN}}`);
      const { hostname, port } = new URL(exporter.url);

      // Neither Content-Length nor Transfer-Encoding: fetch and node:http always send one.
      const socket = connect(Number(port), hostname);
      socket.end(
        `POST ${TASKS_URL} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
      );
      let answer = '';
      for await (const chunk of socket) {
        answer += chunk;
      }

      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer.split('\r\n\r\n')[1]).toBe('{"error":"taskId: is required"}');
    });

    it('answers 413 JSON for a body over 16kb', async () => {
      await start(`api: {token: ${TOKEN}}`);

      const body = JSON.stringify({ taskId: 'a'.repeat(20_000) });
      const response = await call('POST', TASKS_URL, { token: TOKEN, body });

      expect(response.status).toBe(413);
      expect(await response.json()).toEqual({ error: 'the body is larger than 16kb' });
    });

    it('reads the body as JSON whatever its content type, as curl -d sends it', async () => {
      await start(`api: {token: ${TOKEN}}`);

      const response = await call('POST', TASKS_URL, {
        token: TOKEN,
        body: '{"taskId":"abc"}',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });

      expect(response.status).toBe(201);
    });

    it('answers 405 JSON for another method', async () => {
      await start(`api: {token: ${TOKEN}}`);

      const response = await call('PUT', TASKS_URL, { token: TOKEN, body: '{}' });

      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD, POST');
      expect(await response.json()).toEqual({ error: 'method not allowed; use GET, HEAD, POST' });
    });
  });

  describe('max_tasks', () => {
    it('answers 429 when only active tasks remain, and counts the refusal', async () => {
      const tracked = [activeTask(), activeTask()];
      await start(
        `api: {token: ${TOKEN}}\npoll: {max_tasks: 2}\ntasks: ${JSON.stringify(tracked)}`,
      );

      const response = await register(activeTask());

      expect(response.status).toBe(429);
      expect(((await response.json()) as { error: string }).error).toMatch(
        /^task limit reached: 2 tasks are tracked \(poll.max_tasks 2\)/,
      );
      expect(running?.exporter.store.list().map((record) => record.taskId)).toEqual(tracked);
      expect(await refusedCount('max_tasks')).toBe(1);
    });
  });

  describe('a state file that cannot be written', () => {
    it('starts all the same, then answers 503 saying storage.path is not a directory', async () => {
      const dir = await createTempDir();
      const inTheWay = await dir.write('not-a-directory', 'a file');
      const exporter = await startExporterUnderTest({
        simulator: sim,
        apiKey: API_KEY,
        dir,
        yaml: `api: {token: ${TOKEN}}\nstorage: {path: ./not-a-directory}`,
      });
      running = exporter;

      const response = await register('abc');

      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        error: `the registration could not be saved: storage.path ${inTheWay} is not a directory (a file is in the way)`,
      });
      expect(exporter.exporter.store.get('abc')).toBeUndefined();
      expect(await refusedCount('storage_error')).toBe(1);
      expect(exporter.logs.records()).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          msg: 'storage.path cannot be used; task registrations will fail until it is fixed',
        }),
      );
    });
  });
});

describe('DELETE /api/v1/tasks/{taskId}', () => {
  it('is disabled without a configured token', async () => {
    const taskId = activeTask();
    await start(`tasks: ${JSON.stringify([taskId])}`);

    const response = await call('DELETE', `${TASKS_URL}/${taskId}`, { token: TOKEN });

    expect(response.status).toBe(403);
    expect(running?.exporter.store.size).toBe(1);
  });

  it('answers 401 without a token and with a wrong one', async () => {
    await start(`api: {token: ${TOKEN}}`);
    await register('abc');

    const missing = await call('DELETE', `${TASKS_URL}/abc`);
    const wrong = await call('DELETE', `${TASKS_URL}/abc`, { token: 'nope' });

    expect([missing.status, wrong.status]).toEqual([401, 401]);
    expect(running?.exporter.store.get('abc')).toBeDefined();
  });

  it('stops tracking a task only the API listed, and its series vanish', async () => {
    const taskId = activeTask();
    const exporter = await start(`api: {token: ${TOKEN}}`);
    await register(taskId);
    await exporter.exporter.poller.runCycle();

    const response = await call('DELETE', `${TASKS_URL}/${taskId}`, { token: TOKEN });
    const metrics = await (await fetch(`${exporter.url}/metrics`)).text();
    const saved = await readFile(join(exporter.dir.path, 'data', 'registered-tasks.json'), 'utf8');

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ taskId, tracked: false, sources: [] });
    expect(metrics).not.toContain(taskId);
    expect(JSON.parse(saved).tasks).toEqual([]);
  });

  it('says so when another source still lists the task', async () => {
    const taskId = activeTask();
    await start(`api: {token: ${TOKEN}}\ntasks: ${JSON.stringify([taskId])}`);
    await register(taskId);

    const response = await call('DELETE', `${TASKS_URL}/${taskId}`, { token: TOKEN });

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      taskId,
      tracked: true,
      sources: ['config'],
      message: 'registration removed; the task is still tracked because config lists it',
    });
    expect(running?.exporter.store.get(taskId)?.sources).toEqual(new Set(['config']));
  });

  it('answers 409 for a task that was not registered through the API', async () => {
    const taskId = activeTask();
    await start(`api: {token: ${TOKEN}}\ntasks: ${JSON.stringify([taskId])}`);

    const response = await call('DELETE', `${TASKS_URL}/${taskId}`, { token: TOKEN });

    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({
      error: `task ${taskId} was not registered through the API; it comes from config, remove it there`,
      sources: ['config'],
    });
  });

  it('answers 404 for an unknown task and 400 for a bad id', async () => {
    await start(`api: {token: ${TOKEN}}`);

    const unknown = await call('DELETE', `${TASKS_URL}/abc`, { token: TOKEN });
    const bad = await call('DELETE', `${TASKS_URL}/a%20b`, { token: TOKEN });

    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'task abc is not registered' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: '"a b" is not a task id (1 to 64 of A-Z a-z 0-9 _ -)',
    });
  });
});

describe('a path that is not valid percent-encoding', () => {
  it.each(['GET', 'DELETE'])('answers %s with 400 malformed URL', async (method) => {
    await start(`api: {token: ${TOKEN}}`);

    const response = await call(method, `${TASKS_URL}/%`, { token: TOKEN });

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: 'malformed URL: the path is not valid percent-encoding',
    });
  });
});

describe('the landing page', () => {
  it('shows each task with its source and the registration command, never the token', async () => {
    const taskId = activeTask();
    const exporter = await start(`api: {token: ${TOKEN}}\ntasks: ${JSON.stringify([taskId])}`);
    await register(taskId);

    const html = await (await fetch(`${exporter.url}/`)).text();

    expect(html).toContain(`<td><code>${taskId}</code></td><td>config, api</td>`);
    expect(html).toContain(`${exporter.url}/api/v1/tasks</code></pre>`);
    expect(html).toContain('Bearer &lt;api.token&gt;');
    expect(html).not.toContain(TOKEN);
  });
});

describe('persistence across a restart', () => {
  it('tracks the registered tasks again, before the first cycle, and forgets deleted ones', async () => {
    const kept = activeTask();
    const deleted = activeTask();
    const exporter = await start(`api: {token: ${TOKEN}}`);
    await register(kept);
    await register(deleted);
    await call('DELETE', `${TASKS_URL}/${deleted}`, { token: TOKEN });
    await exporter.stop();

    running = await startExporterUnderTest({
      simulator: sim,
      apiKey: API_KEY,
      dir: exporter.dir,
      yaml: `api: {token: ${TOKEN}}\npoll: {interval: 1h}`,
    });

    expect(running.exporter.store.list().map((record) => record.taskId)).toEqual([kept]);
    expect(running.exporter.store.get(kept)?.sources).toEqual(new Set(['api']));
  });
});

describe('exporters that share storage.path', () => {
  /** Task ids the simulator knows, one owned by each of two shards. */
  function taskPerShard(): [string, string] {
    const owned: (string | undefined)[] = [undefined, undefined];
    while (owned.includes(undefined)) {
      const taskId = activeTask();
      owned[shardOf(taskId, 2)] ??= taskId;
    }

    return owned as [string, string];
  }

  function startShard(dir: ExporterUnderTest['dir'], index: number): Promise<ExporterUnderTest> {
    return startExporterUnderTest({
      simulator: sim,
      apiKey: API_KEY,
      dir,
      yaml: `api: {token: ${TOKEN}}\npoll: {interval: 1h}`,
      args: [`--shard.index=${index}`, '--shard.total=2'],
    });
  }

  async function registerWith(exporter: ExporterUnderTest, taskId: string): Promise<number> {
    const response = await fetch(`${exporter.url}${TASKS_URL}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ taskId }),
    });

    return response.status;
  }

  it('refuses to start a second one without sharding, naming the lock file and the holder', async () => {
    const first = await start(`api: {token: ${TOKEN}}`);
    const lockPath = join(first.dir.path, 'data', 'registered-tasks.json.lock');

    const second = startExporterUnderTest({
      simulator: sim,
      apiKey: API_KEY,
      dir: first.dir,
      yaml: `api: {token: ${TOKEN}}`,
    });

    await expect(second).rejects.toThrow(
      `is in use by another exporter (process ${process.pid}, lock file ${lockPath})`,
    );
    expect(await register(activeTask())).toHaveProperty('status', 201);
  });

  it('runs one per shard, each keeping its own registrations across a restart', async () => {
    const dir = await createTempDir();
    const owned = taskPerShard();
    const shards = [await startShard(dir, 0), await startShard(dir, 1)];

    const statuses = [
      await registerWith(shards[0] as ExporterUnderTest, owned[0]),
      await registerWith(shards[1] as ExporterUnderTest, owned[1]),
    ];
    await Promise.all(shards.map((shard) => shard.stop()));
    const restarted = [await startShard(dir, 0), await startShard(dir, 1)];
    const kept = restarted.map((shard) => shard.exporter.store.list().map((task) => task.taskId));
    await Promise.all(restarted.map((shard) => shard.stop()));
    await dir.remove();

    expect(statuses).toEqual([201, 201]);
    expect(kept).toEqual([[owned[0]], [owned[1]]]);
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    const dir = await createTempDir();
    const child = spawnSync(process.execPath, ['-e', '']);
    await mkdir(join(dir.path, 'data'));
    const lockPath = join(dir.path, 'data', 'registered-tasks.json.lock');
    await writeFile(lockPath, `${child.pid}\n`);

    running = await startExporterUnderTest({
      simulator: sim,
      apiKey: API_KEY,
      dir,
      yaml: `api: {token: ${TOKEN}}`,
    });
    const held = await readFile(lockPath, 'utf8');
    await running.stop();

    expect(held.split('\n')[0]).toBe(String(process.pid));
    await expect(readFile(lockPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
