#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { type ExporterFlags, parseCommandLine, USAGE, UsageError } from './cli.js';
import { ConfigError, type ExporterConfig, type LoadedConfig, loadConfigFile } from './config.js';
import { startDemo } from './demo.js';
import { createDriveQuantClient, type DriveQuantClient } from './drivequant-client.js';
import { formatDuration } from './duration.js';
import { createExporterMetrics, type ExporterMetrics } from './exporter-metrics.js';
import { listen } from './http-listener.js';
import { createLogger } from './logger.js';
import { createPoller, type Poller, type PollSettings } from './poller.js';
import { createRateLimiter, type RateLimiter } from './rate-limiter.js';
import { runRetryCommand } from './retry-command.js';
import { createApp, type ReloadOutcome } from './server.js';
import { DEMO_TASK_IDS } from './simulator/demo-tasks.js';
import type { Simulator } from './simulator/simulator.js';
import { runSimulatorCli } from './simulator/simulator-cli.js';
import { createTaskApiRouter, hasValidTaskApiToken } from './task-api.js';
import { TaskExposition } from './task-exposition.js';
import { createTaskFileWatcher, type TaskFileWatcher } from './task-files.js';
import { RegisteredTaskFile } from './task-persistence.js';
import { TaskRegistrations } from './task-registrations.js';
import { TaskStore } from './task-state.js';
import { VERSION } from './version.js';
import {
  createWebGuard,
  loadWebConfigFlag,
  reloadWebConfigFile,
  secureContextOptions,
  type WebConfig,
} from './web-config.js';

/** How long shutdown waits for in-flight polls before aborting them. */
const SHUTDOWN_GRACE_MS = 5000;

/** A running exporter, as main() and the integration tests hold it. */
export interface RunningExporter {
  /** Base URL of the HTTP server, e.g. `http://127.0.0.1:9850` (`https://` with TLS). */
  readonly url: string;
  readonly store: TaskStore;
  readonly poller: Poller;
  /** Re-reads the config file; the old config stays when the new one is invalid. */
  reload(): Promise<ReloadOutcome>;
  /** Stops polling, closes the server and the simulator. */
  close(): Promise<void>;
}

/** How to start an exporter. */
export interface StartOptions {
  flags: ExporterFlags;
  logger: Logger;
  /** Environment for `${VAR}` in the config. */
  env?: NodeJS.ProcessEnv;
}

