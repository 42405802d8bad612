import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { type RunningExporter, startExporter } from '../../src/main.js';
import type { Fault } from '../../src/simulator/faults.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { renderExporterConfig } from '../helpers/exporter-under-test.js';
import { parseScrape, sampleValue } from '../helpers/scrape.js';
import { createTempDir, type TempDir } from '../helpers/temp-dir.js';

// A few hundred tasks polled five times a second for 45 s, with a tenth of them misbehaving
// and the misbehaving set changing every two seconds. The first third is warm-up: connection
// pools fill and the JIT settles, so the heap climbs for about 20 s before it levels off.
const API_KEY = 'soak-suite-key';
const TASK_COUNT = 300;
const INTERVAL_MS = 200;
const CONCURRENCY = 32;
const SOAK_MS = 45_000;
const SAMPLE_EVERY_MS = 1000;
const SOCKET_SAMPLE_EVERY_MS = 50;
const FAULT_SHUFFLE_MS = 2000;
const FAULTY_SHARE = 0.1;

const SOAK_FAULTS: Fault[] = [
  { kind: 'hang' },
  { kind: 'reset' },
  { kind: 'status', code: 500 },
  { kind: 'status', code: 404 },
  { kind: 'rate-limit', retryAfter: '3600' },
  { kind: 'malformed-json' },
  { kind: 'html' },
  { kind: 'huge', bytes: 128 * 1024 },
  { kind: 'drip', intervalMs: 20 },
  { kind: 'latency', ms: 150 },
  { kind: 'fields', patch: { nbRemainingItems: -1 } },
  { kind: 'fields', patch: { status: 'PAUSED' } },
];

interface Sample {
  atMs: number;
  heapUsedBytes: number;
  scrapeMs: number;
  cycles: number;
}

/** `global.gc` when node runs with --expose-gc, else the same function exposed at runtime. */
function findGarbageCollector(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) {
    return exposed;
  }
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

function countTcpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP')).length;
}

/** Least-squares slope of y over x. */
function slope(points: { x: number; y: number }[]): number {
  const meanX = points.reduce((sum, point) => sum + point.x, 0) / points.length;
  const meanY = points.reduce((sum, point) => sum + point.y, 0) / points.length;
  const numerator = points.reduce((sum, p) => sum + (p.x - meanX) * (p.y - meanY), 0);
  const denominator = points.reduce((sum, p) => sum + (p.x - meanX) ** 2, 0);

  return numerator / denominator;
}

const gc = findGarbageCollector();
const samples: Sample[] = [];
const socketSamples: number[] = [];
let tcpHandlesBefore = 0;
let tcpHandlesAfter = 0;
let logBytes = 0;
let simulator: Simulator;
let dir: TempDir;
let exporter: RunningExporter;

beforeAll(async () => {
  tcpHandlesBefore = countTcpHandles();
  simulator = await startSimulator({ apiKey: API_KEY, control: true });
  const taskIds = simulator.addTasks(TASK_COUNT, { pendingMs: 0, itemsPerSecond: 0.5 });
  dir = await createTempDir();
  const configPath = await dir.write(
    'config.yml',
    renderExporterConfig({
      baseUrl: simulator.url,
      apiKey: API_KEY,
      tasks: taskIds,
      interval: `${INTERVAL_MS}ms`,
      timeout: '100ms',
      retries: 1,
      concurrency: CONCURRENCY,
    }),
  );
  // Warnings only, counted and dropped: a log kept in memory would look like a leak.
  const logger = createLogger({
    level: 'warn',
    format: 'json',
    destination: { write: (line: string) => (logBytes += line.length) },
  });
  exporter = await startExporter({
    flags: {
      configFile: configPath,
      listen: { host: '127.0.0.1', port: 0 },
      logLevel: 'warn',
      logFormat: 'json',
      configCheck: false,
      demo: false,
      enableLifecycle: false,
      webConfigFile: undefined,
      shard: undefined,
    },
    logger,
  });

  const startedMs = Date.now();
  let nextShuffleMs = startedMs;
  let faulty: string[] = [];
  while (Date.now() - startedMs < SOAK_MS) {
    if (Date.now() >= nextShuffleMs) {
      for (const taskId of faulty) {
        simulator.setFault(taskId, undefined);
      }
      faulty = taskIds.filter(() => Math.random() < FAULTY_SHARE);
      for (const [index, taskId] of faulty.entries()) {
        simulator.setFault(taskId, SOAK_FAULTS[index % SOAK_FAULTS.length]);
      }
      nextShuffleMs += FAULT_SHUFFLE_MS;
    }

    const scrapeStarted = performance.now();
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    const scrapeMs = performance.now() - scrapeStarted;
    const cycles = sampleValue(parseScrape(text), 'drivequant_poll_cycles_total') ?? 0;
    gc?.();
    samples.push({
      atMs: Date.now() - startedMs,
      heapUsedBytes: process.memoryUsage().heapUsed,
      scrapeMs,
      cycles,
    });
    for (let waited = 0; waited < SAMPLE_EVERY_MS; waited += SOCKET_SAMPLE_EVERY_MS) {
      socketSamples.push(countTcpHandles());
      await sleep(SOCKET_SAMPLE_EVERY_MS);
    }
  }

  await exporter.close();
  await simulator.close();
  // Closed sockets leave the handle list on a later turn of the event loop.
  for (let attempt = 0; attempt < 50 && countTcpHandles() > tcpHandlesBefore; attempt += 1) {
    await sleep(20);
  }
  tcpHandlesAfter = countTcpHandles();
}, SOAK_MS + 60_000);

afterAll(async () => {
  await dir?.remove();
});

describe(`${TASK_COUNT} tasks every ${INTERVAL_MS} ms for ${SOAK_MS / 1000} s, faults mixed in`, () => {
  const settled = <T>(all: T[]) => all.slice(Math.floor(all.length / 3));

  it('keeps the heap flat', () => {
    const points = settled(samples).map((s) => ({ x: s.atMs / 1000, y: s.heapUsedBytes }));
    const heapGrowthBytesPerSecond = slope(points);
    // With a forced GC before each sample the heap is exact; without, the tolerance is wider.
    const limit = gc === undefined ? 1024 * 1024 : 128 * 1024;

    expect(points.length).toBeGreaterThanOrEqual(20);
    expect(heapGrowthBytesPerSecond).toBeLessThan(limit);
  });

  it('keeps the number of open sockets bounded and flat', () => {
    const counts = settled(socketSamples);
    const half = Math.floor(counts.length / 2);
    const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

    // The exporter's pool and the simulator's side of it, the two listeners and this test.
    expect(Math.max(...counts)).toBeLessThanOrEqual(2 * CONCURRENCY + 8);
    expect(mean(counts.slice(half))).toBeLessThanOrEqual(mean(counts.slice(0, half)) * 1.25 + 4);
  });

  it('releases every socket on close', () => {
    expect(tcpHandlesAfter).toBeLessThanOrEqual(tcpHandlesBefore);
  });

  it('keeps cycling and answering scrapes quickly throughout', () => {
    const last = samples.at(-1);
    const first = samples[0];

    expect((last?.cycles ?? 0) - (first?.cycles ?? 0)).toBeGreaterThan(SOAK_MS / INTERVAL_MS / 4);
    expect(Math.max(...samples.map((s) => s.scrapeMs))).toBeLessThan(1000);
  });

  it('logs a bounded amount: one warning per change of failure, not per poll', () => {
    const pollsOverall = (SOAK_MS / INTERVAL_MS) * TASK_COUNT;

    expect(logBytes).toBeLessThan(pollsOverall * 20);
  });
});
