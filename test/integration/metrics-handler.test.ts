import { request } from 'node:http';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { parseScrape, sampleValue } from '../helpers/scrape.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'metrics-handler-test-key';

interface RawAnswer {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET /metrics with exactly the given Accept-Encoding, the body left as it came. */
function getMetrics(url: string, acceptEncoding: string | undefined): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const headers = acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding };
    const req = request(`${url}/metrics`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The per-task lines, which do not move between two scrapes without a poll. */
function taskLines(text: string): string[] {
  return text.split('\n').filter((line) => line.includes('{task_id="'));
}

let simulator: Simulator;
let started: ExporterUnderTest;
let taskIds: string[];

beforeAll(async () => {
  simulator = await startSimulator({ apiKey: API_KEY });
  taskIds = simulator.addTasks(40, { items: 500, pendingMs: 0, itemsPerSecond: 1 });
  started = await startExporterUnderTest({
    simulator: simulator,
    apiKey: API_KEY,
    yaml: ['poll:', '  interval: 1h', 'tasks:', ...taskIds.map((id) => `  - ${id}`)].join('\n'),
  });
  await waitFor(() => started.exporter.poller.ready, { what: 'the first poll cycle' });
});

afterAll(async () => {
  await started?.close();
  await simulator?.close();
});

describe('GET /metrics', () => {
  it('serves the same series with and without gzip', async () => {
    const plain = await getMetrics(started.url, undefined);
    const gzip = await getMetrics(started.url, 'gzip');

    const unzipped = gunzipSync(gzip.body).toString();

    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gzip.headers.vary).toBe('Accept-Encoding');
    expect(gzip.headers['content-type']).toBe(plain.headers['content-type']);
    expect(Number(gzip.headers['content-length'])).toBe(gzip.body.length);
    expect(taskLines(unzipped)).toEqual(taskLines(plain.body.toString()));
    expect(taskLines(unzipped)).toHaveLength(40 * 9);
    expect(unzipped).toContain('\ndrivequant_up 1\n');
  });

  it('sends one gzip member, which curl and other first-member-only clients read whole', async () => {
    const gzip = await getMetrics(started.url, 'gzip');

    const inflated = inflateRawSync(gzip.body.subarray(10, -8)).toString();

    expect(inflated).toContain(`drivequant_task_items{task_id="${taskIds.at(-1)}"`);
    expect(inflated).toContain('drivequant_up 1');
  });

  it('is compressed to a small fraction of the plain body', async () => {
    const plain = await getMetrics(started.url, 'identity');
    const gzip = await getMetrics(started.url, 'gzip, deflate, br');

    expect(gzip.body.length).toBeLessThan(plain.body.length / 5);
  });

  it('answers plain text when gzip is refused with q=0', async () => {
    const answer = await getMetrics(started.url, 'gzip;q=0, identity');

    expect(answer.headers['content-encoding']).toBeUndefined();
    expect(answer.body.toString()).toContain('drivequant_up 1');
  });

  it('shows a poll that landed between two gzip scrapes, the live part included', async () => {
    const before = parseScrape(gunzipSync((await getMetrics(started.url, 'gzip')).body).toString());
    const firstId = taskIds[0] ?? '';
    simulator.removeTask(firstId);

    await started.exporter.poller.runCycle();
    const after = parseScrape(gunzipSync((await getMetrics(started.url, 'gzip')).body).toString());

    const notFound = { task_id: firstId, reason: 'not_found' };
    expect(sampleValue(before, 'drivequant_task_poll_errors_total', notFound)).toBeUndefined();
    expect(sampleValue(after, 'drivequant_task_poll_errors_total', notFound)).toBe(1);
    expect(sampleValue(after, 'drivequant_poll_cycles_total')).toBe(
      (sampleValue(before, 'drivequant_poll_cycles_total') ?? 0) + 1,
    );
  });
});
