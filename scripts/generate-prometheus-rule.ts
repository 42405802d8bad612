import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';

/** The alerting rules, as Prometheus loads them. */
export const ALERTS_FILE = 'prometheus/alerts.yml';

/** The same rules for the Prometheus Operator. */
export const PROMETHEUS_RULE_FILE = 'deploy/kubernetes/prometheus-rule.yaml';

const HEADER = `# Generated from ${ALERTS_FILE} by \`npm run generate:k8s\`; do not edit by hand.
# Your Prometheus's ruleSelector may require a label here (kube-prometheus-stack:
# release: <its release name>); add it in scripts/generate-prometheus-rule.ts, not here.
`;

/**
 * Renders the PrometheusRule manifest that holds the groups of an alerting rules file,
 * unchanged. Throws when the file has no `groups` list.
 */
export function renderPrometheusRule(alertsYaml: string): string {
  const alerts = parse(alertsYaml) as { groups?: unknown };
  if (!Array.isArray(alerts?.groups)) {
    throw new Error(`${ALERTS_FILE}: groups: is required and must be a list of rule groups`);
  }

  const manifest = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'drivequant-task-exporter',
      labels: {
        'app.kubernetes.io/name': 'drivequant-task-exporter',
        'app.kubernetes.io/component': 'alerting-rules',
      },
    },
    spec: { groups: alerts.groups },
  };

  return `${HEADER}${stringify(manifest, { lineWidth: 0 })}`;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];

  return script !== undefined && import.meta.url === pathToFileURL(realpathSync(script)).href;
}

if (isEntryPoint()) {
  writeFileSync(PROMETHEUS_RULE_FILE, renderPrometheusRule(readFileSync(ALERTS_FILE, 'utf8')));
  process.stdout.write(`wrote ${PROMETHEUS_RULE_FILE} from ${ALERTS_FILE}\n`);
}
