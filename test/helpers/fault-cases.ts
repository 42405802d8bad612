import type { Fault } from '../../src/simulator/faults.js';

/** One misbehaviour of DriveQuant and the `reason` label its failed poll is counted under. */
export interface FaultCase {
  /** What goes wrong, for test titles. */
  name: string;
  fault: Fault;
  /** The documented `reason` of `drivequant_task_poll_errors_total`. */
  reason: string;
}

/** A misbehaviour the exporter accepts: the answer is exported as read. */
export interface AcceptedCase {
  name: string;
  fault: Fault;
  /** Labels the task's `drivequant_task_status` sample with value 1 must carry. */
  labels: Record<string, string>;
}

const HOUR_MS = 3_600_000;

/** Every transport and protocol failure the simulator can produce. */
export const TRANSPORT_FAULTS: readonly FaultCase[] = [
  { name: 'latency beyond the timeout', fault: { kind: 'latency', ms: 60_000 }, reason: 'timeout' },
  { name: 'a hang that never answers', fault: { kind: 'hang' }, reason: 'timeout' },
  { name: 'HTTP 500', fault: { kind: 'status', code: 500 }, reason: 'server_error' },
  { name: 'HTTP 502', fault: { kind: 'status', code: 502 }, reason: 'server_error' },
  { name: 'HTTP 503', fault: { kind: 'status', code: 503 }, reason: 'server_error' },
  { name: '429 without Retry-After', fault: { kind: 'rate-limit' }, reason: 'rate_limited' },
  {
    name: '429 with Retry-After in seconds',
    fault: { kind: 'rate-limit', retryAfter: '1' },
    reason: 'rate_limited',
  },
  {
    name: '429 with an absurd Retry-After of one hour',
    fault: { kind: 'rate-limit', retryAfter: '3600' },
    reason: 'rate_limited',
  },
  {
    name: '429 with Retry-After as an HTTP date one hour ahead',
    fault: { kind: 'rate-limit', retryAfter: new Date(Date.now() + HOUR_MS).toUTCString() },
    reason: 'rate_limited',
  },
  {
    name: '429 with an unreadable Retry-After',
    fault: { kind: 'rate-limit', retryAfter: 'soon' },
    reason: 'rate_limited',
  },
  { name: 'HTTP 401', fault: { kind: 'status', code: 401 }, reason: 'unauthorized' },
  { name: 'HTTP 403', fault: { kind: 'status', code: 403 }, reason: 'unauthorized' },
  { name: 'HTTP 404', fault: { kind: 'status', code: 404 }, reason: 'not_found' },
  { name: 'HTTP 400', fault: { kind: 'status', code: 400 }, reason: 'http_error' },
  { name: 'a connection reset mid-response', fault: { kind: 'reset' }, reason: 'network' },
  { name: 'malformed JSON', fault: { kind: 'malformed-json' }, reason: 'invalid_response' },
  { name: 'an HTML error page with 200', fault: { kind: 'html' }, reason: 'invalid_response' },
  {
    name: 'a 1 MiB body',
    fault: { kind: 'huge', bytes: 1024 * 1024 },
    reason: 'invalid_response',
  },
  {
    name: 'a body dripping one byte at a time',
    fault: { kind: 'drip', intervalMs: 50 },
    reason: 'timeout',
  },
];

const invalid = (name: string, fault: Fault): FaultCase => ({
  name,
  fault,
  reason: 'invalid_response',
});

/** Answers that arrive but cannot be exported truthfully: rejected as invalid_response. */
export const INVALID_BODY_FAULTS: readonly FaultCase[] = [
  invalid('a missing status', { kind: 'fields', remove: ['status'] }),
  invalid('a missing nbItems', { kind: 'fields', remove: ['nbItems'] }),
  invalid('a missing createdAt', { kind: 'fields', remove: ['createdAt'] }),
  invalid('a missing taskId', { kind: 'fields', remove: ['taskId'] }),
  invalid('a null nbRemainingItems', { kind: 'fields', patch: { nbRemainingItems: null } }),
  invalid('a null status', { kind: 'fields', patch: { status: null } }),
  invalid('nbItems as a string', { kind: 'fields', patch: { nbItems: '1000' } }),
  invalid('status as a number', { kind: 'fields', patch: { status: 3 } }),
  invalid('a negative nbItems', { kind: 'fields', patch: { nbItems: -1 } }),
  invalid('a negative nbRemainingItems', { kind: 'fields', patch: { nbRemainingItems: -5 } }),
  invalid('a fractional nbItems', { kind: 'fields', patch: { nbItems: 1000.5 } }),
  invalid('more remaining items than items', {
    kind: 'fields',
    patch: { nbRemainingItems: 10_000_000 },
  }),
  invalid('completedAt before createdAt', {
    kind: 'fields',
    patch: {
      status: 'COMPLETED',
      nbRemainingItems: 0,
      completedAt: '2000-01-01T00:00:00.000+0000',
    },
  }),
  invalid('a createdAt that is not a date', { kind: 'fields', patch: { createdAt: 'yesterday' } }),
  invalid('the answer about another task', {
    kind: 'fields',
    patch: { taskId: '000000000000000000000000' },
  }),
];

/** Every fault mode that makes a poll fail. */
export const FAILING_FAULTS: readonly FaultCase[] = [...TRANSPORT_FAULTS, ...INVALID_BODY_FAULTS];

/** Odd answers that are exported as read, per the rule in src/task-response.ts. */
export const ACCEPTED_FAULTS: readonly AcceptedCase[] = [
  {
    name: 'latency within the timeout',
    fault: { kind: 'latency', ms: 30 },
    labels: { task_type: 'PUSH_FAILED_TRIPS' },
  },
  {
    name: 'an unknown status',
    fault: { kind: 'fields', patch: { status: 'PAUSED' } },
    labels: { status: 'PAUSED' },
  },
  {
    name: 'an unknown status with markup in it, sanitised',
    fault: { kind: 'fields', patch: { status: 'on hold <b>' } },
    labels: { status: 'ON_HOLD_B_' },
  },
  {
    name: 'an unknown type',
    fault: { kind: 'fields', patch: { type: 'PUSH_FAILED_EVENTS' } },
    labels: { task_type: 'PUSH_FAILED_EVENTS' },
  },
];

/** Sets a fault through the simulator's test-only control endpoint. */
export async function injectFault(simulatorUrl: string, target: string, fault: Fault) {
  const response = await fetch(`${simulatorUrl}/_control/faults/${encodeURIComponent(target)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
  if (response.status !== 204) {
    throw new Error(`the simulator refused the fault: ${response.status} ${await response.text()}`);
  }
}
