import { round } from './stats.js';

/** Timing of repeated scrapes of /metrics. */
export interface ScrapeSummary {
  count: number;
  /** In milliseconds. */
  medianMs: number;
  /** In milliseconds. */
  p99Ms: number;
  /** Body size on the wire (compressed when gzip), in bytes. */
  bytes: number;
}

/** The figures for one task count. */
export interface ScenarioReport {
  tasks: number;
  cycle: {
    /** Wall time of a warm poll cycle, in milliseconds. */
    wallMs: number;
    /** tasks × latency / concurrency, in milliseconds. */
    idealMs: number;
    ratio: number;
    /** The plain loop's wall time over the same ideal: the floor of the ratio on this machine. */
    plainLoopRatio: number;
    polled: number;
    failed: number;
  };
  cpu: {
    /** Exporter process CPU (user + system) over the cycle, per polled task, in microseconds. */
    exporterMicrosPerTask: number;
    /** The plain got + p-limit loop's CPU per request, in microseconds. */
    plainLoopMicrosPerTask: number;
    ratio: number;
    /** Wall time of the plain loop, in milliseconds. */
    plainLoopWallMs: number;
  };
  metrics: {
    /** Scrapes without Accept-Encoding, no poll running. */
    plain: ScrapeSummary;
    /** Scrapes with Accept-Encoding: gzip, no poll running. */
    gzip: ScrapeSummary;
    /** Scrapes (plain and gzip alternately) while a cycle changes the tasks. */
    duringCycle: ScrapeSummary;
    /** The first scrape after a cycle, which renders every changed task, in milliseconds. */
    firstAfterCycleMs: { plain: number; gzip: number };
  };
  /** Exporter process memory after a full cycle and gzip scrapes, as Prometheus leaves it. */
  memory: MemoryFigures;
  /** Exporter process memory right after a cycle that ran under back-to-back scrapes. */
  memoryAfterBusyCycle: MemoryFigures;
  /** Exporter event-loop delay during a cycle with back-to-back scrapes, in milliseconds. */
  eventLoop: { p50Ms: number; p99Ms: number; maxMs: number };
}

/** Memory of a process, in bytes. */
export interface MemoryFigures {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
}

/** One target of the performance issue, and whether the run met it. */
export interface TargetCheck {
  name: string;
  target: string;
  value: string;
  met: boolean;
}

/** The whole report, as written to bench/results/latest.json. */
export interface BenchReport {
  generatedAt: string;
  environment: { node: string; platform: string; cpus: number; cpuModel: string };
  /** `exporterNodeOptions`: the Node.js flags the exporter processes ran with. */
  settings: { latencyMs: number; concurrency: number; exporterNodeOptions: string };
  scenarios: ScenarioReport[];
  rateLimit: {
    tasks: number;
    maxRequestsPerSecond: number;
    /** In milliseconds. */
    cycleMs: number;
    /** (tasks - 1) / rate: the first request goes at once, in milliseconds. */
    expectedCycleMs: number;
    observedMeanPerSecond: number;
    /** Most requests the simulator counted in any one-second window. */
    observedPeakPerSecond: number;
    polled: number;
  };
  /** Ordinary prom-client gauges rendering the same per-task series. */
  baseline: { tasks: number; medianMs: number; bytes: number };
  targets: TargetCheck[];
  /** Wall time of the whole benchmark, in seconds. */
  durationSeconds: number;
}

const MB = 1024 * 1024;

/** Checks the targets against the largest scenario (10,000 tasks by default). */
export function checkTargets(report: BenchReport): TargetCheck[] {
  const largest = report.scenarios.reduce((a, b) => (b.tasks > a.tasks ? b : a));
  const at = `at ${largest.tasks} tasks`;
  const slowerMedian = Math.max(largest.metrics.plain.medianMs, largest.metrics.gzip.medianMs);
  const rate = report.rateLimit;

  return [
    {
      name: `poll cycle / ideal ${at}`,
      target: '<= 1.10',
      value: round(largest.cycle.ratio, 3).toString(),
      met: largest.cycle.ratio <= 1.1 && largest.cycle.failed === 0,
    },
    {
      name: 'CPU per polled task / plain loop, at every task count',
      target: '<= 1.20',
      value: report.scenarios.map((s) => `${round(s.cpu.ratio, 3)} at ${s.tasks}`).join(', '),
      met: report.scenarios.every((s) => s.cpu.ratio <= 1.2),
    },
    {
      name: `/metrics median (plain and gzip) ${at}`,
      target: '<= 60 ms',
      value: `${round(slowerMedian, 1)} ms`,
      met: slowerMedian <= 60,
    },
    {
      name: 'gzip supported',
      target: 'gzip body when asked',
      value: largest.metrics.gzip.bytes < largest.metrics.plain.bytes ? 'yes' : 'no',
      met: largest.metrics.gzip.bytes < largest.metrics.plain.bytes,
    },
    {
      name: `RSS after a full cycle ${at}`,
      target: '<= 150 MB',
      value: `${round(largest.memory.rssBytes / MB, 1)} MB`,
      met: largest.memory.rssBytes <= 150 * MB,
    },
    {
      name: `event-loop delay p99, cycle + scrapes ${at}`,
      target: '< 50 ms',
      value: `${round(largest.eventLoop.p99Ms, 1)} ms`,
      met: largest.eventLoop.p99Ms < 50,
    },
    {
      name: `requests/s at most max_requests_per_second (${rate.maxRequestsPerSecond})`,
      target: `<= ${rate.maxRequestsPerSecond} in any 1 s`,
      value: `${rate.observedPeakPerSecond} peak, ${round(rate.observedMeanPerSecond, 1)} mean`,
      met: rate.observedPeakPerSecond <= rate.maxRequestsPerSecond + 1,
    },
  ];
}

