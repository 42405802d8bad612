import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { USAGE } from '../../src/cli.js';
import { createExporterMetrics } from '../../src/exporter-metrics.js';
import { TASK_METRIC_NAMES } from '../../src/task-exposition.js';
import { TaskStore } from '../../src/task-state.js';
import { ERROR_REASONS } from '../../src/upstream-error.js';
import { EXPORTER_METRICS } from '../helpers/exporter-metric-names.js';
import { readRepoText } from '../helpers/repo-files.js';

const readme = readRepoText('README.md');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slugOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function headings(markdown: string): string[] {
  let inFence = false;
  const found: string[] = [];
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) {
      inFence = !inFence;
    }
    const match = inFence ? null : /^#{1,6} (.+)$/.exec(line);
    if (match?.[1] !== undefined) {
      found.push(match[1]);
    }
  }

  return found;
}

function configKeyPaths(node: unknown, prefix = ''): string[] {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) {
    return [];
  }

  return Object.entries(node).flatMap(([key, value]) => {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const children = configKeyPaths(value, path);

    return children.length > 0 ? children : [path];
  });
}

describe('the README', () => {
  it('links only to headings that exist, and no two headings share an anchor', () => {
    const slugs = headings(readme).map(slugOf);
    const links = [...readme.matchAll(/\]\(#([^)]+)\)/g)].map((match) => match[1]);

    expect(links.filter((link) => !slugs.includes(link ?? ''))).toEqual([]);
    expect(slugs.filter((slug, index) => slugs.indexOf(slug) !== index)).toEqual([]);
  });

  it('documents every metric the exporter exposes', () => {
    const store = new TaskStore({ maxTasks: 10, notFoundLimit: 3 });
    const registry = createExporterMetrics({ store, version: 'test' }).registry;
    const names = [
      ...registry.getMetricsAsArray().map((metric) => metric.name),
      ...TASK_METRIC_NAMES,
      ...Object.keys(EXPORTER_METRICS),
    ].filter((name) => name.startsWith('drivequant_'));

    expect(names.filter((name) => !readme.includes(`\`${name}`))).toEqual([]);
  });

  it('documents every flag of --help', () => {
    const flags = new Set(USAGE.match(/--[a-z][a-z.-]*/g));

    expect([...flags].filter((flag) => !readme.includes(flag))).toEqual([]);
  });

  it('documents every key of config.example.yaml', () => {
    const example = parseDocument(readRepoText('config.example.yaml'), { keepSourceTokens: false });
    const commentedKeys = ['drivequant.api_key_file', 'api.token', 'api.token_file'];
    const keys = [...configKeyPaths(example.toJS()), ...commentedKeys];

    expect(keys.filter((key) => !readme.includes(`\`${key}\``))).toEqual([]);
  });

  it('explains every error reason', () => {
    const missing = Object.values(ERROR_REASONS).filter(
      (reason) => !readme.includes(`\`${reason}\``),
    );

    expect(missing).toEqual([]);
  });
});
