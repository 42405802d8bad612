import { describe, expect, it } from 'vitest';
import { parseDriveQuantDate } from '../../src/drivequant-date.js';
import { parseTaskResponse, sanitizeLabelValue } from '../../src/task-response.js';
import { InvalidResponseError } from '../../src/upstream-error.js';
import { DOCUMENTED_TASK, DOCUMENTED_TASK_ID } from '../helpers/documented-task.js';
import { restoreTimeZoneAfterEach } from '../helpers/time-zone.js';

function body(overrides: Record<string, unknown> = {}, remove: string[] = []): string {
  const answer: Record<string, unknown> = { ...DOCUMENTED_TASK, ...overrides };
  for (const field of remove) {
    delete answer[field];
  }

  return JSON.stringify(answer);
}

/** Parses an answer expected to be refused; returns the error. */
function refusalOf(text: string): InvalidResponseError {
  try {
    parseTaskResponse(text, DOCUMENTED_TASK_ID);
  } catch (error) {
    if (error instanceof InvalidResponseError) {
      return error;
    }
    throw error;
  }

  throw new Error('the answer was accepted');
}

restoreTimeZoneAfterEach();

describe('a consistent answer', () => {
  it('gives the documented example exactly, creation in Unix seconds with milliseconds', () => {
    const snapshot = parseTaskResponse(body(), DOCUMENTED_TASK_ID);

    expect(snapshot).toEqual({
      taskId: DOCUMENTED_TASK_ID,
      taskType: 'PUSH_FAILED_TRIPS',
      status: 'IN_PROGRESS',
      items: 321,
      remainingItems: 12,
      createdSeconds: 1733753657.574,
    });
  });

  it('gives the completion time of a completed task', () => {
    const text = body({
      status: 'COMPLETED',
      nbRemainingItems: 0,
      completedAt: '2024-12-09T14:26:51.895+0000',
    });

    const snapshot = parseTaskResponse(text, DOCUMENTED_TASK_ID);

    expect(snapshot.completedSeconds).toBe(1733754411.895);
    expect(snapshot.status).toBe('COMPLETED');
  });

  it('reads a null completedAt as absent', () => {
    const snapshot = parseTaskResponse(body({ completedAt: null }), DOCUMENTED_TASK_ID);

    expect(snapshot).not.toHaveProperty('completedSeconds');
  });

  it('ignores fields DriveQuant may add later', () => {
    const snapshot = parseTaskResponse(
      body({ priority: 'high', owner: { id: 1 } }),
      DOCUMENTED_TASK_ID,
    );

    expect(snapshot.items).toBe(321);
  });

  it('accepts a completedAt equal to createdAt', () => {
    const text = body({ status: 'COMPLETED', completedAt: DOCUMENTED_TASK.createdAt });

    const snapshot = parseTaskResponse(text, DOCUMENTED_TASK_ID);

    expect(snapshot.completedSeconds).toBe(snapshot.createdSeconds);
  });
});

describe('an unknown status or type', () => {
  it('is accepted and sanitised to upper case, digits and underscores', () => {
    const text = body({ status: 'paused-by ops', type: 'push_failed_"alerts"</td>' });

    const snapshot = parseTaskResponse(text, DOCUMENTED_TASK_ID);

    expect(snapshot.status).toBe('PAUSED_BY_OPS');
    expect(snapshot.taskType).toBe('PUSH_FAILED__ALERTS_TD_');
  });

  it('is cut to 64 characters so that no answer can blow up a label', () => {
    const text = body({ status: 'X'.repeat(200) });

    const snapshot = parseTaskResponse(text, DOCUMENTED_TASK_ID);

    expect(snapshot.status).toBe('X'.repeat(64));
  });

  it.each([
    ['Completed', 'COMPLETED'],
    ['in progress', 'IN_PROGRESS'],
    ['ÉCHEC', '_CHEC'],
    ['a\nb', 'A_B'],
  ])('sanitises %j to %s', (text, expected) => {
    expect(sanitizeLabelValue(text)).toBe(expected);
  });
});

