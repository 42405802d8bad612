import { describe, expect, it } from 'vitest';
import {
  EXPORTER_METRICS,
  findExporterMetric,
  isCounterSeries,
  isKnownSeriesName,
} from '../helpers/exporter-metric-names.js';
import {
  DASHBOARD_PATH,
  type DatasourceRef,
  listPanels,
  listQueries,
  loadDashboard,
  variableQuery,
} from '../helpers/grafana-dashboard.js';
import { findCalls, findSelectors, findSeriesNames } from '../helpers/promql.js';
import { readRepoText } from '../helpers/repo-files.js';

const dashboard = loadDashboard();
const panels = listPanels(dashboard);
const queries = listQueries(dashboard);
const DATASOURCE_VARIABLE = '${datasource}';

/** Every `datasource` object anywhere in the JSON, with its path. */
function collectDatasources(node: unknown, path: string): { path: string; ref: DatasourceRef }[] {
  if (Array.isArray(node)) {
    return node.flatMap((child, index) => collectDatasources(child, `${path}[${index}]`));
  }
  if (node === null || typeof node !== 'object') {
    return [];
  }

  return Object.entries(node).flatMap(([key, value]) =>
    key === 'datasource' && value !== null && typeof value === 'object'
      ? [{ path: `${path}.${key}`, ref: value as DatasourceRef }]
      : collectDatasources(value, `${path}.${key}`),
  );
}

