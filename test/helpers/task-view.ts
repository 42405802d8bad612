import { findSamples, type Scrape, sampleValue } from './scrape.js';

/** Everything one scrape says about one task. */
export interface TaskView {
  /** Labels of the `drivequant_task_status` sample whose value is 1. */
  current: Record<string, string> | undefined;
  items: number | undefined;
  remainingItems: number | undefined;
  createdSeconds: number | undefined;
  /** `drivequant_task_last_poll_success_timestamp_seconds`. */
  lastSuccessSeconds: number | undefined;
  /** `drivequant_task_poll_errors_total` by reason. */
  errors: Record<string, number>;
  /** Number of samples of any family that carry this task_id. */
  seriesCount: number;
}

/** Reads one task's series out of a scrape. */
export function viewTask(scrape: Scrape, taskId: string): TaskView {
  const labels = { task_id: taskId };
  const errors: Record<string, number> = {};
  for (const sample of findSamples(scrape, 'drivequant_task_poll_errors_total', labels)) {
    errors[sample.labels.reason ?? ''] = sample.value;
  }
  const current = findSamples(scrape, 'drivequant_task_status', labels).find(
    (sample) => sample.value === 1,
  );

  return {
    current: current?.labels,
    items: sampleValue(scrape, 'drivequant_task_items', labels),
    remainingItems: sampleValue(scrape, 'drivequant_task_remaining_items', labels),
    createdSeconds: sampleValue(scrape, 'drivequant_task_created_timestamp_seconds', labels),
    lastSuccessSeconds: sampleValue(
      scrape,
      'drivequant_task_last_poll_success_timestamp_seconds',
      labels,
    ),
    errors,
    seriesCount: scrape.samples.filter((sample) => sample.labels.task_id === taskId).length,
  };
}

/** Sum of a task's poll errors over every reason. */
export function totalErrors(view: TaskView): number {
  return Object.values(view.errors).reduce((sum, count) => sum + count, 0);
}