/** Loads the config (or builds the demo's), wires every part together and starts serving. */
export async function startExporter(options: StartOptions): Promise<RunningExporter> {
  const { flags, logger } = options;
  const env = options.env ?? process.env;
  let webConfig = loadWebConfigFlag(flags.webConfigFile);
  const guard = createWebGuard(webConfig, {
    authenticatedElsewhere: (request) => hasValidTaskApiToken(request, config.api.token),
  });
  let simulator: Simulator | undefined;
  let loaded: LoadedConfig;
  if (flags.demo) {
    ({ simulator, loaded } = await startDemo());
    logger.info(
      { simulator: simulator.url, tasks: DEMO_TASK_IDS.length },
      'demo mode: polling the bundled simulator',
    );
  } else {
    loaded = loadConfigFile(requireConfigFile(flags), env);
  }
  logWarnings(logger, loaded.warnings);
  let config = loaded.config;

  const store = new TaskStore({
    maxTasks: config.poll.maxTasks,
    notFoundLimit: config.poll.notFoundLimit,
    shard: flags.shard,
  });
  // One limiter for the process, so that a reload's new client shares the old one's pace.
  const rateLimiter = createRateLimiter({
    requestsPerSecond: config.poll.maxRequestsPerSecond,
  });
  const metrics = createExporterMetrics({ store, version: VERSION });
  const taskExposition = new TaskExposition(store);
  syncConfigTasks(store, config, logger, metrics);
  // API registrations come before task files: they were acknowledged, files can wait.
  const registrations = new TaskRegistrations({
    store,
    file: flags.demo ? undefined : new RegisteredTaskFile(config.storage.path, flags.shard),
  });
  await loadRegistrations(registrations, logger, metrics);
  const taskFiles = createTaskFileWatcher({
    patterns: config.taskFiles,
    intervalMs: config.poll.intervalMs,
    store,
    logger,
    onRefused: (count) => metrics.observeRegistrationsRefused('max_tasks', count),
    secrets: () => [config.drivequant.apiKey, config.api.token],
  });
  await refreshTaskFiles(taskFiles, logger);

  let client = createClient(config, metrics, rateLimiter);
  const poller = createPoller({
    store,
    client,
    settings: pollSettings(config),
    logger,
    onCycle: (result) => {
      metrics.observeCycle(result);
      reconcileRegistrations(registrations, logger, metrics);
    },
    onSkippedCycles: (count) => metrics.observeSkippedCycles(count),
  });
  metrics.setPollInterval(config.poll.intervalMs);
  metrics.observeConfigLoad(true, Date.now());

  async function reload(): Promise<ReloadOutcome> {
    if (flags.demo || flags.configFile === undefined) {
      logger.warn('reload ignored: demo mode has no configuration file');
      return { ok: false, error: 'there is no configuration file to reload in demo mode' };
    }

    let next: LoadedConfig;
    let nextWebConfig: WebConfig | undefined;
    try {
      next = loadConfigFile(flags.configFile, env);
      nextWebConfig = reloadWebConfigFile(flags.webConfigFile, webConfig);
    } catch (error) {
      const message = error instanceof ConfigError ? error.problems.join('; ') : String(error);
      metrics.observeConfigLoad(false, Date.now());
      logger.error(
        { problems: message },
        'configuration reload failed; keeping the running configuration',
      );
      return { ok: false, error: message };
    }

    const previousClient = client;
    config = next.config;
    rateLimiter.setRate(config.poll.maxRequestsPerSecond);
    client = createClient(config, metrics, rateLimiter);
    store.configure({ maxTasks: config.poll.maxTasks, notFoundLimit: config.poll.notFoundLimit });
    syncConfigTasks(store, config, logger, metrics);
    await taskFiles
      .reconfigure(config.taskFiles, config.poll.intervalMs)
      .catch((error: unknown) => logger.error({ err: error }, 'reading task files failed'));
    poller.reconfigure(client, pollSettings(config));
    webConfig = nextWebConfig;
    guard.update(webConfig);
    if (webConfig?.tls !== undefined && 'setSecureContext' in server) {
      server.setSecureContext(secureContextOptions(webConfig.tls));
    }
    metrics.setPollInterval(config.poll.intervalMs);
    metrics.observeConfigLoad(true, Date.now());
    // The old client may still serve a running cycle; its idle sockets go after it.
    setTimeout(() => previousClient.close(), config.poll.intervalMs).unref();
    logWarnings(logger, next.warnings);
    logger.info(
      { tasks: config.tasks.length, interval: formatDuration(config.poll.intervalMs) },
      'configuration reloaded',
    );

    return { ok: true };
  }

  const app = createApp({
    version: VERSION,
    store,
    registry: metrics.registry,
    taskExposition,
    isReady: () => poller.ready,
    logger,
    reload: flags.enableLifecycle ? reload : undefined,
    guard: guard.handler,
    routers: [
      createTaskApiRouter({
        store,
        registrations,
        token: () => config.api.token,
        terminalRetentionMs: () => config.poll.terminalRetentionMs,
        maxTasks: () => config.poll.maxTasks,
        logger,
        onRefused: (reason) => metrics.observeRegistrationsRefused(reason, 1),
      }),
    ],
  });
  const { server, url, address } = await listen(app, flags.listen, webConfig?.tls);
  taskFiles.start();
  poller.start();
  logger.info(
    {
      version: VERSION,
      address,
      tasks: store.size,
      interval: formatDuration(config.poll.intervalMs),
      shard: flags.shard === undefined ? undefined : `${flags.shard.index} of ${flags.shard.total}`,
    },
    'exporter started',
  );

  return {
    url,
    store,
    poller,
    reload,
    async close() {
      await poller.stop(SHUTDOWN_GRACE_MS);
      taskFiles.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await registrations.close();
      client.close();
      await simulator?.close();
    },
  };
}

function createClient(
  config: ExporterConfig,
  metrics: ExporterMetrics,
  rateLimiter: RateLimiter,
): DriveQuantClient {
  return createDriveQuantClient({
    baseUrl: config.drivequant.baseUrl,
    apiKey: config.drivequant.apiKey,
    timeoutMs: config.drivequant.timeoutMs,
    retries: config.drivequant.retries,
    maxRetryDelayMs: config.poll.intervalMs,
    maxSockets: config.poll.concurrency,
    onAttempt: (observation) => metrics.observeAttempt(observation),
    rateLimiter,
  });
}

function pollSettings(config: ExporterConfig): PollSettings {
  return {
    intervalMs: config.poll.intervalMs,
    concurrency: config.poll.concurrency,
    terminalRetentionMs: config.poll.terminalRetentionMs,
  };
}

function syncConfigTasks(
  store: TaskStore,
  config: ExporterConfig,
  logger: Logger,
  metrics: ExporterMetrics,
): void {
  const refused = store.syncSource('config', config.tasks);
  if (refused.length > 0) {
    metrics.observeRegistrationsRefused('max_tasks', refused.length);
    logger.error(
      { refused: refused.length, maxTasks: config.poll.maxTasks },
      'task limit reached; some configured tasks are not tracked',
    );
  }
}

