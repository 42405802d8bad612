import logfmt from 'logfmt';
import pino, { type DestinationStream, type Logger } from 'pino';
import { API_KEY_HEADER } from './drivequant-client.js';

/** Log levels accepted by `--log.level`. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** Log formats accepted by `--log.format`. */
export const LOG_FORMATS = ['json', 'logfmt'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Options of createLogger. */
export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; standard error by default, a capture in tests. */
  destination?: { write(line: string): unknown };
}

// The key is kept out of every log call by construction (the client never logs and its
// errors carry no headers); these paths are the second line of defence.
const REDACT_PATHS = [
  `headers["${API_KEY_HEADER}"]`,
  `*.headers["${API_KEY_HEADER}"]`,
  `*.*.headers["${API_KEY_HEADER}"]`,
  'headers.authorization',
  '*.headers.authorization',
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'token',
  '*.token',
];

/** Creates the process logger: JSON lines, or logfmt lines on request. */
export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ?? process.stderr;
  const destination: DestinationStream =
    options.format === 'logfmt'
      ? { write: (line: string) => out.write(`${toLogfmt(line)}\n`) }
      : { write: (line: string) => out.write(line) };

  return pino(
    {
      level: options.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      // `error` too: got's errors carry the request options, and pino would print them all.
      serializers: {
        err: serializeError,
        error: (value: unknown) => (value instanceof Error ? serializeError(value) : value),
      },
    },
    destination,
  );
}

/**
 * Errors are logged by name, code and message only. got's errors hold the request options,
 * headers included, and pino's default serialiser would copy every enumerable field.
 */
export function serializeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) {
    return { message: String(error) };
  }

  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };

  return { type: error.name, message: error.message, code, statusCode };
}

function toLogfmt(jsonLine: string): string {
  const record = JSON.parse(jsonLine) as Record<string, unknown>;

  return logfmt.stringify(flatten(record, ''));
}

function flatten(value: Record<string, unknown>, prefix: string): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const name = prefix === '' ? key : `${prefix}.${key}`;
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      Object.assign(flat, flatten(item as Record<string, unknown>, name));
    } else {
      flat[name] = Array.isArray(item) ? JSON.stringify(item) : item;
    }
  }

  return flat;
}