describe('an inconsistent answer', () => {
  it.each([
    ['a body that is not JSON', '{"taskId": "abc", ', 'the answer is not JSON'],
    ['an HTML page', '<html><body>502</body></html>', 'the answer is not JSON'],
    ['JSON null', 'null', 'field body: Invalid input: expected object, received null'],
    ['a JSON list', '[]', 'field body: Invalid input: expected object, received array'],
    [
      'a missing nbItems',
      body({}, ['nbItems']),
      'field nbItems: Invalid input: expected number, received undefined',
    ],
    [
      'nbItems as a string',
      body({ nbItems: '321' }),
      'field nbItems: Invalid input: expected number, received string',
    ],
    [
      'a negative nbRemainingItems',
      body({ nbRemainingItems: -1 }),
      'field nbRemainingItems: Too small: expected number to be >=0',
    ],
    [
      'a fractional nbItems',
      body({ nbItems: 3.5 }),
      'field nbItems: Invalid input: expected int, received number',
    ],
    [
      'an nbItems past the safe integers',
      body({ nbItems: 2 ** 53 }),
      'field nbItems: Too big: expected int to be <=9007199254740991',
    ],
    [
      'an nbItems that overflows to Infinity',
      body().replace('"nbItems":321', '"nbItems":1e400'),
      'field nbItems: Invalid input: expected number, received Infinity',
    ],
    [
      'a status of 201 characters',
      body({ status: 'S'.repeat(201) }),
      'field status: Too big: expected string to have <=200 characters',
    ],
    [
      'a completedAt that is a number',
      body({ completedAt: 5 }),
      'field completedAt: Invalid input: expected string, received number',
    ],
    [
      'an empty taskId',
      body({ taskId: '' }),
      'field taskId: Too small: expected string to have >=1 characters',
    ],
    [
      'a null type',
      body({ type: null }),
      'field type: Invalid input: expected string, received null',
    ],
    [
      'a missing status',
      body({}, ['status']),
      'field status: Invalid input: expected string, received undefined',
    ],
    [
      'an empty status',
      body({ status: '' }),
      'field status: Too small: expected string to have >=1 characters',
    ],
    [
      'a missing createdAt',
      body({}, ['createdAt']),
      'field createdAt: Invalid input: expected string, received undefined',
    ],
    [
      'another task',
      body({ taskId: '6753030831fe9826412bac5d' }),
      'the answer is about another task',
    ],
    [
      'more remaining items than items',
      body({ nbRemainingItems: 322 }),
      'nbRemainingItems is larger than nbItems',
    ],
    [
      'a createdAt that is not a date',
      body({ createdAt: 'yesterday' }),
      'field createdAt: not a date',
    ],
    [
      'a createdAt without a zone',
      body({ createdAt: '2024-12-09T14:14:17.574' }),
      'field createdAt: not a date',
    ],
    [
      'a createdAt on a day that does not exist',
      body({ createdAt: '2024-02-30T14:14:17.574+0000' }),
      'field createdAt: not a date',
    ],
    [
      'a createdAt with an offset of +9999',
      body({ createdAt: '2024-12-09T14:14:17.574+9999' }),
      'field createdAt: not a date',
    ],
    [
      'a createdAt with 60 offset minutes',
      body({ createdAt: '2024-12-09T14:14:17.574+2460' }),
      'field createdAt: not a date',
    ],
    [
      'a completedAt with an offset past 14 hours',
      body({ status: 'COMPLETED', completedAt: '2024-12-09T14:14:17.574-14:01' }),
      'field completedAt: not a date',
    ],
    [
      'a completedAt that is not a date',
      body({ completedAt: 'soon' }),
      'field completedAt: not a date',
    ],
    [
      'a completion before the creation',
      body({ status: 'COMPLETED', completedAt: '2024-12-09T14:14:17.573+0000' }),
      'completedAt is before createdAt',
    ],
  ])('is refused as INVALID_RESPONSE: %s', (_what, text, message) => {
    const error = refusalOf(text);

    expect(error.message).toBe(message);
    expect(error.code).toBe('INVALID_RESPONSE');
    expect(error.reason).toBe('invalid_response');
    expect(error.statusCode).toBe(200);
    expect(error.retryable).toBe(false);
  });
});

describe('dates', () => {
  it.each([
    ['+0000', '2024-12-09T14:14:17.574+0000', 1733753657574],
    ['Z', '2024-12-09T14:14:17.574Z', 1733753657574],
    ['+0100', '2024-12-09T15:14:17.574+0100', 1733753657574],
    ['-05:30', '2024-12-09T08:44:17.574-05:30', 1733753657574],
    ['no fraction', '2024-12-09T14:14:17+0000', 1733753657000],
    ['microseconds', '2024-12-09T14:14:17.574999+0000', 1733753657574],
  ])('reads an offset of %s', (_what, text, expectedMs) => {
    expect(parseDriveQuantDate(text)).toBe(expectedMs);
  });

  it.each(['Pacific/Auckland', 'America/Los_Angeles', 'Asia/Kolkata', 'UTC'])(
    'gives the same creation time whatever TZ says (%s)',
    (timeZone) => {
      process.env.TZ = timeZone;

      const snapshot = parseTaskResponse(body(), DOCUMENTED_TASK_ID);

      expect(snapshot.createdSeconds).toBe(1733753657.574);
    },
  );

  it('really runs in another zone when TZ is set, so the test above is not vacuous', () => {
    process.env.TZ = 'Pacific/Auckland';

    expect(new Date(1733753657574).getTimezoneOffset()).toBe(-780);
  });
});
