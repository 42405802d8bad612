import { join } from 'node:path';
import { stringify } from 'yaml';
import { findExecutable } from '../helpers/external-tools.js';
import { REPO_ROOT } from '../helpers/repo-files.js';
import { createTempDir } from '../helpers/temp-dir.js';
import { findFreePort, startManagedProcess, waitUntilServing } from './child-process.js';

/** The job name prometheus/alerts.yml selects in its exporter alerts. */
export const EXPORTER_JOB = 'drivequant-task-exporter';

/** The rule files Prometheus loads unless told otherwise: the shipped ones. */
export const SHIPPED_RULE_FILES = [
  join(REPO_ROOT, 'prometheus/rules.yml'),
  join(REPO_ROOT, 'prometheus/alerts.yml'),
];

/** How to start Prometheus. */
export interface PrometheusOptions {
  /** `host:port` of each exporter to scrape, under job `drivequant-task-exporter`. */
  targets: string[];
  /** Scrape interval, in seconds; 1 by default, so that tests see data quickly. */
  scrapeIntervalSeconds?: number;
  /** Rule evaluation interval, in seconds; 1 by default. */
  evaluationIntervalSeconds?: number;
  /** Absolute paths of rule files; the shipped rules.yml and alerts.yml by default. */
  ruleFiles?: string[];
  /** How long to wait for /-/ready, in milliseconds; 30 s by default. */
  startTimeoutMs?: number;
}

/** One element of an instant vector. */
export interface PromSample {
  metric: Record<string, string>;
  /** [Unix seconds, value as Prometheus prints it]. */
  value: [number, string];
}

/** One element of a range query's matrix. */
export interface PromSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

/** The `data` of a query answer. */
export type PromQueryData =
  | { resultType: 'vector'; result: PromSample[] }
  | { resultType: 'matrix'; result: PromSeries[] }
  | { resultType: 'scalar' | 'string'; result: [number, string] };

/** One alert of /api/v1/alerts. */
export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

/** One rule of /api/v1/rules. */
export interface PromRule {
  name: string;
  query: string;
  type: 'alerting' | 'recording';
  health: 'ok' | 'err' | 'unknown';
  lastError?: string;
  state?: 'inactive' | 'pending' | 'firing';
}

/** One rule group of /api/v1/rules. */
export interface PromRuleGroup {
  name: string;
  file: string;
  rules: PromRule[];
}

/** One active target of /api/v1/targets. */
export interface PromTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

/** A Prometheus server started for a test, on a loopback port, with its own storage. */
export interface PrometheusHarness {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** The generated configuration file. */
  readonly configPath: string;
  /** Instant query at `timeSeconds` (now by default); a PromQL error rejects with Prometheus' message. */
  query(expr: string, timeSeconds?: number): Promise<PromQueryData>;
  /** Range query; a PromQL error rejects with Prometheus' message. */
  queryRange(
    expr: string,
    startSeconds: number,
    endSeconds: number,
    stepSeconds: number,
  ): Promise<PromQueryData>;
  /** Alerts currently pending or firing. */
  alerts(): Promise<PromAlert[]>;
  /** Rule groups with each rule's health and last error. */
  rules(): Promise<PromRuleGroup[]>;
  /** Active scrape targets with their health. */
  targets(): Promise<PromTarget[]>;
  /** Prometheus' own log so far, to print when a test fails. */
  logs(): string;
  /** Stops Prometheus (SIGTERM, then SIGKILL) and deletes its storage. Safe to call twice. */
  stop(): Promise<void>;
}

/** The Prometheus binary: env PROMETHEUS_BIN, else `prometheus` on PATH. */
export function findPrometheus(): string | undefined {
  return process.env.PROMETHEUS_BIN ?? findExecutable('prometheus');
}

/** The configuration the harness writes: one scrape job, the rule files, no Alertmanager. */
export function createPrometheusConfig(options: PrometheusOptions): string {
  const scrapeIntervalSeconds = options.scrapeIntervalSeconds ?? 1;
  const config = {
    global: {
      scrape_interval: `${scrapeIntervalSeconds}s`,
      scrape_timeout: `${scrapeIntervalSeconds}s`,
      evaluation_interval: `${options.evaluationIntervalSeconds ?? 1}s`,
    },
    rule_files: options.ruleFiles ?? SHIPPED_RULE_FILES,
    scrape_configs: [{ job_name: EXPORTER_JOB, static_configs: [{ targets: options.targets }] }],
  };

  return stringify(config);
}

/** Reads a Prometheus API answer, turning an error status into a rejection with its message. */
async function readApi<T>(response: Response): Promise<T> {
  const body = (await response.json()) as {
    status: string;
    data: T;
    errorType?: string;
    error?: string;
  };
  if (body.status !== 'success') {
    throw new Error(`Prometheus ${response.status} ${body.errorType ?? ''}: ${body.error ?? ''}`);
  }

  return body.data;
}

/**
 * Starts Prometheus on a free loopback port with a generated configuration and
 * a temporary storage folder, and waits until it is ready. Call `stop()` in
 * afterAll; a process exit kills it too, as a last resort.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusHarness> {
  const binary = findPrometheus();
  if (!binary) {
    throw new Error(
      "prometheus is not installed: install Debian's prometheus package or set PROMETHEUS_BIN",
    );
  }

  const folder = await createTempDir();
  const configPath = await folder.write('prometheus.yml', createPrometheusConfig(options));
  const port = await findFreePort();
  const url = `http://127.0.0.1:${port}`;

  const managed = startManagedProcess(binary, [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${join(folder.path, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  const stop = async () => {
    await managed.stop();
    await folder.remove();
  };
  try {
    await waitUntilServing(managed, `${url}/-/ready`, options.startTimeoutMs ?? 30_000);
  } catch (error) {
    await folder.remove();
    throw error;
  }

  const get = async <T>(path: string, params: Record<string, string> = {}): Promise<T> =>
    readApi<T>(await fetch(`${url}${path}?${new URLSearchParams(params)}`));

  return {
    url,
    configPath,
    query: (expr, timeSeconds) =>
      get<PromQueryData>('/api/v1/query', {
        query: expr,
        ...(timeSeconds === undefined ? {} : { time: String(timeSeconds) }),
      }),
    queryRange: (expr, startSeconds, endSeconds, stepSeconds) =>
      get<PromQueryData>('/api/v1/query_range', {
        query: expr,
        start: String(startSeconds),
        end: String(endSeconds),
        step: String(stepSeconds),
      }),
    alerts: async () => (await get<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts,
    rules: async () => (await get<{ groups: PromRuleGroup[] }>('/api/v1/rules')).groups,
    targets: async () =>
      (await get<{ activeTargets: PromTarget[] }>('/api/v1/targets', { state: 'active' }))
        .activeTargets,
    logs: managed.logs,
    stop,
  };
}
