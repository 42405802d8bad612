import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { renderLandingPage } from './landing-page.js';
import { createMetricsHandler } from './metrics-handler.js';
import type { TaskExposition } from './task-exposition.js';
import type { TaskStore } from './task-state.js';

/** Outcome of a config reload requested over HTTP. */
export type ReloadOutcome = { ok: true } | { ok: false; error: string };

/** Everything the HTTP server reads from. It never calls DriveQuant itself. */
export interface ServerOptions {
  version: string;
  store: TaskStore;
  registry: Registry;
  taskExposition: TaskExposition;
  /** Whether the first poll cycle has finished. */
  isReady: () => boolean;
  logger: Logger;
  /** Reloads the config; only wired when `--web.enable-lifecycle` is given. */
  reload?: () => Promise<ReloadOutcome>;
  /** Runs before every route (basic auth and headers of `--web.config.file`). */
  guard?: express.RequestHandler;
  /** Extra routes mounted before the 404 fallback (the task API). */
  routers?: express.Router[];
  now?: () => number;
}

/** Creates the express application; the caller decides how it listens. */
export function createApp(options: ServerOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const now = options.now ?? Date.now;
  if (options.guard !== undefined) {
    app.use(options.guard);
  }

  app.get('/metrics', createMetricsHandler(options));

  app.get('/', (request, response) => {
    const registrationUrl = `${request.protocol}://${request.get('host') ?? 'localhost:9850'}/api/v1/tasks`;
    response.type('html').send(
      renderLandingPage({
        version: options.version,
        tasks: options.store.list(),
        nowMs: now(),
        registrationUrl,
      }),
    );
  });

  app.get('/-/healthy', (_request, response) => {
    response.type('text').send('Healthy\n');
  });

  app.get('/-/ready', (_request, response) => {
    if (options.isReady()) {
      response.type('text').send('Ready\n');
    } else {
      response.status(503).type('text').send('Not ready: the first poll cycle has not finished\n');
    }
  });

  app.post('/-/reload', async (_request, response) => {
    if (options.reload === undefined) {
      response
        .status(403)
        .type('text')
        .send('Lifecycle API is not enabled (--web.enable-lifecycle)\n');
      return;
    }

    const outcome = await options.reload();
    if (outcome.ok) {
      response.type('text').send('Configuration reloaded\n');
    } else {
      response.status(500).type('text').send(`Reload failed: ${outcome.error}\n`);
    }
  });

  for (const router of options.routers ?? []) {
    app.use(router);
  }

  for (const [path, allow] of [
    ['/metrics', 'GET, HEAD'],
    ['/', 'GET, HEAD'],
    ['/-/healthy', 'GET, HEAD'],
    ['/-/ready', 'GET, HEAD'],
    ['/-/reload', 'POST'],
  ] as const) {
    app.all(path, (_request, response) => {
      response.status(405).set('Allow', allow).type('text').send('Method not allowed\n');
    });
  }

  app.use((_request, response) => {
    response.status(404).type('text').send('Not found\n');
  });

  // Express's default handler would print the stack trace in the answer.
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    const status = httpStatusOf(error);
    if (status >= 500) {
      options.logger.error({ err: error }, 'HTTP handler failed');
    }
    if (!response.headersSent) {
      response
        .status(status)
        .type('text')
        .send(status >= 500 ? 'Internal error\n' : 'Bad request\n');
    }
  });

  return app;
}

function httpStatusOf(error: unknown): number {
  const status = (error as { status?: unknown; statusCode?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 600) {
    return status;
  }

  return 500;
}
