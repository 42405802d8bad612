import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import type { BenchReport } from '../../bench/report.js';
import {
  ALERTS_FILE,
  PROMETHEUS_RULE_FILE,
  renderPrometheusRule,
} from '../../scripts/generate-prometheus-rule.js';
import { parseCommandLine } from '../../src/cli.js';
import { parseConfig } from '../../src/config.js';
import { createTempDir } from '../helpers/temp-dir.js';

interface Probe {
  httpGet: { path: string; port: string };
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef: { fieldPath: string } };
}

interface Container {
  args: string[];
  env: EnvVar[];
  ports: unknown[];
  livenessProbe: Probe;
  readinessProbe: Probe;
  securityContext: unknown;
  resources: { requests: { cpu: string; memory: string }; limits: { memory: string } };
  volumeMounts: { name: string; mountPath: string }[];
}

interface StatefulSet {
  spec: {
    replicas: number;
    serviceName: string;
    selector: { matchLabels: Record<string, string> };
    template: {
      spec: {
        securityContext: { runAsNonRoot: boolean; runAsUser: number };
        containers: Container[];
        volumes: { name: string; secret?: { secretName: string } }[];
      };
    };
  };
}

interface Service {
  metadata: { name: string; labels: Record<string, string> };
  spec: { clusterIP: string; selector: Record<string, string>; ports: unknown[] };
}

interface ServiceMonitor {
  spec: { selector: { matchLabels: Record<string, string> }; endpoints: unknown[] };
}

interface PrometheusRule {
  apiVersion: string;
  kind: string;
  spec: { groups: unknown[] };
}

/** The parts of the exporter's YAML config that the checks read. */
interface ConfigYaml {
  drivequant: { api_key?: string; api_key_file?: string };
  poll: { interval: string; max_tasks: number };
}

const DIR = 'deploy/kubernetes';

/** Reads a manifest file that holds one document. */
function readManifest<T>(name: string): T {
  const documents = parseAllDocuments(readFileSync(`${DIR}/${name}`, 'utf8'));
  if (documents.length !== 1) {
    throw new Error(`${DIR}/${name}: expected one YAML document, found ${documents.length}`);
  }

  return documents[0]?.toJS() as T;
}

const statefulSet = readManifest<StatefulSet>('statefulset.yaml');
const pod = statefulSet.spec.template.spec;
const container = pod.containers[0] as Container;
const configMap = readManifest<{ data: Record<string, string> }>('configmap.yaml');
const configText = configMap.data['config.yaml'] ?? '';
const config = parse(configText) as ConfigYaml;
const service = readManifest<Service>('service.yaml');
const serviceMonitor = readManifest<ServiceMonitor>('servicemonitor.yaml');
const bench = JSON.parse(readFileSync('bench/results/latest.json', 'utf8')) as BenchReport;
const largest = bench.scenarios.reduce((a, b) => (b.tasks > a.tasks ? b : a));

/** A Kubernetes quantity such as `192Mi` or `250m`, in bytes or cores. */
function quantity(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|m)?$/.exec(text);
  if (match === null) {
    throw new Error(`not a quantity: ${text}`);
  }
  const factor = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, m: 1 / 1000 }[match[2] ?? ''] ?? 1;

  return Number(match[1]) * factor;
}

function envValue(name: string): string | undefined {
  return container.env.find((entry) => entry.name === name)?.value;
}

describe('the PrometheusRule', () => {
  it('is what npm run generate:k8s makes of prometheus/alerts.yml', () => {
    const committed = readFileSync(PROMETHEUS_RULE_FILE, 'utf8');

    const generated = renderPrometheusRule(readFileSync(ALERTS_FILE, 'utf8'));

    expect(committed, 'run npm run generate:k8s after changing the alerts').toBe(generated);
  });

  it('holds exactly the rule groups of prometheus/alerts.yml', () => {
    const alerts = parse(readFileSync(ALERTS_FILE, 'utf8'));

    const rule = readManifest<PrometheusRule>('prometheus-rule.yaml');

    expect(rule.kind).toBe('PrometheusRule');
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.spec.groups).toEqual(alerts.groups);
    expect(rule.spec.groups.length).toBeGreaterThan(0);
  });

  it('is refused without groups, naming the file', () => {
    expect(() => renderPrometheusRule('rules: []\n')).toThrow(
      'prometheus/alerts.yml: groups: is required and must be a list of rule groups',
    );
  });
});

