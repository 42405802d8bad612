import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseCommandLine } from '../src/cli.js';
import { createLogger } from '../src/logger.js';
import { type RunningExporter, startExporter } from '../src/main.js';
import { serveRpc } from './child-rpc.js';
import { type PlainLoopOptions, runPlainLoop } from './plain-loop.js';

/** What one measured run reports. */
export interface MeasuredRun {
  /** Wall time, in milliseconds. */
  wallMs: number;
  /** CPU time of the whole process (user + system, every thread), in microseconds. */
  cpuMicros: number;
  /** Tasks answered. */
  polled: number;
  /** Tasks that failed or were deferred; 0 in a clean run. */
  failed: number;
  /** Event-loop delay while the run went on, when asked for, in milliseconds. */
  eventLoop?: { p50Ms: number; p99Ms: number; maxMs: number };
}

/** Memory of the process, in bytes. */
export interface MemoryReport {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
}

let exporter: RunningExporter | undefined;

async function measure(
  watchEventLoop: boolean,
  run: () => Promise<{ polled: number; failed: number }>,
): Promise<MeasuredRun> {
  const histogram = watchEventLoop ? monitorEventLoopDelay({ resolution: 5 }) : undefined;
  histogram?.enable();
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const { polled, failed } = await run();
  const wallMs = performance.now() - wallBefore;
  const cpu = process.cpuUsage(cpuBefore);
  histogram?.disable();

  return {
    wallMs,
    cpuMicros: cpu.user + cpu.system,
    polled,
    failed,
    eventLoop:
      histogram === undefined
        ? undefined
        : {
            p50Ms: histogram.percentile(50) / 1e6,
            p99Ms: histogram.percentile(99) / 1e6,
            maxMs: histogram.max / 1e6,
          },
  };
}

/** The methods the benchmark calls in this process. */
export const benchChildHandlers = {
  /** Starts the exporter on a loopback port and waits for its first cycle to finish. */
  async startExporter(params: { configFile: string }): Promise<{ url: string }> {
    const command = parseCommandLine([
      `--config.file=${params.configFile}`,
      '--web.listen-address=127.0.0.1:0',
    ]);
    if (command.kind !== 'run') {
      throw new Error(`unexpected command ${command.kind}`);
    }
    const logger = createLogger({ level: 'info', format: 'json', destination: process.stdout });
    exporter = await startExporter({ flags: command.flags, logger });
    while (!exporter.poller.ready) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    return { url: exporter.url };
  },

  /** Runs one poll cycle of the started exporter. */
  async runCycle(params: { watchEventLoop: boolean }): Promise<MeasuredRun> {
    const poller = exporter?.poller;
    if (poller === undefined) {
      throw new Error('startExporter first');
    }

    return measure(params.watchEventLoop, async () => {
      const result = await poller.runCycle();

      return { polled: result.succeeded, failed: result.failed + result.deferred };
    });
  },

  /** Runs the plain got + p-limit loop once over the same tasks. */
  async runPlainLoop(params: PlainLoopOptions): Promise<MeasuredRun> {
    return measure(false, async () => {
      const polled = await runPlainLoop(params);

      return { polled, failed: params.taskIds.length - polled };
    });
  },

  async memory(): Promise<MemoryReport> {
    const usage = process.memoryUsage();

    return {
      rssBytes: usage.rss,
      heapUsedBytes: usage.heapUsed,
      heapTotalBytes: usage.heapTotal,
      externalBytes: usage.external,
    };
  },
};

serveRpc(benchChildHandlers);
