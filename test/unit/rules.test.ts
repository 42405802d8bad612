import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isCounterSeries, isKnownSeriesName } from '../helpers/exporter-metric-names.js';
import { checkTools, runCommand } from '../helpers/external-tools.js';
import { findCalls, findSeriesNames } from '../helpers/promql.js';
import { REPO_ROOT, readDocumentation, readRepoYaml } from '../helpers/repo-files.js';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

interface RuleTestFile {
  rule_files: string[];
  tests: {
    name: string;
    alert_rule_test?: { alertname: string; eval_time: string; exp_alerts?: unknown[] }[];
  }[];
}

const PROMETHEUS_DIR = join(REPO_ROOT, 'prometheus');

const alertsFile = readRepoYaml<RuleFile>('prometheus/alerts.yml');
const recordsFile = readRepoYaml<RuleFile>('prometheus/rules.yml');
const testFile = readRepoYaml<RuleTestFile>('prometheus/alerts.test.yml');
const alerts = alertsFile.groups.flatMap((group) =>
  group.rules.map((rule) => ({ ...rule, group: group.name, name: rule.alert ?? '' })),
);
const records = recordsFile.groups.flatMap((group) => group.rules);
const recordedNames = new Set(records.map((rule) => rule.record));

describe('the alert rules', () => {
  it('are the alerts the issue asks for, and a few more', () => {
    expect(alerts.map((alert) => alert.name)).toEqual([
      'DriveQuantTaskFailed',
      'DriveQuantTaskCanceled',
      'DriveQuantTaskPendingTooLong',
      'DriveQuantTaskStalled',
      'DriveQuantTaskTooSlow',
      'DriveQuantTaskPollsFailing',
      'DriveQuantTaskNotFound',
      'DriveQuantAPIKeyRejected',
      'DriveQuantAPIUnreachable',
      'DriveQuantExporterDown',
      'DriveQuantExporterAbsent',
      'DriveQuantExporterConfigReloadFailed',
    ]);
  });

  it('each have a severity, a summary and a description', () => {
    for (const alert of alerts) {
      expect(['critical', 'warning'], alert.name).toContain(alert.labels?.severity);
      expect(alert.annotations?.summary, alert.name).toBeTruthy();
      expect(alert.annotations?.description, alert.name).toBeTruthy();
    }

    expect(
      alerts.find((alert) => alert.name === 'DriveQuantAPIKeyRejected')?.labels?.severity,
    ).toBe('critical');
  });

  it('name the task and its type in the summary and the description of task alerts', () => {
    const taskAlerts = alerts.filter((alert) => alert.group === 'drivequant-tasks');

    for (const alert of taskAlerts) {
      for (const text of [alert.annotations?.summary, alert.annotations?.description]) {
        expect(text, alert.name).toContain('{{ $labels.task_type }}');
        expect(text, alert.name).toContain('{{ $labels.task_id }}');
      }
    }

    expect(taskAlerts.length).toBe(7);
  });

  it('only read series the exporter exports or rules.yml records', () => {
    const unknown = [...alerts, ...records].flatMap((rule) =>
      findSeriesNames(rule.expr).filter(
        (name) => !isKnownSeriesName(name) && !recordedNames.has(name),
      ),
    );

    expect(unknown).toEqual([]);
  });

  it('never apply rate() or increase() to a gauge', () => {
    const misuses = [...alerts, ...records].flatMap((rule) =>
      findCalls(rule.expr, ['rate', 'irate', 'increase']).flatMap((call) =>
        findSeriesNames(call.argument).filter((name) => !isCounterSeries(name)),
      ),
    );

    expect(misuses).toEqual([]);
  });

  it('each have a runbook section in the documentation', () => {
    const documentation = readDocumentation();

    const missing = alerts.filter(
      (alert) => !new RegExp(`^#{2,5} ${alert.name}$`, 'm').test(documentation),
    );

    expect(missing.map((alert) => alert.name)).toEqual([]);
  });

  it('each have a unit test where they fire and one where they must not', () => {
    const cases = testFile.tests.flatMap((test) => test.alert_rule_test ?? []);

    for (const alert of alerts) {
      const own = cases.filter((testCase) => testCase.alertname === alert.name);
      expect(
        own.some((testCase) => (testCase.exp_alerts ?? []).length > 0),
        `${alert.name} fires`,
      ).toBe(true);
      expect(
        own.some((testCase) => (testCase.exp_alerts ?? []).length === 0),
        `${alert.name} stays quiet`,
      ).toBe(true);
    }

    expect(testFile.rule_files).toEqual(['rules.yml', 'alerts.yml']);
  });
});

describe('the Alertmanager example', () => {
  it('inhibits only alerts that exist', () => {
    const config = readRepoYaml<{
      inhibit_rules: { source_matchers: string[]; target_matchers: string[] }[];
    }>('prometheus/alertmanager.example.yml');
    const names = new Set(alerts.map((alert) => alert.name));

    const referenced = config.inhibit_rules.flatMap((rule) =>
      [...rule.source_matchers, ...rule.target_matchers].flatMap((matcher) =>
        (/^alertname=~?"(.*)"$/.exec(matcher)?.[1] ?? '').split('|'),
      ),
    );

    expect(referenced.length).toBeGreaterThan(0);
    expect(referenced.filter((name) => !names.has(name))).toEqual([]);
  });
});

const tools = checkTools(['promtool', 'amtool']);

describe.skipIf(tools.skip)('promtool and amtool accept the shipped files', () => {
  it('promtool check rules finds every rule', () => {
    const result = runCommand(
      'promtool',
      ['check', 'rules', 'rules.yml', 'alerts.yml'],
      PROMETHEUS_DIR,
    );

    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`SUCCESS: ${records.length} rules found`);
    expect(result.stdout).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it('promtool test rules passes every unit test', () => {
    const result = runCommand('promtool', ['test', 'rules', 'alerts.test.yml'], PROMETHEUS_DIR);

    expect(result.stdout).toContain('SUCCESS');
    expect(result.stdout).not.toContain('FAILED');
    expect(result.exitCode).toBe(0);
  });

  it('promtool check config accepts the example and the rule files it loads', () => {
    const result = runCommand(
      'promtool',
      ['check', 'config', 'prometheus.example.yml'],
      PROMETHEUS_DIR,
    );

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('is valid prometheus config file syntax');
    expect(result.stdout).toContain('SUCCESS: 2 rule files found');
    expect(result.stdout).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it('amtool check-config accepts the Alertmanager example', () => {
    const result = runCommand(
      'amtool',
      ['check-config', 'alertmanager.example.yml'],
      PROMETHEUS_DIR,
    );

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('SUCCESS');
  });

  it('the Alertmanager example routes alerts by severity', () => {
    const receiverFor = (...labels: string[]) =>
      runCommand(
        'amtool',
        ['config', 'routes', 'test', '--config.file=alertmanager.example.yml', ...labels],
        PROMETHEUS_DIR,
      ).stdout.trim();

    expect(receiverFor('alertname=DriveQuantAPIKeyRejected', 'severity=critical')).toBe('critical');
    expect(receiverFor('alertname=DriveQuantTaskFailed', 'severity=warning')).toBe('warning');
    expect(receiverFor('alertname=Other')).toBe('default');
  });
});
