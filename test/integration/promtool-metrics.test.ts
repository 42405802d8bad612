import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_TASK_IDS, seedDemoTasks } from '../../src/simulator/demo-tasks.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';
import { type ExporterUnderTest, startExporterUnderTest } from '../helpers/exporter-under-test.js';
import { findSamples, parseScrape } from '../helpers/scrape.js';
import { waitFor } from '../helpers/wait-for.js';

const API_KEY = 'promtool-test-key';
const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
// On CI a missing promtool is a broken setup, not a reason to skip.
const runLint = hasPromtool || Boolean(process.env.CI);

/** Pipes text into `promtool check metrics`; resolves with its exit code and output. */
function checkMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

describe.runIf(runLint)('promtool check metrics', () => {
  let sim: Simulator;
  let running: ExporterUnderTest | undefined;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: API_KEY });
    seedDemoTasks(sim);
    sim.addTask({ taskId: 'task-on-hold', frozen: { status: 'on hold', remainingItems: 3 } });
    sim.addTask({ taskId: 'task-failing', items: 10 });
    sim.setFault('task-failing', { kind: 'status', code: 500 });
    const tasks = [...DEMO_TASK_IDS, 'task-on-hold', 'task-failing', 'task-unknown'];
    running = await startExporterUnderTest({
      simulator: sim,
      apiKey: API_KEY,
      yaml: ['poll:', '  interval: 1s', 'tasks:', ...tasks.map((id) => `  - ${id}`)].join('\n'),
    });
  });

  afterAll(async () => {
    await running?.close();
    await sim?.close();
  });

  it('finds nothing to complain about in a real scrape', async () => {
    const url = running?.url ?? '';
    const text = await waitFor(
      async () => {
        const body = await (await fetch(`${url}/metrics`)).text();
        const scrape = parseScrape(body);
        const ready =
          findSamples(scrape, 'drivequant_task_completion_latency_seconds').length > 0 &&
          findSamples(scrape, 'drivequant_task_status', { status: 'ON_HOLD' }).length > 0 &&
          findSamples(scrape, 'drivequant_task_poll_errors_total').length >= 2;
        return ready && body;
      },
      { what: 'a scrape with every kind of series' },
    );

    const result = await checkMetrics(text);

    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('is a real check: it complains about a broken exposition', async () => {
    const broken = '# TYPE drivequant_bad_total gauge\ndrivequant_bad_total 1\n';

    const result = await checkMetrics(broken);

    expect(result.output).not.toBe('');
  });
});
