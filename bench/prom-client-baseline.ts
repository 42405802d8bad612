import { Gauge, Registry } from 'prom-client';
import { KNOWN_STATUSES } from '../src/task-snapshot.js';
import { median } from './stats.js';

/** How long ordinary prom-client gauges take to render the same per-task series. */
export interface BaselineRender {
  /** Median of the timed renders, in milliseconds. */
  medianMs: number;
  /** Size of the rendered text, in bytes. */
  bytes: number;
}

/**
 * Renders the per-task families for `taskIds` with one labelled prom-client Gauge each, the
 * way an exporter would without a cache, and times `registry.metrics()`.
 */
export async function renderWithOrdinaryGauges(
  taskIds: readonly string[],
  repeats: number,
): Promise<BaselineRender> {
  const registry = new Registry();
  const gauge = (name: string, labelNames: string[]) =>
    new Gauge({ name, help: `${name} (baseline)`, labelNames, registers: [registry] });
  const status = gauge('drivequant_task_status', ['task_id', 'task_type', 'status']);
  const items = gauge('drivequant_task_items', ['task_id', 'task_type']);
  const remaining = gauge('drivequant_task_remaining_items', ['task_id', 'task_type']);
  const created = gauge('drivequant_task_created_timestamp_seconds', ['task_id', 'task_type']);
  const lastSuccess = gauge('drivequant_task_last_poll_success_timestamp_seconds', ['task_id']);
  const nowSeconds = Date.now() / 1000;
  for (const [index, taskId] of taskIds.entries()) {
    const labels = { task_id: taskId, task_type: 'PUSH_FAILED_TRIPS' };
    for (const name of KNOWN_STATUSES) {
      status.set({ ...labels, status: name }, name === 'IN_PROGRESS' ? 1 : 0);
    }
    items.set(labels, 500);
    remaining.set(labels, 500 - (index % 500));
    created.set(labels, nowSeconds - 3600);
    lastSuccess.set({ task_id: taskId }, nowSeconds);
  }

  const times: number[] = [];
  let bytes = 0;
  for (let index = 0; index < repeats; index += 1) {
    const started = performance.now();
    const text = await registry.metrics();
    times.push(performance.now() - started);
    bytes = Buffer.byteLength(text);
  }

  return { medianMs: median(times), bytes };
}
