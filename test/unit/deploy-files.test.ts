import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findHealthcheckCommand, parseDockerfile, splitStages } from '../helpers/dockerfile.js';
import { REPO_ROOT, readDocumentation, readRepoText, readRepoYaml } from '../helpers/repo-files.js';

interface ComposeService {
  build?: string;
  image?: string;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
}

const EXPORTER_PORT = '9850';
const CONFIG_PATH = '/etc/drivequant-task-exporter/config.yaml';

const compose = readRepoYaml<{ services: Record<string, ComposeService> }>('docker-compose.yml');
const services = compose.services;
const dockerfile = parseDockerfile(readRepoText('Dockerfile'));
const stages = splitStages(dockerfile);
const runtime = stages.at(-1) ?? [];
const prometheusConfig = readRepoYaml<{
  global: { scrape_interval: string; scrape_timeout: string };
  rule_files: string[];
  alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
  scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
}>('prometheus/prometheus.example.yml');

function service(name: string): ComposeService {
  const found = services[name];
  if (!found) {
    throw new Error(`docker-compose.yml has no service ${name}`);
  }

  return found;
}

/** The host file or folder behind a path inside a service's container. */
function hostPath(serviceName: string, containerPath: string): string | undefined {
  for (const volume of service(serviceName).volumes ?? []) {
    const [source = '', target = ''] = volume.split(':');
    if (!source.startsWith('.')) {
      continue;
    }
    if (containerPath === target || containerPath.startsWith(`${target}/`)) {
      return join(REPO_ROOT, source, containerPath.slice(target.length));
    }
  }

  return undefined;
}

/** The value of a `--name=value` flag of a service's command. */
function flag(serviceName: string, name: string): string | undefined {
  const prefix = `--${name}=`;
  return service(serviceName)
    .command?.find((argument) => argument.startsWith(prefix))
    ?.slice(prefix.length);
}

function containerPorts(serviceName: string): string[] {
  return (service(serviceName).ports ?? []).map((mapping) => mapping.split(':').at(-1) ?? '');
}

function seconds(duration: string): number {
  const match = /^(\d+)(s|m)$/.exec(duration);
  if (!match) {
    throw new Error(`unexpected duration ${duration}`);
  }

  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

describe('the Dockerfile', () => {
  it('builds with every dependency and runs with production ones only', () => {
    const build = stages[0] ?? [];

    expect(stages.length).toBe(2);
    expect(build[0]?.args).toMatch(/^node:20-(slim|alpine)\S* AS build$/);
    expect(runtime[0]?.args).toMatch(/^node:20-(slim|alpine)\S*$/);
    expect(build.filter((step) => step.keyword === 'RUN').map((step) => step.args)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^npm ci\b(?!.*--omit)/), 'npm run build']),
    );
    expect(
      runtime.some((step) => step.keyword === 'RUN' && /npm ci --omit=dev/.test(step.args)),
    ).toBe(true);
    expect(runtime).toContainEqual({ keyword: 'COPY', args: '--from=build /app/dist ./dist' });
  });

  it('runs as a user other than root', () => {
    const user = runtime.filter((step) => step.keyword === 'USER').at(-1);

    expect(user?.args).toBeTruthy();
    expect(['root', '0']).not.toContain(user?.args);
  });

  it('exposes the default port and checks its health with node alone', () => {
    const [command, flag, script] = findHealthcheckCommand(dockerfile);

    expect(runtime).toContainEqual({ keyword: 'EXPOSE', args: EXPORTER_PORT });
    expect([command, flag]).toEqual(['node', '-e']);
    expect(script).toContain(`fetch('http://127.0.0.1:${EXPORTER_PORT}/-/healthy')`);
  });

  it('starts the package binary with the documented config path', () => {
    const pkg = JSON.parse(readRepoText('package.json')) as { bin: Record<string, string> };
    const entrypoint = runtime.find((step) => step.keyword === 'ENTRYPOINT')?.args;
    const cmd = runtime.find((step) => step.keyword === 'CMD')?.args;

    expect(entrypoint).toBe(
      JSON.stringify(['node', `/app/${pkg.bin['drivequant-task-exporter']}`]).replace(/,/g, ', '),
    );
    expect(cmd).toBe(`["--config.file=${CONFIG_PATH}"]`);
    expect(readDocumentation()).toContain(CONFIG_PATH);
  });

  it('copies from the build context only what .dockerignore lets in, and it exists', () => {
    const allowed = readRepoText('.dockerignore')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    const sources = dockerfile
      .filter((step) => step.keyword === 'COPY' && !step.args.startsWith('--from'))
      .flatMap((step) => step.args.split(' ').slice(0, -1));

    expect(readRepoText('.dockerignore')).toMatch(/^\*$/m);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(allowed, source).toContain(source);
      expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
    }
  });
});

