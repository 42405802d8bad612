import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseCommandLine } from '../src/cli.js';
import { createLogger } from '../src/logger.js';
import { type RunningExporter, startExporter } from '../src/main.js';
import { serveRpc } from './child-rpc.js';
import { type PlainLoopOptions, runPlainLoop } from './plain-loop.js';
import type { MemoryFigures } from './report.js';

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

let exporter: RunningExporter | undefined;

/** Starts V8's sampling profiler in this process; stop() gives the .cpuprofile contents. */
async function startProfiler(): Promise<{ stop(): Promise<object> }> {
  const session = new Session();
  session.connect();
  const post = (method: string) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, (error, result) => (error ? reject(error) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.start');

  return {
    async stop() {
      const { profile } = (await post('Profiler.stop')) as { profile: object };
      session.disconnect();

      return profile;
    },
  };
}

/** How to measure a run: event-loop delay, and a CPU profile written to `profileFile`. */
interface MeasureOptions {
  watchEventLoop: boolean;
  profileFile?: string;
}

async function measure(
  options: MeasureOptions,
  run: () => Promise<{ polled: number; failed: number }>,
): Promise<MeasuredRun> {
  const histogram = options.watchEventLoop ? monitorEventLoopDelay({ resolution: 5 }) : undefined;
  const profiler = options.profileFile === undefined ? undefined : await startProfiler();
  histogram?.enable();
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const { polled, failed } = await run();
  const wallMs = performance.now() - wallBefore;
  const cpu = process.cpuUsage(cpuBefore);
  histogram?.disable();
  if (profiler !== undefined && options.profileFile !== undefined) {
    writeFileSync(options.profileFile, JSON.stringify(await profiler.stop()));
  }

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
  async runCycle(params: MeasureOptions): Promise<MeasuredRun> {
    const poller = exporter?.poller;
    if (poller === undefined) {
      throw new Error('startExporter first');
    }

    return measure(params, async () => {
      const result = await poller.runCycle();

      return { polled: result.succeeded, failed: result.failed + result.deferred };
    });
  },

  /** Runs the plain got + p-limit loop once over the same tasks. */
  async runPlainLoop(params: PlainLoopOptions & { profileFile?: string }): Promise<MeasuredRun> {
    return measure({ watchEventLoop: false, profileFile: params.profileFile }, async () => {
      const polled = await runPlainLoop(params);

      return { polled, failed: params.taskIds.length - polled };
    });
  },

  async memory(): Promise<MemoryFigures> {
    const usage = process.memoryUsage();

    return {
      rssBytes: usage.rss,
      heapUsedBytes: usage.heapUsed,
      heapTotalBytes: usage.heapTotal,
      externalBytes: usage.external,
      arrayBuffersBytes: usage.arrayBuffers,
    };
  },
};

serveRpc(benchChildHandlers);
