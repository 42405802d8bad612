import { Agent } from 'node:http';
import got from 'got';
import pLimit from 'p-limit';

/** What the plain loop asks for. */
export interface PlainLoopOptions {
  /** The simulator's base URL. */
  baseUrl: string;
  /** The key the simulator accepts. */
  apiKey: string;
  /** Tasks to read, once each. */
  taskIds: string[];
  /** Requests in flight at most. */
  concurrency: number;
}

/**
 * The floor for this stack: the same requests the poller makes, with got and p-limit and
 * nothing else (no validation, no state, no metrics). Resolves with the tasks answered.
 */
export async function runPlainLoop(options: PlainLoopOptions): Promise<number> {
  const http = got.extend({
    prefixUrl: options.baseUrl,
    headers: { 'x-dq-enterprise-api-key': options.apiKey, accept: 'application/json' },
    timeout: { request: 10_000 },
    retry: { limit: 0 },
    responseType: 'text',
    agent: { http: new Agent({ keepAlive: true, maxSockets: options.concurrency }) },
  });
  const limit = pLimit(options.concurrency);
  let answered = 0;
  await Promise.all(
    options.taskIds.map((taskId) =>
      limit(async () => {
        const body = await http(`v1/enterprise/task/${taskId}`).text();
        if ((JSON.parse(body) as { taskId?: string }).taskId === taskId) {
          answered += 1;
        }
      }),
    ),
  );

  return answered;
}
