import { randomBytes } from 'node:crypto';
import { type LoadedConfig, parseConfig } from './config.js';
import { DEMO_TASK_IDS, seedDemoTasks } from './simulator/demo-tasks.js';
import { type Simulator, startSimulator } from './simulator/simulator.js';

/** What `--demo` runs: the simulator, and a config that polls it. */
export interface Demo {
  simulator: Simulator;
  loaded: LoadedConfig;
}

/**
 * Starts the bundled simulator on a loopback port with the demo tasks, and builds a config
 * polling it every 2 seconds. The key is a throwaway that exists only in this process.
 */
export async function startDemo(): Promise<Demo> {
  const apiKey = randomBytes(16).toString('hex');
  const simulator = await startSimulator({ apiKey, host: '127.0.0.1', port: 0 });
  seedDemoTasks(simulator);

  const yaml = [
    'drivequant:',
    `  base_url: ${simulator.url}`,
    '  api_key: ${DEMO_API_KEY}',
    '  timeout: 2s',
    '  retries: 1',
    'poll:',
    '  interval: 2s',
    '  concurrency: 4',
    'tasks:',
    ...DEMO_TASK_IDS.map((id) => `  - ${id}`),
  ].join('\n');
  const loaded = parseConfig(yaml, {
    source: 'demo',
    baseDir: process.cwd(),
    env: { DEMO_API_KEY: apiKey },
  });

  return { simulator, loaded };
}
