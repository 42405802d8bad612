import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['24h', 86_400_000],
    ['2d', 172_800_000],
    ['1w', 604_800_000],
    ['1y', 31_536_000_000],
    ['1h30m', 5_400_000],
    ['1m30s250ms', 90_250],
    ['0', 0],
    ['0s', 0],
  ])('reads %s as %d ms', (text, expectedMs) => {
    const ms = parseDuration(text);

    expect(ms).toBe(expectedMs);
  });

  it.each([
    ['an empty string', ''],
    ['a bare number', '30'],
    ['a decimal', '1.5h'],
    ['a negative duration', '-5s'],
    ['an upper-case unit', '30S'],
    ['a unit Prometheus does not know', '3min'],
    ['units out of order', '30m1h'],
    ['a repeated unit', '1s1s'],
    ['spaces', '30 s'],
    ['words', '30 seconds'],
    ['a unit alone', 's'],
    ['a duration too large for a safe integer', '999999999999y'],
  ])('refuses %s', (_what, text) => {
    const ms = parseDuration(text);

    expect(ms).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [500, '500ms'],
    [30_000, '30s'],
    [90_000, '1m30s'],
    [86_400_000, '1d'],
    [5_400_250, '1h30m250ms'],
  ])('writes %d ms as %s', (ms, expected) => {
    const text = formatDuration(ms);

    expect(text).toBe(expected);
  });

  it.each([1, 999, 61_001, 90_061_001, 31_536_000_000 + 1])(
    'writes %d ms as a duration that parses back to the same value',
    (ms) => {
      const text = formatDuration(ms);

      expect(parseDuration(text)).toBe(ms);
    },
  );
});