describe('the StatefulSet', () => {
  it('probes liveness on /-/healthy and readiness on /-/ready, on the metrics port', () => {
    expect(container.livenessProbe.httpGet).toEqual({ path: '/-/healthy', port: 'http-metrics' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/-/ready', port: 'http-metrics' });
    expect(container.ports).toEqual([
      { name: 'http-metrics', containerPort: 9850, protocol: 'TCP' },
    ]);
  });

  it('runs as a non-root user without privileges, on a read-only root file system', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('takes its command line from flags the exporter accepts', () => {
    const args = container.args.map((arg) => arg.replace('$(SHARD_INDEX)', '1'));

    const command = parseCommandLine(args);

    expect(command.kind).toBe('run');
    expect(command.kind === 'run' && command.flags.shard).toEqual({
      index: 1,
      total: statefulSet.spec.replicas,
    });
  });

  it('uses the pod ordinal as the shard index', () => {
    const shardIndex = container.env.find((entry) => entry.name === 'SHARD_INDEX');

    expect(container.args).toContain('--shard.index=$(SHARD_INDEX)');
    expect(shardIndex?.valueFrom?.fieldRef.fieldPath).toBe(
      "metadata.labels['apps.kubernetes.io/pod-index']",
    );
  });

  it('reads the API key from a mounted Secret, never from the ConfigMap', () => {
    const secretVolume = pod.volumes.find((volume) => volume.secret !== undefined);
    const mount = container.volumeMounts.find((entry) => entry.name === secretVolume?.name);

    expect(secretVolume?.secret?.secretName).toBe('drivequant-task-exporter');
    expect(config.drivequant.api_key).toBeUndefined();
    expect(config.drivequant.api_key_file).toBe(`${mount?.mountPath}/api-key`);
  });

  it('has a ConfigMap the exporter accepts', async () => {
    const dir = await createTempDir();
    const keyFile = await dir.write('api-key', 'a-key\n');
    const text = configText.replace('/etc/drivequant-task-exporter/secrets/api-key', keyFile);

    const loaded = parseConfig(text, { source: 'configmap.yaml', baseDir: dir.path, env: {} });

    expect(loaded.config.poll.maxRequestsPerSecond).toBeGreaterThan(0);
    expect(loaded.warnings).toEqual([]);
    await dir.remove();
  });
});

describe('resources sized from the benchmark', () => {
  const { requests, limits } = container.resources;

  it('runs the exporter with the Node.js flags the benchmark measured', () => {
    expect(envValue('NODE_OPTIONS')).toBe(bench.settings.exporterNodeOptions);
  });

  it('requests the memory the benchmark measured for as many tasks as max_tasks', () => {
    expect(config.poll.max_tasks).toBeLessThanOrEqual(largest.tasks);
    expect(quantity(requests.memory)).toBeGreaterThanOrEqual(largest.memory.rssBytes);
    expect(quantity(limits.memory)).toBeGreaterThanOrEqual(
      largest.memoryAfterBusyCycle.rssBytes * 1.2,
    );
  });

  it('requests the CPU that polling max_tasks every interval takes', () => {
    const intervalSeconds = Number(/^(\d+)s$/.exec(config.poll.interval)?.[1]);
    const cores =
      (largest.cpu.exporterMicrosPerTask * config.poll.max_tasks) / 1e6 / intervalSeconds;

    expect(quantity(requests.cpu)).toBeGreaterThanOrEqual(cores);
  });
});

describe('the Service and the ServiceMonitor', () => {
  it('scrape /metrics of every pod through the named metrics port', () => {
    expect(service.spec.selector).toEqual(statefulSet.spec.selector.matchLabels);
    expect(service.spec.ports).toEqual([
      { name: 'http-metrics', port: 9850, targetPort: 'http-metrics', protocol: 'TCP' },
    ]);
    expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels);
    expect(serviceMonitor.spec.endpoints).toEqual([
      expect.objectContaining({ port: 'http-metrics', path: '/metrics' }),
    ]);
  });

  it('is the governing Service of the StatefulSet, headless', () => {
    expect(statefulSet.spec.serviceName).toBe(service.metadata.name);
    expect(service.spec.clusterIP).toBe('None');
  });
});
