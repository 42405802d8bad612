import { readRepoText } from './repo-files.js';

/** The shipped Grafana dashboard, relative to the repository's root. */
export const DASHBOARD_PATH = 'grafana/dashboards/drivequant-tasks.json';

/** A data source reference, as Grafana stores it. */
export interface DatasourceRef {
  type?: string;
  uid?: string;
}

/** One query of a panel. */
export interface PanelTarget {
  refId: string;
  expr?: string;
  instant?: boolean;
  format?: string;
  datasource?: DatasourceRef;
}

/** The parts of a Grafana panel the tests read. */
export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: DatasourceRef;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: PanelTarget[];
  fieldConfig?: {
    defaults?: { unit?: string };
    overrides?: {
      matcher: { id: string; options: unknown };
      properties: { id: string; value: unknown }[];
    }[];
  };
  /** Panels of a collapsed row. */
  panels?: Panel[];
}

/** One dashboard variable. */
export interface Variable {
  name: string;
  type: string;
  query?: string | { query: string };
  definition?: string;
  datasource?: DatasourceRef;
  includeAll?: boolean;
  allValue?: string;
}

/** The parts of a Grafana dashboard the tests read. */
export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  __inputs?: unknown;
}

/** One PromQL query of the dashboard, with where it comes from. */
export interface DashboardQuery {
  panelTitle: string;
  panelType: string;
  refId: string;
  expr: string;
  instant: boolean;
}

/** Reads the shipped dashboard. */
export function loadDashboard(): Dashboard {
  return JSON.parse(readRepoText(DASHBOARD_PATH)) as Dashboard;
}

/** Every panel except rows, including those inside collapsed rows. */
export function listPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) =>
    panel.type === 'row' ? (panel.panels ?? []) : [panel],
  );
}

/** Every PromQL query of every panel. */
export function listQueries(dashboard: Dashboard): DashboardQuery[] {
  return listPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      panelTitle: panel.title,
      panelType: panel.type,
      refId: target.refId,
      expr: target.expr ?? '',
      instant: target.instant === true,
    })),
  );
}

/** The query text of a query variable, in either of the forms Grafana stores. */
export function variableQuery(variable: Variable): string {
  return typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
}

/**
 * Replaces `$name` and `${name}` by their values, as Grafana does before it
 * sends a query. `values` must also give Grafana's own `__rate_interval`,
 * `__range` and the like when the expression uses them.
 */
export function expandVariables(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
    const value = values[braced ?? bare ?? ''];
    if (value === undefined) {
      throw new Error(`no value for ${whole} in ${expr}`);
    }

    return value;
  });
}
