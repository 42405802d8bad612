import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_TASK_IDS, DEMO_TASKS, seedDemoTasks } from '../../src/simulator/demo-tasks.js';
import { type Simulator, startSimulator } from '../../src/simulator/simulator.js';

const API_KEY = 'demo-test-key';
const startMs = Date.UTC(2025, 5, 1, 8, 0, 0, 0);

interface TaskBody {
  taskId: string;
  createdAt: string;
  completedAt?: string;
  type: string;
  status: string;
  nbItems: number;
  nbRemainingItems: number;
}

let sim: Simulator;
let nowMs: number;

beforeEach(async () => {
  nowMs = startMs;
  sim = await startSimulator({ apiKey: API_KEY, now: () => nowMs });
  seedDemoTasks(sim);
});

afterEach(async () => {
  await sim.close();
});

async function getTask(taskId: string): Promise<TaskBody> {
  const response = await fetch(`${sim.url}/v1/enterprise/task/${taskId}`, {
    headers: { 'x-dq-enterprise-api-key': API_KEY },
  });

  return (await response.json()) as TaskBody;
}

async function statusesAt(offsetMs: number): Promise<Map<string, string>> {
  nowMs = startMs + offsetMs;
  const bodies = await Promise.all(DEMO_TASK_IDS.map(getTask));

  return new Map(bodies.map((body) => [body.taskId, body.status]));
}

describe('seedDemoTasks', () => {
  it('seeds about a dozen tasks with fixed 24-hex-character ids', () => {
    expect(sim.taskIds()).toEqual(DEMO_TASK_IDS);
    expect(DEMO_TASK_IDS.length).toBeGreaterThanOrEqual(10);
    for (const taskId of DEMO_TASK_IDS) {
      expect(taskId).toMatch(/^[0-9a-f]{24}$/);
    }
  });

  it('serves the documented example exactly', async () => {
    const body = await getTask(DEMO_TASKS.documentedExample);

    expect(body).toEqual({
      taskId: '6753030831fe9826412bac5c',
      createdAt: '2024-12-09T14:14:17.574+0000',
      type: 'PUSH_FAILED_TRIPS',
      status: 'IN_PROGRESS',
      nbItems: 321,
      nbRemainingItems: 12,
    });
  });

  it('has a frozen COMPLETED task with a completion latency of 754.321 s', async () => {
    const body = await getTask(DEMO_TASKS.completedLongAgo);

    const latencyMs = Date.parse(body.completedAt ?? '') - Date.parse(body.createdAt);

    expect(body.status).toBe('COMPLETED');
    expect(latencyMs).toBe(754_321);
  });

  it('shows every status and both types within five seconds', async () => {
    const statuses = new Set((await statusesAt(5000)).values());
    const types = new Set((await Promise.all(DEMO_TASK_IDS.map(getTask))).map((t) => t.type));

    expect([...statuses].sort()).toEqual([
      'CANCELED',
      'COMPLETED',
      'FAILED',
      'IN_PROGRESS',
      'PENDING',
    ]);
    expect([...types].sort()).toEqual(['PUSH_FAILED_CRASHES', 'PUSH_FAILED_TRIPS']);
  });

  it('starts the PENDING tasks within 20 to 40 seconds', async () => {
    const early = await statusesAt(5000);
    const late = await statusesAt(41_000);

    expect(early.get(DEMO_TASKS.pendingShort)).toBe('PENDING');
    expect(early.get(DEMO_TASKS.pendingLong)).toBe('PENDING');
    expect(late.get(DEMO_TASKS.pendingShort)).toBe('IN_PROGRESS');
    expect(late.get(DEMO_TASKS.pendingLong)).toBe('IN_PROGRESS');
  });

  it('moves each running task by at least one item per second', async () => {
    nowMs = startMs + 10_000;
    const before = await getTask(DEMO_TASKS.progressTwoMinutes);
    nowMs = startMs + 11_000;
    const after = await getTask(DEMO_TASKS.progressTwoMinutes);

    expect(before.status).toBe('IN_PROGRESS');
    expect(after.nbRemainingItems).toBeLessThan(before.nbRemainingItems);
  });

  it('ends the moving tasks as designed within five minutes', async () => {
    const ended = await statusesAt(6 * 60_000);

    expect(ended.get(DEMO_TASKS.progressThenFailed)).toBe('FAILED');
    expect(ended.get(DEMO_TASKS.progressThenCanceled)).toBe('CANCELED');
    expect(ended.get(DEMO_TASKS.progressFiveMinutes)).toBe('COMPLETED');
    expect(ended.get(DEMO_TASKS.documentedExample)).toBe('IN_PROGRESS');
  });
});