/** The report as a plain-text table. */
export function formatReport(report: BenchReport): string {
  const header = ['', ...report.scenarios.map((s) => `${s.tasks} tasks`)];
  const row = (label: string, cell: (s: ScenarioReport) => string) => [
    label,
    ...report.scenarios.map(cell),
  ];
  const ms = (value: number) => `${round(value, 1)} ms`;
  const rows = [
    header,
    row('poll cycle (wall / ideal)', (s) => `${ms(s.cycle.wallMs)} / ${ms(s.cycle.idealMs)}`),
    row('cycle ratio', (s) => round(s.cycle.ratio, 3).toString()),
    row('plain loop ratio (floor)', (s) => round(s.cycle.plainLoopRatio, 3).toString()),
    row('CPU per task: exporter', (s) => `${round(s.cpu.exporterMicrosPerTask, 0)} µs`),
    row('CPU per task: plain got + p-limit', (s) => `${round(s.cpu.plainLoopMicrosPerTask, 0)} µs`),
    row('CPU ratio', (s) => round(s.cpu.ratio, 3).toString()),
    row(
      '/metrics median / p99',
      (s) => `${ms(s.metrics.plain.medianMs)} / ${ms(s.metrics.plain.p99Ms)}`,
    ),
    row(
      '/metrics gzip median / p99',
      (s) => `${ms(s.metrics.gzip.medianMs)} / ${ms(s.metrics.gzip.p99Ms)}`,
    ),
    row(
      '/metrics first after a cycle (plain / gzip)',
      (s) => `${ms(s.metrics.firstAfterCycleMs.plain)} / ${ms(s.metrics.firstAfterCycleMs.gzip)}`,
    ),
    row(
      '/metrics during a cycle median / p99',
      (s) => `${ms(s.metrics.duringCycle.medianMs)} / ${ms(s.metrics.duringCycle.p99Ms)}`,
    ),
    row(
      'body size (plain / gzip)',
      (s) => `${kb(s.metrics.plain.bytes)} / ${kb(s.metrics.gzip.bytes)}`,
    ),
    row('RSS / heap used', (s) => `${mb(s.memory.rssBytes)} / ${mb(s.memory.heapUsedBytes)}`),
    row('RSS after a busy cycle', (s) => mb(s.memoryAfterBusyCycle.rssBytes)),
    row('event-loop delay p99 / max', (s) => `${ms(s.eventLoop.p99Ms)} / ${ms(s.eventLoop.maxMs)}`),
  ];
  const widths = header.map((_, column) => Math.max(...rows.map((r) => (r[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();

  const { baseline, rateLimit } = report;
  const lines = [
    `drivequant-task-exporter benchmark: latency ${report.settings.latencyMs} ms, concurrency ${report.settings.concurrency}, ${report.environment.cpus} CPUs, node ${report.environment.node}`,
    `exporter processes run with: ${report.settings.exporterNodeOptions || '(no Node.js flags)'}`,
    '',
    ...rows.map(line),
    '',
    `ordinary prom-client gauges, ${baseline.tasks} tasks: ${ms(baseline.medianMs)} per render, ${kb(baseline.bytes)}`,
    `max_requests_per_second ${rateLimit.maxRequestsPerSecond}, ${rateLimit.tasks} tasks: cycle ${ms(rateLimit.cycleMs)} (expected ${ms(rateLimit.expectedCycleMs)}), ${round(rateLimit.observedMeanPerSecond, 1)} requests/s mean, ${rateLimit.observedPeakPerSecond} in the busiest second`,
    '',
    'targets:',
    ...report.targets.map(
      (t) => `  ${t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${t.value} (target ${t.target})`,
    ),
    '',
    `benchmark took ${report.durationSeconds} s`,
  ];

  return `${lines.join('\n')}\n`;
}

function kb(bytes: number): string {
  return bytes >= MB ? `${round(bytes / MB, 1)} MB` : `${round(bytes / 1024, 1)} KB`;
}

function mb(bytes: number): string {
  return `${round(bytes / MB, 1)} MB`;
}