/** Loads the API registrations; a damaged state file is reported, never fatal. */
async function loadRegistrations(
  registrations: TaskRegistrations,
  logger: Logger,
  metrics: ExporterMetrics,
): Promise<void> {
  const loaded = await registrations.load();
  for (const problem of loaded.problems) {
    logger.error({ problem }, 'registered-task state file is damaged');
  }
  if (loaded.movedAsideTo !== undefined) {
    logger.error(
      { movedAsideTo: loaded.movedAsideTo, kept: loaded.tasks.length },
      'damaged state file moved aside; the tasks it still listed are kept',
    );
  }
  if (loaded.refused.length > 0) {
    metrics.observeRegistrationsRefused('max_tasks', loaded.refused.length);
    logger.error(
      { refused: loaded.refused.length },
      'task limit reached; some registered tasks wait for room',
    );
  }
  if (loaded.importedFrom !== undefined) {
    logger.info(
      { importedFrom: loaded.importedFrom, tasks: loaded.tasks.length },
      'registered tasks taken from the state files of another sharding',
    );
  }
  if (loaded.storageProblem !== undefined) {
    logger.warn(
      { problem: loaded.storageProblem },
      'storage.path cannot be used; task registrations will fail until it is fixed',
    );
  }
  logger.info({ tasks: loaded.tasks.length }, 'registered tasks loaded');
}

/** Forgets registrations of dropped tasks and retries those that found no room. */
function reconcileRegistrations(
  registrations: TaskRegistrations,
  logger: Logger,
  metrics: ExporterMetrics,
): void {
  registrations.reconcile().then(
    (refused) => {
      if (refused.length > 0) {
        metrics.observeRegistrationsRefused('max_tasks', refused.length);
      }
    },
    (error: unknown) =>
      logger.error({ err: error }, 'cannot update the registered-task state file'),
  );
}

async function refreshTaskFiles(taskFiles: TaskFileWatcher, logger: Logger): Promise<void> {
  try {
    await taskFiles.refresh();
  } catch (error) {
    logger.error({ err: error }, 'reading task files failed');
  }
}

function logWarnings(logger: Logger, warnings: string[]): void {
  for (const warning of warnings) {
    logger.warn({ detail: warning }, 'configuration warning');
  }
}

function requireConfigFile(flags: ExporterFlags): string {
  if (flags.configFile === undefined) {
    throw new UsageError('--config.file is required (or try --demo)');
  }

  return flags.configFile;
}

/** Runs the command line; resolves with the exit code, or never while the exporter serves. */
export async function main(argv: string[]): Promise<number> {
  let command: ReturnType<typeof parseCommandLine>;
  try {
    command = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`drivequant-task-exporter: ${(error as Error).message}\nTry --help.\n`);
    return 2;
  }

  switch (command.kind) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`drivequant-task-exporter ${VERSION} (node ${process.version})\n`);
      return 0;
    case 'simulate':
      return runSimulatorCli(command.argv);
    case 'retry':
      return runRetryCommand(command.argv);
  }

  const { flags } = command;
  if (flags.configCheck) {
    return checkConfig(flags);
  }

  const logger = createLogger({ level: flags.logLevel, format: flags.logFormat });
  let exporter: RunningExporter;
  try {
    exporter = await startExporter({ flags, logger });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`drivequant-task-exporter: ${error.message}\n`);
      return 1;
    }
    logger.error({ err: error }, 'cannot start');
    return 1;
  }

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    void exporter.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  process.on('SIGHUP', () => {
    void exporter.reload();
  });

  return new Promise<number>(() => undefined);
}

function checkConfig(flags: ExporterFlags): number {
  try {
    const loaded = flags.demo
      ? { config: { tasks: DEMO_TASK_IDS }, warnings: [] }
      : loadConfigFile(requireConfigFile(flags));
    loadWebConfigFlag(flags.webConfigFile);
    for (const warning of loaded.warnings) {
      process.stdout.write(`warning: ${warning}\n`);
    }
    process.stdout.write(`configuration is valid: ${loaded.config.tasks.length} tasks\n`);

    return 0;
  } catch (error) {
    process.stderr.write(`drivequant-task-exporter: ${(error as Error).message}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) {
    return false;
  }
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // exitCode rather than process.exit(): exit() would cut off output still queued for a
  // pipe (a long --help or error list). The unref'd timer ends a process kept alive by a
  // stray handle.
  const finish = (code: number) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 1000).unref();
  };
  main(process.argv.slice(2)).then(finish, (error: unknown) => {
    process.stderr.write(`drivequant-task-exporter: ${(error as Error)?.message ?? error}\n`);
    finish(1);
  });
}
