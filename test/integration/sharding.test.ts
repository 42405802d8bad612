import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../../src/shard.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { findSamples, scrapeMetrics } from '../helpers/scrape.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'sharding-test-key';
const TOKEN = 'sharding-test-token-0123456789';
const TOTAL = 3;

let simulator: Simulator;
let replicas: ExporterUnderTest[];
let taskIds: string[];

/** The task ids a replica exports series for. */
async function exportedTaskIds(replica: ExporterUnderTest): Promise<string[]> {
  const scrape = await scrapeMetrics(replica.url);

  return findSamples(scrape, 'drivequant_task_items').map((sample) => sample.labels.task_id ?? '');
}

beforeAll(async () => {
  simulator = await startSimulator({ apiKey: API_KEY });
  taskIds = simulator.addTasks(30, { items: 500, pendingMs: 0, itemsPerSecond: 1 });
  // Every replica gets the same configuration; only the shard flags differ.
  const yaml = [
    'poll:',
    '  interval: 1h',
    'api:',
    `  token: ${TOKEN}`,
    'tasks:',
    ...taskIds.map((id) => `  - ${id}`),
  ].join('\n');
  replicas = await Promise.all(
    Array.from({ length: TOTAL }, (_, index) =>
      startExporterUnderTest({
        simulator: simulator,
        apiKey: API_KEY,
        yaml,
        args: [`--shard.index=${index}`, `--shard.total=${TOTAL}`],
      }),
    ),
  );
  await waitFor(() => replicas.every((replica) => replica.exporter.poller.ready), {
    what: 'the first poll cycle of every replica',
  });
});

afterAll(async () => {
  await Promise.all((replicas ?? []).map((replica) => replica.close()));
  await simulator?.close();
});

describe('replicas started with --shard.index and --shard.total', () => {
  it('export disjoint shares of the configured tasks that together cover all of them', async () => {
    const shares = await Promise.all(replicas.map(exportedTaskIds));

    expect(shares.flat().sort()).toEqual([...taskIds].sort());
    for (const [index, share] of shares.entries()) {
      expect(share.length).toBeGreaterThan(0);
      expect(share.every((id) => shardOf(id, TOTAL) === index)).toBe(true);
    }
  });

  it('poll only their own share of the tasks', () => {
    const polled = taskIds.filter((id) => simulator.requestCount(id) > 0);

    expect(polled.sort()).toEqual([...taskIds].sort());
    expect(taskIds.every((id) => simulator.requestCount(id) === 1)).toBe(true);
  });

  it('say which shard they are in drivequant_exporter_shard_info', async () => {
    const infos = await Promise.all(
      replicas.map(async (replica) =>
        findSamples(await scrapeMetrics(replica.url), 'drivequant_exporter_shard_info'),
      ),
    );

    expect(infos.map((samples) => samples.map((sample) => sample.labels))).toEqual([
      [{ index: '0', total: '3' }],
      [{ index: '1', total: '3' }],
      [{ index: '2', total: '3' }],
    ]);
  });

  it('answer 421 naming the owning shard when another shard’s task is registered', async () => {
    const taskId = simulator.addTask();
    const owner = shardOf(taskId, TOTAL);
    const other = replicas[(owner + 1) % TOTAL];

    const response = await fetch(`${other?.url}/api/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ taskId }),
    });
    const answer = (await response.json()) as { error: string; shard: number };

    expect(response.status).toBe(421);
    expect(answer.shard).toBe(owner);
    expect(answer.error).toContain(`belongs to shard ${owner} of 3`);
    expect(other?.exporter.store.get(taskId)).toBeUndefined();
  });

  it('accept the registration on the owning replica', async () => {
    const taskId = simulator.addTask();
    const owner = replicas[shardOf(taskId, TOTAL)];

    const response = await fetch(`${owner?.url}/api/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ taskId }),
    });

    expect(response.status).toBe(201);
    expect(owner?.exporter.store.get(taskId)?.sources.has('api')).toBe(true);
  });
});