describe('the dashboard file', () => {
  it('works both provisioned and imported: no import placeholders', () => {
    const text = readRepoText(DASHBOARD_PATH);

    expect(dashboard.__inputs).toBeUndefined();
    expect(text).not.toMatch(/\$\{DS_/);
    expect(dashboard.uid).toBe('drivequant-tasks');
  });

  it('chooses its data source through a variable of type prometheus', () => {
    const variable = dashboard.templating.list.find((candidate) => candidate.name === 'datasource');

    expect(variable?.type).toBe('datasource');
    expect(variable?.query).toBe('prometheus');
  });

  it('names no data source uid: every reference is the variable or Grafana itself', () => {
    const references = collectDatasources(dashboard, '$');

    const hardCoded = references.filter(
      ({ ref }) =>
        ref.uid !== DATASOURCE_VARIABLE && !(ref.type === 'grafana' && ref.uid === '-- Grafana --'),
    );

    expect(references.length).toBeGreaterThan(queries.length);
    expect(hardCoded).toEqual([]);
  });

  it('offers job, instance, task_type and task_id variables from label_values', () => {
    const byName = new Map(dashboard.templating.list.map((variable) => [variable.name, variable]));

    for (const [name, label] of [
      ['job', 'job'],
      ['instance', 'instance'],
      ['task_type', 'task_type'],
      ['task_id', 'task_id'],
    ] as const) {
      const variable = byName.get(name);
      expect(variable?.type, name).toBe('query');
      expect(variable?.datasource?.uid, name).toBe(DATASOURCE_VARIABLE);
      expect(variableQuery(variable ?? { name, type: '' }), name).toMatch(
        new RegExp(`^label_values\\(drivequant_\\w+(\\{[^}]*\\})?, ${label}\\)$`),
      );
      expect(variable?.definition, name).toBe(variableQuery(variable ?? { name, type: '' }));
      expect(variable?.includeAll, name).toBe(true);
    }
  });
});

describe('the panels', () => {
  it('each have a description and a unit', () => {
    const incomplete = panels
      .filter(
        (panel) =>
          (panel.description ?? '').trim().length < 20 || !panel.fieldConfig?.defaults?.unit,
      )
      .map((panel) => panel.title);

    expect(panels.length).toBeGreaterThanOrEqual(14);
    expect(incomplete).toEqual([]);
  });

  it('cover the overview, the task table, progress, latency and exporter health', () => {
    const titles = panels.map((panel) => panel.title);

    expect(titles).toEqual(
      expect.arrayContaining([
        'Tasks by status',
        'Failed in time range',
        'Canceled in time range',
        'Exporter up',
        'Since last successful poll',
        'Tasks',
        'Remaining items per task',
        'Processing rate per task',
        'Completion latency per task',
        'Completion latency across tasks',
        'API requests by code',
        'API request latency by code',
        'Poll errors by reason',
        'Poll cycle duration',
      ]),
    );
  });

  it('use units for seconds, items and percent', () => {
    const units = new Set(
      panels.flatMap((panel) => [
        panel.fieldConfig?.defaults?.unit,
        ...(panel.fieldConfig?.overrides ?? []).flatMap((override) =>
          override.properties.filter((property) => property.id === 'unit').map((p) => p.value),
        ),
      ]),
    );

    expect([...units]).toEqual(expect.arrayContaining(['s', 'count:items', 'percentunit']));
  });

  it('show in the task table every column the issue asks for', () => {
    const table = panels.find((panel) => panel.title === 'Tasks');
    const columns = (table?.fieldConfig?.overrides ?? []).flatMap((override) =>
      override.properties.filter((property) => property.id === 'displayName').map((p) => p.value),
    );

    expect(table?.type).toBe('table');
    expect(columns).toEqual([
      'Items',
      'Remaining',
      'Progress',
      'Items/min',
      'Time left',
      'Age',
      'Latency',
      'Since poll',
    ]);
  });

  it('have unique ids and do not overlap on the grid', () => {
    const all = dashboard.panels;
    const overlapping: string[] = [];
    for (const [index, a] of all.entries()) {
      for (const b of all.slice(index + 1)) {
        const apart =
          a.gridPos.x + a.gridPos.w <= b.gridPos.x ||
          b.gridPos.x + b.gridPos.w <= a.gridPos.x ||
          a.gridPos.y + a.gridPos.h <= b.gridPos.y ||
          b.gridPos.y + b.gridPos.h <= a.gridPos.y;
        if (!apart) overlapping.push(`${a.title} / ${b.title}`);
      }
    }

    expect(new Set(all.map((panel) => panel.id)).size).toBe(all.length);
    expect(all.every((panel) => panel.gridPos.x + panel.gridPos.w <= 24)).toBe(true);
    expect(overlapping).toEqual([]);
  });
});

describe('the queries', () => {
  it('each have a distinct refId within their panel and an expression', () => {
    for (const panel of panels) {
      const refIds = (panel.targets ?? []).map((target) => target.refId);
      expect(new Set(refIds).size, panel.title).toBe(refIds.length);
      expect(refIds.length, panel.title).toBeGreaterThan(0);
    }

    expect(queries.filter((query) => query.expr.trim() === '')).toEqual([]);
  });

  it('only name metrics the exporter or the scrape produces', () => {
    const unknown = queries.flatMap((query) =>
      findSeriesNames(query.expr)
        .filter((name) => !isKnownSeriesName(name))
        .map((name) => `${query.panelTitle} ${query.refId}: ${name}`),
    );

    expect(queries.length).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });

  it('never apply rate(), irate() or increase() to a gauge', () => {
    const misuses = queries.flatMap((query) =>
      findCalls(query.expr, ['rate', 'irate', 'increase']).flatMap((call) =>
        findSeriesNames(call.argument)
          .filter((name) => !isCounterSeries(name))
          .map((name) => `${query.panelTitle} ${query.refId}: ${call.name}(${name})`),
      ),
    );

    expect(misuses).toEqual([]);
  });

  it('measure the pace of the remaining items with deriv(), and only on gauges', () => {
    const derivCalls = queries.flatMap((query) => findCalls(query.expr, ['deriv', 'delta']));

    const onCounters = derivCalls.filter((call) =>
      findSeriesNames(call.argument).some((name) => isCounterSeries(name)),
    );

    expect(derivCalls.length).toBeGreaterThan(0);
    expect(onCounters).toEqual([]);
  });

  it('filter every series by the variables its labels allow', () => {
    const unfiltered: string[] = [];
    for (const query of queries) {
      for (const selector of findSelectors(query.expr)) {
        const family = findExporterMetric(selector.name)?.family ?? '';
        const taskLabels = (EXPORTER_METRICS[family]?.labels ?? []).filter((label) =>
          label.startsWith('task_'),
        );
        for (const label of ['job', 'instance', ...taskLabels]) {
          const matcher = selector.matchers.get(label);
          if (matcher?.operator !== '=~' || matcher.value !== `$${label}`) {
            unfiltered.push(
              `${query.panelTitle} ${query.refId}: ${selector.name} without ${label}`,
            );
          }
        }
      }
    }

    expect(unfiltered).toEqual([]);
  });
});