describe('docker-compose.yml', () => {
  it('runs the exporter in demo mode, Prometheus, Alertmanager and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual([
      'alertmanager',
      'exporter',
      'grafana',
      'prometheus',
    ]);
    expect(service('exporter').build).toBe('.');
    expect(service('exporter').command).toEqual(['--demo']);
  });

  it('mounts only files and folders that exist', () => {
    const mounts = Object.entries(services).flatMap(([name, definition]) =>
      (definition.volumes ?? [])
        .filter((volume) => volume.startsWith('.'))
        .map((volume) => ({
          name,
          source: volume.split(':')[0] ?? '',
          target: volume.split(':')[1] ?? '',
        })),
    );

    expect(mounts.length).toBeGreaterThanOrEqual(4);
    for (const mount of mounts) {
      const path = join(REPO_ROOT, mount.source);
      expect(existsSync(path), `${mount.name}: ${mount.source}`).toBe(true);
      expect(statSync(path).isFile(), mount.source).toBe(/\.ya?ml$/.test(mount.target));
    }
  });

  it('publishes each service on its usual port, the exporter on the one the Dockerfile exposes', () => {
    expect(service('exporter').ports).toEqual([`${EXPORTER_PORT}:${EXPORTER_PORT}`]);
    expect(service('prometheus').ports).toEqual(['9090:9090']);
    expect(service('alertmanager').ports).toEqual(['9093:9093']);
    expect(service('grafana').ports).toEqual(['3000:3000']);
  });

  it('gives Prometheus the example config, whose rule files exist beside it', () => {
    const configFile = hostPath('prometheus', flag('prometheus', 'config.file') ?? '');

    expect(configFile && relative(REPO_ROOT, configFile)).toBe(
      join('prometheus', 'prometheus.example.yml'),
    );
    for (const ruleFile of prometheusConfig.rule_files) {
      expect(existsSync(join(dirname(configFile ?? ''), ruleFile)), ruleFile).toBe(true);
    }
    expect(prometheusConfig.rule_files).toEqual(['rules.yml', 'alerts.yml']);
  });

  it('has Prometheus scrape the exporter service under the job name the alerts select', () => {
    const [job] = prometheusConfig.scrape_configs;
    const alerts = readRepoText('prometheus/alerts.yml');

    expect(job?.static_configs.flatMap((config) => config.targets)).toEqual([
      `exporter:${EXPORTER_PORT}`,
    ]);
    expect(alerts).toContain(`up{job="${job?.job_name}"} == 0`);
    expect(alerts).toContain(`absent(up{job="${job?.job_name}"})`);
  });

  it('has Prometheus send alerts to the Alertmanager service', () => {
    const targets = prometheusConfig.alerting.alertmanagers.flatMap((manager) =>
      manager.static_configs.flatMap((config) => config.targets),
    );
    const configFile = hostPath('alertmanager', flag('alertmanager', 'config.file') ?? '');

    expect(targets).toEqual(['alertmanager:9093']);
    expect(containerPorts('alertmanager')).toContain('9093');
    expect(configFile && relative(REPO_ROOT, configFile)).toBe(
      join('prometheus', 'alertmanager.example.yml'),
    );
  });

  it('scrapes with a timeout shorter than the interval', () => {
    const { scrape_interval, scrape_timeout } = prometheusConfig.global;

    expect(seconds(scrape_timeout)).toBeLessThan(seconds(scrape_interval));
  });
});

describe('the Grafana provisioning', () => {
  const datasources = readRepoYaml<{
    datasources: { type: string; url: string; jsonData: { timeInterval: string } }[];
  }>('grafana/provisioning/datasources/prometheus.yml').datasources;
  const providers = readRepoYaml<{ providers: { type: string; options: { path: string } }[] }>(
    'grafana/provisioning/dashboards/drivequant.yml',
  ).providers;

  it('is mounted where Grafana reads it', () => {
    expect(hostPath('grafana', '/etc/grafana/provisioning')).toBe(
      join(REPO_ROOT, 'grafana/provisioning'),
    );
  });

  it('points the data source at the Prometheus service, at its scrape interval', () => {
    expect(datasources).toHaveLength(1);
    expect(datasources[0]?.type).toBe('prometheus');
    expect(datasources[0]?.url).toBe('http://prometheus:9090');
    expect(containerPorts('prometheus')).toContain('9090');
    expect(datasources[0]?.jsonData.timeInterval).toBe(prometheusConfig.global.scrape_interval);
  });

  it('loads the dashboard from the folder the compose file mounts, and opens it at home', () => {
    const folder = hostPath('grafana', providers[0]?.options.path ?? '');
    const home = hostPath(
      'grafana',
      service('grafana').environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '',
    );

    expect(providers[0]?.type).toBe('file');
    expect(folder && existsSync(join(folder, 'drivequant-tasks.json'))).toBe(true);
    expect(home).toBe(join(REPO_ROOT, 'grafana/dashboards/drivequant-tasks.json'));
  });
});
