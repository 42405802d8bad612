import { describe, expect, it } from 'vitest';
import { formatDriveQuantDate, parseDriveQuantDate } from '../../src/drivequant-date.js';
import { DOCUMENTED_CREATED_AT_MS } from '../helpers/documented-task.js';
import { restoreTimeZoneAfterEach } from '../helpers/time-zone.js';

restoreTimeZoneAfterEach();

describe('formatDriveQuantDate', () => {
  it('writes the documented example exactly', () => {
    expect(formatDriveQuantDate(DOCUMENTED_CREATED_AT_MS)).toBe('2024-12-09T14:14:17.574+0000');
  });

  it('keeps the milliseconds when they are zero', () => {
    expect(formatDriveQuantDate(Date.UTC(2025, 0, 1, 0, 0, 0, 0))).toBe(
      '2025-01-01T00:00:00.000+0000',
    );
  });

  it.each(['Pacific/Auckland', 'America/Los_Angeles', 'Asia/Kolkata'])(
    'writes UTC whatever TZ says (%s)',
    (timeZone) => {
      process.env.TZ = timeZone;

      const formatted = formatDriveQuantDate(DOCUMENTED_CREATED_AT_MS);

      // Proves the zone really changed, so the assertion below is not vacuous.
      expect(new Date(DOCUMENTED_CREATED_AT_MS).getTimezoneOffset()).not.toBe(0);
      expect(formatted).toBe('2024-12-09T14:14:17.574+0000');
    },
  );
});

describe('parseDriveQuantDate', () => {
  it.each([
    ['+14:00', '2024-12-10T04:14:17.574+14:00'],
    ['-1400', '2024-12-09T00:14:17.574-1400'],
    ['+0545', '2024-12-09T19:59:17.574+0545'],
  ])('reads the real offset %s', (_offset, text) => {
    expect(parseDriveQuantDate(text)).toBe(DOCUMENTED_CREATED_AT_MS);
  });

  it.each(['+9999', '+2460', '+1401', '-14:01', '+1500', '-0060'])(
    'refuses the impossible offset %s',
    (offset) => {
      expect(parseDriveQuantDate(`2024-12-09T14:14:17.574${offset}`)).toBeUndefined();
    },
  );
});
