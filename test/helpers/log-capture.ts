import { createLogger, type LogFormat, type LogLevel } from '../../src/logger.js';

/** A logger whose lines are kept in memory instead of written to standard error. */
export interface LogCapture {
  readonly logger: ReturnType<typeof createLogger>;
  /** Every line written so far, as written (one record per line). */
  readonly lines: string[];
  /** The JSON lines parsed; only meaningful for the json format. */
  records(): Record<string, unknown>[];
  /** Every line joined, for "appears nowhere" assertions. */
  text(): string;
}

/** Creates a logger that writes into a capture, through createLogger's `destination`. */
export function captureLogs(options: { level?: LogLevel; format?: LogFormat } = {}): LogCapture {
  const lines: string[] = [];
  const logger = createLogger({
    level: options.level ?? 'debug',
    format: options.format ?? 'json',
    destination: {
      write(chunk: string) {
        for (const line of chunk.split('\n')) {
          if (line !== '') {
            lines.push(line);
          }
        }
        return true;
      },
    },
  });

  return {
    logger,
    lines,
    records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
    text: () => lines.join('\n'),
  };
}
