import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_TASK_IDS, DEMO_TASKS } from '../../src/simulator/demo-tasks.js';
import { EXPORTER_METRICS } from '../helpers/exporter-metric-names.js';
import { checkTools } from '../helpers/external-tools.js';
import {
  expandVariables,
  listQueries,
  loadDashboard,
  variableQuery,
} from '../helpers/grafana-dashboard.js';
import { readRepoYaml } from '../helpers/repo-files.js';
import { scrapeMetrics } from '../helpers/scrape.js';
import { waitFor } from '../helpers/wait-for.js';
import { type ExporterProcess, startExporterProcess } from './exporter-process.js';
import {
  EXPORTER_JOB,
  type PromAlert,
  type PrometheusHarness,
  type PromQueryData,
  startPrometheus,
} from './prometheus-harness.js';

// Queries that may be empty against the demo, because they need an event the
// demo's first minute does not produce. Every other query must return data.
const MAY_BE_EMPTY: ReadonlySet<string> = new Set([
  // No poll fails in the demo.
  'Poll errors by reason A',
]);

const tools = checkTools(['prometheus']);

function seriesCount(data: PromQueryData): number {
  return data.resultType === 'vector' || data.resultType === 'matrix' ? data.result.length : 1;
}

function firing(alerts: PromAlert[], alertname: string, taskId?: string): PromAlert | undefined {
  return alerts.find(
    (alert) =>
      alert.state === 'firing' &&
      alert.labels.alertname === alertname &&
      (taskId === undefined || alert.labels.task_id === taskId),
  );
}

