import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AttemptObservation } from './drivequant-client.js';
import type { CycleResult } from './poller.js';
import { KNOWN_STATUSES, KNOWN_TASK_TYPES } from './task-snapshot.js';
import type { TaskStore } from './task-state.js';

/** `drivequant_tasks` labels for a task whose first poll has not succeeded yet. */
export const NOT_POLLED = { taskType: 'unknown', status: 'NOT_POLLED' } as const;

/** `drivequant_tasks` status for a task given up after repeated 404 answers. */
export const NOT_FOUND_STATUS = 'NOT_FOUND';

/** Options of createExporterMetrics. */
export interface ExporterMetricsOptions {
  /** The store that `drivequant_tasks` counts. */
  store: TaskStore;
  /** The exporter's version, for build_info. */
  version: string;
}

/**
 * The exporter-wide metrics, in a dedicated registry (never prom-client's global one, so
 * tests need no resets and nothing registers twice). The per-task series are rendered
 * separately, from the task state, by task-exposition.ts.
 */
export interface ExporterMetrics {
  readonly registry: Registry;
  observeAttempt(observation: AttemptObservation): void;
  observeCycle(result: CycleResult): void;
  observeSkippedCycles(count: number): void;
  setPollInterval(intervalMs: number): void;
  /** Records a config (re)load; `successful` false keeps the last success timestamp. */
  observeConfigLoad(successful: boolean, atMs: number): void;
  /** Counts task registrations refused, from any source, by reason. */
  observeRegistrationsRefused(reason: RegistrationRefusalReason, count: number): void;
}

/** Why a task could not be registered: the task limit, or a state file that cannot be written. */
export type RegistrationRefusalReason = 'max_tasks' | 'storage_error';

const REGISTRATION_REFUSAL_REASONS: readonly RegistrationRefusalReason[] = [
  'max_tasks',
  'storage_error',
];

/** Creates the registry and its metrics. */
export function createExporterMetrics(options: ExporterMetricsOptions): ExporterMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // These three are gauges named like counters, which `promtool check metrics` rejects; the
  // same numbers are in nodejs_active_{handles,requests,resources}, by type.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(name);
  }

  new Gauge({
    name: 'drivequant_exporter_build_info',
    help: 'Always 1; the labels give the exporter version and the Node.js version.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: options.version, node_version: process.version }, 1);

  const shard = options.store.shard ?? { index: 0, total: 1 };
  new Gauge({
    name: 'drivequant_exporter_shard_info',
    help: 'Always 1; the labels say which share of the tasks this replica exports: shard index of total.',
    labelNames: ['index', 'total'],
    registers: [registry],
  }).set({ index: String(shard.index), total: String(shard.total) }, 1);

  const { store } = options;
  new Gauge({
    name: 'drivequant_tasks',
    help: 'Tracked tasks by type and status (NOT_POLLED before the first answer, NOT_FOUND once given up).',
    labelNames: ['task_type', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const taskType of KNOWN_TASK_TYPES) {
        for (const status of KNOWN_STATUSES) {
          this.set({ task_type: taskType, status }, 0);
        }
      }
      for (const record of store.list()) {
        const labels = record.notFound
          ? {
              task_type: record.snapshot?.taskType ?? NOT_POLLED.taskType,
              status: NOT_FOUND_STATUS,
            }
          : record.snapshot === undefined
            ? { task_type: NOT_POLLED.taskType, status: NOT_POLLED.status }
            : { task_type: record.snapshot.taskType, status: record.snapshot.status };
        this.inc(labels);
      }
    },
  });

  const up = new Gauge({
    name: 'drivequant_up',
    help: '1 when the last poll cycle that asked DriveQuant anything was answered and authorised; 0 otherwise, and before anything was asked.',
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'drivequant_api_request_duration_seconds',
    help: 'Duration of HTTP requests to DriveQuant, retries included, by HTTP status (or timeout, network).',
    labelNames: ['code'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const cycleDuration = new Gauge({
    name: 'drivequant_poll_cycle_duration_seconds',
    help: 'Duration of the last completed poll cycle.',
    registers: [registry],
  });
  const cycles = new Counter({
    name: 'drivequant_poll_cycles_total',
    help: 'Poll cycles completed.',
    registers: [registry],
  });
  const skippedCycles = new Counter({
    name: 'drivequant_poll_cycles_skipped_total',
    help: 'Poll cycles skipped because the previous one ran past its interval.',
    registers: [registry],
  });
  const deferredPolls = new Counter({
    name: 'drivequant_poll_deferred_total',
    help: 'Task polls left for the next cycle because the cycle reached its deadline.',
    registers: [registry],
  });
  const lastCycle = new Gauge({
    name: 'drivequant_last_poll_cycle_timestamp_seconds',
    help: 'When the last poll cycle finished, in Unix seconds.',
    registers: [registry],
  });
  const interval = new Gauge({
    name: 'drivequant_poll_interval_seconds',
    help: 'The configured time between poll cycles.',
    registers: [registry],
  });
  const reloadSuccessful = new Gauge({
    name: 'drivequant_exporter_config_last_reload_successful',
    help: '1 when the last configuration (re)load succeeded, else 0.',
    registers: [registry],
  });
  const reloadTimestamp = new Gauge({
    name: 'drivequant_exporter_config_last_reload_success_timestamp_seconds',
    help: 'When the configuration was last loaded successfully, in Unix seconds.',
    registers: [registry],
  });
  const registrationsRefused = new Counter({
    name: 'drivequant_task_registrations_refused_total',
    help: 'Tasks that could not be tracked: max_tasks (limit reached, no finished task to evict) or storage_error (API registration not saved).',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of REGISTRATION_REFUSAL_REASONS) {
    registrationsRefused.inc({ reason }, 0);
  }
  up.set(0);

  return {
    registry,
    observeAttempt({ code, durationSeconds }) {
      requestDuration.observe({ code }, durationSeconds);
    },
    observeCycle(result) {
      if (result.up !== undefined) {
        up.set(result.up ? 1 : 0);
      }
      cycleDuration.set(result.durationMs / 1000);
      cycles.inc();
      deferredPolls.inc(result.deferred);
      lastCycle.set((result.startedMs + result.durationMs) / 1000);
    },
    observeSkippedCycles(count) {
      skippedCycles.inc(count);
    },
    setPollInterval(intervalMs) {
      interval.set(intervalMs / 1000);
    },
    observeRegistrationsRefused(reason, count) {
      registrationsRefused.inc({ reason }, count);
    },
    observeConfigLoad(successful, atMs) {
      reloadSuccessful.set(successful ? 1 : 0);
      if (successful) {
        reloadTimestamp.set(atMs / 1000);
      }
    },
  };
}
