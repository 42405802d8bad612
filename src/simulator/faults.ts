import { z } from 'zod';

/** Fields every fault shares. */
export interface FaultBase {
  /** Requests the fault applies to before it clears itself; default forever. */
  times?: number;
}

/** Waits longer, then answers normally. */
export interface LatencyFault extends FaultBase {
  kind: 'latency';
  /** Extra delay before the answer, in milliseconds. */
  ms: number;
}

/** Never answers; the socket stays open until the client gives up or the simulator closes. */
export interface HangFault extends FaultBase {
  kind: 'hang';
}

/** Answers with a fixed HTTP status. */
export interface StatusFault extends FaultBase {
  kind: 'status';
  /** HTTP status code, such as 500, 502, 503, 401 or 404. */
  code: number;
  /** Body: a string is sent verbatim as text, anything else as JSON; default `{"error"}`. */
  body?: unknown;
}

/** Answers 429 Too Many Requests. */
export interface RateLimitFault extends FaultBase {
  kind: 'rate-limit';
  /** `Retry-After` header sent verbatim (seconds or an HTTP date); left out, none is sent. */
  retryAfter?: string;
}

/** Sends the headers and part of the body, then destroys the socket. */
export interface ResetFault extends FaultBase {
  kind: 'reset';
}

/** Answers 200 with a truncated JSON body. */
export interface MalformedJsonFault extends FaultBase {
  kind: 'malformed-json';
}

/** Answers 200 with an HTML error page, as a misconfigured proxy would. */
export interface HtmlFault extends FaultBase {
  kind: 'html';
}

/** Answers the normal 200 body with fields overridden or removed. */
export interface FieldsFault extends FaultBase {
  kind: 'fields';
  /** Fields to set, whatever their type (null, wrong types, negative numbers...). */
  patch?: Record<string, unknown>;
  /** Fields to leave out of the body. */
  remove?: string[];
}

/** Answers the normal 200 body padded to a given size. */
export interface HugeFault extends FaultBase {
  kind: 'huge';
  /** Total body size, in bytes. */
  bytes: number;
}

/** Sends the normal answer one byte at a time. */
export interface DripFault extends FaultBase {
  kind: 'drip';
  /** Delay before each byte, in milliseconds. */
  intervalMs: number;
}

/** A misbehaviour of the task endpoint, chosen by `kind`. */
export type Fault =
  | LatencyFault
  | HangFault
  | StatusFault
  | RateLimitFault
  | ResetFault
  | MalformedJsonFault
  | HtmlFault
  | FieldsFault
  | HugeFault
  | DripFault;

/** The target that applies to every task id without a fault of its own. */
export const ALL_TASKS = '*';

const times = z.int().positive().optional();

const faultSchema: z.ZodType<Fault> = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('latency'), ms: z.number().nonnegative(), times }),
  z.strictObject({ kind: z.literal('hang'), times }),
  z.strictObject({
    kind: z.literal('status'),
    code: z.int().min(100).max(599),
    body: z.unknown().optional(),
    times,
  }),
  z.strictObject({ kind: z.literal('rate-limit'), retryAfter: z.string().optional(), times }),
  z.strictObject({ kind: z.literal('reset'), times }),
  z.strictObject({ kind: z.literal('malformed-json'), times }),
  z.strictObject({ kind: z.literal('html'), times }),
  z.strictObject({
    kind: z.literal('fields'),
    patch: z.record(z.string(), z.unknown()).optional(),
    remove: z.array(z.string()).optional(),
    times,
  }),
  z.strictObject({ kind: z.literal('huge'), bytes: z.int().nonnegative(), times }),
  z.strictObject({ kind: z.literal('drip'), intervalMs: z.number().nonnegative(), times }),
]);

/** Validates a fault that arrives from outside TypeScript (the control endpoint). */
export function parseFault(value: unknown): Fault {
  const result = faultSchema.safeParse(value);
  if (!result.success) {
    throw new TypeError(`invalid fault: ${z.prettifyError(result.error)}`);
  }

  return result.data;
}

/** Faults by target: a task id, or `*` for every task without its own. */
export interface FaultTable {
  /** Sets or, with `undefined`, clears the fault of a target. */
  set(target: string, fault: Fault | undefined): void;
  /** The fault that applies to one request for a task, counting it against `times`. */
  take(taskId: string): Fault | undefined;
  /** Clears every fault. */
  clear(): void;
}

interface ArmedFault {
  fault: Fault;
  remaining: number;
}

/** Creates an empty fault table. */
export function createFaultTable(): FaultTable {
  const armed = new Map<string, ArmedFault>();

  return {
    set(target, fault) {
      if (fault === undefined) {
        armed.delete(target);
        return;
      }

      armed.set(target, { fault, remaining: fault.times ?? Number.POSITIVE_INFINITY });
    },

    take(taskId) {
      const target = armed.has(taskId) ? taskId : ALL_TASKS;
      const entry = armed.get(target);
      if (entry === undefined) {
        return undefined;
      }

      entry.remaining -= 1;
      if (entry.remaining <= 0) {
        armed.delete(target);
      }

      return entry.remaining < 0 ? undefined : entry.fault;
    },

    clear() {
      armed.clear();
    },
  };
}