describe.skipIf(tools.skip)('the dashboard and the rules, on Prometheus scraping the demo', () => {
  let exporter: ExporterProcess | undefined;
  let prometheus: PrometheusHarness | undefined;

  /** The running Prometheus; beforeAll has failed when there is none. */
  function prom(): PrometheusHarness {
    if (!prometheus) {
      throw new Error('Prometheus did not start');
    }

    return prometheus;
  }

  beforeAll(async () => {
    exporter = await startExporterProcess({ args: ['--demo'] });
    prometheus = await startPrometheus({ targets: [exporter.address] });
    const started = prometheus;
    // rate() over the 15 s the queries use below needs a few scrapes.
    await waitFor(
      async () =>
        seriesCount(await started.query(`count_over_time(up{job="${EXPORTER_JOB}"}[1m]) >= 8`)) > 0,
      { what: 'eight scrapes of the exporter', timeoutMs: 60_000, intervalMs: 500 },
    );
  });

  afterAll(async () => {
    await prometheus?.stop();
    await exporter?.stop();
  });

  it('the demo exposes every metric the dashboard and the rules use, with its type', async () => {
    const scrape = await scrapeMetrics(exporter?.url ?? '');

    const types = Object.fromEntries(
      Object.keys(EXPORTER_METRICS).map((family) => [family, scrape.types.get(family)]),
    );

    expect(types).toEqual(
      Object.fromEntries(
        Object.entries(EXPORTER_METRICS).map(([family, metric]) => [family, metric.type]),
      ),
    );
  });

  it('Prometheus scrapes the exporter', async () => {
    const targets = await prom().targets();

    expect(targets.map((target) => [target.labels.job, target.health])).toEqual([
      [EXPORTER_JOB, 'up'],
    ]);
  });

  it('loads every rule of rules.yml and alerts.yml and evaluates each without error', async () => {
    const shipped = ['prometheus/rules.yml', 'prometheus/alerts.yml'].flatMap(
      (path) => readRepoYaml<{ groups: { name: string; rules: unknown[] }[] }>(path).groups,
    );

    const groups = await waitFor(
      async () => {
        const loaded = await prom().rules();
        const rules = loaded.flatMap((group) => group.rules);
        return rules.every((rule) => rule.health === 'ok') ? loaded : undefined;
      },
      { what: 'every rule to be evaluated', timeoutMs: 20_000, intervalMs: 500 },
    );

    const summary = (list: { name: string; rules: unknown[] }[]) =>
      list.map((group) => `${group.name}: ${group.rules.length} rules`).sort();
    expect(summary(groups)).toEqual(summary(shipped));
  });

  describe('every dashboard query', () => {
    const queries = listQueries(loadDashboard());
    const values = (): Record<string, string> => ({
      job: EXPORTER_JOB,
      instance: (exporter?.address ?? '').replace(/\./g, '\\\\.'),
      task_type: '.*',
      task_id: '.*',
      __rate_interval: '15s',
      __range: '5m',
    });

    async function run(query: (typeof queries)[number]): Promise<PromQueryData> {
      const expr = expandVariables(query.expr, values());
      const nowSeconds = Date.now() / 1000;

      return query.instant
        ? prom().query(expr, nowSeconds)
        : prom().queryRange(expr, nowSeconds - 60, nowSeconds, 5);
    }

    it('is valid PromQL that Prometheus runs without error', async () => {
      const errors: string[] = [];
      for (const query of queries) {
        await run(query).catch((error: Error) => {
          errors.push(`${query.panelTitle} ${query.refId}: ${error.message}`);
        });
      }

      expect(queries.length).toBeGreaterThan(20);
      expect(errors).toEqual([]);
    });

    it('returns data, except the few that wait for an event the demo does not produce', async () => {
      const empty: string[] = [];
      for (const query of queries) {
        if (seriesCount(await run(query)) === 0) {
          empty.push(`${query.panelTitle} ${query.refId}`);
        }
      }

      expect(empty.filter((name) => !MAY_BE_EMPTY.has(name))).toEqual([]);
    });

    it('has variables that each offer values', async () => {
      const variables = loadDashboard().templating.list.filter(
        (variable) => variable.type === 'query',
      );
      const counts: Record<string, number> = {};
      for (const variable of variables) {
        const match = /^label_values\((.+), (\w+)\)$/.exec(variableQuery(variable));
        const [, selector = '', label = ''] = match ?? [];
        const expr = expandVariables(`group by (${label}) (${selector})`, values());
        counts[variable.name] = seriesCount(await prom().query(expr));
      }

      expect(counts).toEqual({
        job: 1,
        instance: 1,
        task_type: 2,
        task_id: DEMO_TASK_IDS.length,
      });
    });
  });

  it('records every series of rules.yml', async () => {
    const names = [
      ...new Set(
        readRepoYaml<{ groups: { rules: { record: string }[] }[] }>(
          'prometheus/rules.yml',
        ).groups.flatMap((group) => group.rules.map((rule) => rule.record)),
      ),
    ];

    const empty = await waitFor(
      async () => {
        const missing: string[] = [];
        for (const name of names) {
          if (seriesCount(await prom().query(name)) === 0) missing.push(name);
        }
        return missing.length === 0 ? missing : undefined;
      },
      { what: `data for ${names.join(', ')}`, timeoutMs: 20_000, intervalMs: 500 },
    );

    expect(empty).toEqual([]);
  });

  it('fires the task alerts for the demo tasks that failed, were canceled, or run too long', async () => {
    const alerts = await waitFor(
      async () => {
        const current = await prom().alerts();
        return firing(current, 'DriveQuantTaskFailed') &&
          firing(current, 'DriveQuantTaskCanceled') &&
          firing(current, 'DriveQuantTaskTooSlow')
          ? current
          : undefined;
      },
      { what: 'the task alerts to fire', timeoutMs: 30_000, intervalMs: 500 },
    );

    const failed = firing(alerts, 'DriveQuantTaskFailed', DEMO_TASKS.alreadyFailed);
    expect(failed?.labels).toMatchObject({
      job: EXPORTER_JOB,
      severity: 'warning',
      task_type: 'PUSH_FAILED_CRASHES',
    });
    expect(failed?.annotations.summary).toBe(
      `DriveQuant task ${DEMO_TASKS.alreadyFailed} (PUSH_FAILED_CRASHES) failed`,
    );
    expect(firing(alerts, 'DriveQuantTaskCanceled', DEMO_TASKS.alreadyCanceled)).toBeDefined();
    expect(firing(alerts, 'DriveQuantTaskTooSlow', DEMO_TASKS.documentedExample)).toBeDefined();
  });

  it('raises no exporter alert while the exporter and the API are fine', async () => {
    const alerts = await prom().alerts();

    const exporterAlerts = alerts
      .filter((alert) => alert.labels.task_id === undefined)
      .map((alert) => `${alert.labels.alertname} ${alert.state}`);

    expect(exporterAlerts).toEqual([]);
  });
});
