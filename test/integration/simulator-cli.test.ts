import { describe, expect, it } from 'vitest';
import { DEMO_TASK_IDS, DEMO_TASKS } from '../../src/simulator/demo-tasks.js';
import { runSimulatorCli } from '../../src/simulator/simulator-cli.js';

async function waitFor<T>(read: () => T | undefined): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const value = read();
    if (value !== undefined) {
      return value;
    }

    await new Promise((resolve) => setTimeout(resolve, 10));
  }

  throw new Error('timed out waiting');
}

describe('runSimulatorCli', () => {
  it('serves the demo tasks, prints their ids one per line, and stops when told', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const stop = new AbortController();
    const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line) };

    const running = runSimulatorCli(
      ['--listen-address=127.0.0.1:0', '--api-key=cli-key', '--tasks=3'],
      { ...io, stop: stop.signal },
    );
    const url = await waitFor(() => err.join('\n').match(/listening on (http:\S+)/)?.[1]);
    const response = await fetch(`${url}/v1/enterprise/task/${DEMO_TASKS.documentedExample}`, {
      headers: { 'x-dq-enterprise-api-key': 'cli-key' },
    });
    stop.abort();
    const exitCode = await running;

    const ids = out.join('\n').split('\n');
    expect(response.status).toBe(200);
    expect(ids).toHaveLength(DEMO_TASK_IDS.length + 3);
    expect(ids.slice(0, DEMO_TASK_IDS.length)).toEqual(DEMO_TASK_IDS);
    expect(err.join('\n')).not.toContain('cli-key');
    expect(err.at(-1)).toBe('DriveQuant simulator stopped');
    expect(exitCode).toBe(0);
  });

  it.each([
    [['--tasks=many'], '--tasks: "many" is not a whole number of 0 or more'],
    [['--tasks=-1'], '--tasks: "-1" is not a whole number of 0 or more'],
    [['--bogus'], "Unknown option '--bogus'"],
  ])('reports %j with exit code 2 instead of starting', async (argv, message) => {
    const err: string[] = [];

    const exitCode = await runSimulatorCli(argv, { out: () => {}, err: (line) => err.push(line) });

    expect(exitCode).toBe(2);
    expect(err[0]).toContain(message);
  });
});
