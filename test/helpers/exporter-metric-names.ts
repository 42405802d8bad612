/** Prometheus metric types, as in the `# TYPE` lines of an exposition. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

/**
 * Every metric family of drivequant-task-exporter that dashboards and rules may
 * use, with its type and label names (job and instance come from the scrape).
 * The end-to-end suite checks this list against the demo's /metrics, so a
 * rename in the exporter fails a test instead of leaving an empty panel.
 */
export const EXPORTER_METRICS: Readonly<
  Record<string, { type: MetricType; labels: readonly string[] }>
> = {
  drivequant_task_status: { type: 'gauge', labels: ['task_id', 'task_type', 'status'] },
  drivequant_task_items: { type: 'gauge', labels: ['task_id', 'task_type'] },
  drivequant_task_remaining_items: { type: 'gauge', labels: ['task_id', 'task_type'] },
  drivequant_task_created_timestamp_seconds: { type: 'gauge', labels: ['task_id', 'task_type'] },
  drivequant_task_completed_timestamp_seconds: { type: 'gauge', labels: ['task_id', 'task_type'] },
  drivequant_task_completion_latency_seconds: { type: 'gauge', labels: ['task_id', 'task_type'] },
  drivequant_task_last_poll_success_timestamp_seconds: { type: 'gauge', labels: ['task_id'] },
  drivequant_task_poll_errors_total: { type: 'counter', labels: ['task_id', 'reason'] },
  drivequant_task_not_found: { type: 'gauge', labels: ['task_id'] },
  drivequant_task_registrations_refused_total: { type: 'counter', labels: ['reason'] },
  drivequant_tasks: { type: 'gauge', labels: ['task_type', 'status'] },
  drivequant_up: { type: 'gauge', labels: [] },
  drivequant_api_request_duration_seconds: { type: 'histogram', labels: ['code'] },
  drivequant_poll_cycle_duration_seconds: { type: 'gauge', labels: [] },
  drivequant_poll_cycles_total: { type: 'counter', labels: [] },
  drivequant_poll_cycles_skipped_total: { type: 'counter', labels: [] },
  drivequant_poll_deferred_total: { type: 'counter', labels: [] },
  drivequant_poll_interval_seconds: { type: 'gauge', labels: [] },
  drivequant_last_poll_cycle_timestamp_seconds: { type: 'gauge', labels: [] },
  drivequant_exporter_build_info: { type: 'gauge', labels: ['version', 'node_version'] },
  drivequant_exporter_shard_info: { type: 'gauge', labels: ['index', 'total'] },
  drivequant_exporter_config_last_reload_successful: { type: 'gauge', labels: [] },
  drivequant_exporter_config_last_reload_success_timestamp_seconds: {
    type: 'gauge',
    labels: [],
  },
};

/** Series Prometheus adds to every scrape target. */
const SCRAPE_SERIES: ReadonlySet<string> = new Set([
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
]);

const HISTOGRAM_SUFFIXES = ['_bucket', '_count', '_sum'] as const;

/** The family and type a series name belongs to, or undefined for an unknown name. */
export function findExporterMetric(
  seriesName: string,
): { family: string; type: MetricType; isCounterLike: boolean } | undefined {
  const direct = EXPORTER_METRICS[seriesName];
  if (direct && direct.type !== 'histogram') {
    return { family: seriesName, type: direct.type, isCounterLike: direct.type === 'counter' };
  }

  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!seriesName.endsWith(suffix)) {
      continue;
    }
    const family = seriesName.slice(0, -suffix.length);
    if (EXPORTER_METRICS[family]?.type === 'histogram') {
      return { family, type: 'histogram', isCounterLike: true };
    }
  }

  return undefined;
}

/**
 * Whether a series only ever grows (a counter, or a histogram's bucket, count
 * or sum), so that rate() and increase() apply to it and deriv() does not.
 */
export function isCounterSeries(seriesName: string): boolean {
  const metric = findExporterMetric(seriesName);
  if (metric) {
    return metric.isCounterLike;
  }

  return /_(total|count|bucket|sum)$/.test(seriesName);
}

/** Whether a series name is one the exporter or Prometheus' scrape produces. */
export function isKnownSeriesName(seriesName: string): boolean {
  if (findExporterMetric(seriesName) || SCRAPE_SERIES.has(seriesName)) {
    return true;
  }

  // prom-client's default metrics: their exact set depends on the Node version.
  return seriesName.startsWith('process_') || seriesName.startsWith('nodejs_');
}
