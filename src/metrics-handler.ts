import type { Request, Response } from 'express';
import type { Registry } from 'prom-client';
import { completeGzip } from './gzip-member.js';
import type { TaskExposition } from './task-exposition.js';

/** What /metrics serves. */
export interface MetricsHandlerOptions {
  /** The exporter-wide metrics, rendered live at every scrape. */
  registry: Registry;
  /** The per-task series, cached until a poll lands. */
  taskExposition: TaskExposition;
}

/**
 * Serves /metrics: the cached per-task block first, then prom-client's small live part.
 * With `Accept-Encoding: gzip` (Prometheus always sends it) the block's compressed bytes
 * are cached too, and only the live part is compressed per scrape.
 */
export function createMetricsHandler(options: MetricsHandlerOptions) {
  const { registry, taskExposition } = options;

  return async (request: Request, response: Response): Promise<void> => {
    const gzip = request.acceptsEncodings('gzip', 'identity') === 'gzip';
    const [live, tasks] = await Promise.all([
      registry.metrics(),
      gzip ? taskExposition.gzipPrefix() : taskExposition.bytes(),
    ]);
    const liveBytes = Buffer.from(live);
    const chunks = Buffer.isBuffer(tasks) ? [tasks, liveBytes] : completeGzip(tasks, liveBytes);

    response.status(200);
    response.setHeader('Content-Type', registry.contentType);
    response.setHeader('Vary', 'Accept-Encoding');
    if (gzip) {
      response.setHeader('Content-Encoding', 'gzip');
    }
    response.setHeader(
      'Content-Length',
      chunks.reduce((sum, chunk) => sum + chunk.length, 0),
    );
    // Written as they are rather than concatenated: the plain block is about 1 KB per task.
    for (const chunk of chunks.slice(0, -1)) {
      response.write(chunk);
    }
    response.end(chunks.at(-1));
  };
}
