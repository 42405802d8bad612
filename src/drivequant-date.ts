// DriveQuant writes dates as `2024-12-09T14:14:17.574+0000` (Java's `yyyy-MM-dd'T'HH:mm:ss.SSSZ`).
// `Date.parse` does not promise to read a `+0000` offset without a colon, and reads an
// offset-less date in local time, so the fields are taken apart here and assembled in UTC.
const DATE_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/;

/** Parses a DriveQuant date into Unix milliseconds, or returns undefined when it is not one. */
export function parseDriveQuantDate(text: string): number | undefined {
  const match = DATE_PATTERN.exec(text);
  if (match === null) {
    return undefined;
  }

  const [, year, month, day, hour, minute, second, fraction = '0', offset = 'Z'] = match;
  const fields = [year, month, day, hour, minute, second].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [y, mo, d, h, mi, s] = fields;
  const millis = Number(fraction.padEnd(3, '0').slice(0, 3));
  const utcMs = Date.UTC(y, mo - 1, d, h, mi, s, millis);

  // Date.UTC rolls 2024-02-31 over into March; a date that does not survive the round trip
  // was not a real date.
  const check = new Date(utcMs);
  if (
    check.getUTCFullYear() !== y ||
    check.getUTCMonth() !== mo - 1 ||
    check.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    s > 59
  ) {
    return undefined;
  }
  const offsetMs = parseOffsetMs(offset);
  if (offsetMs === undefined) {
    return undefined;
  }

  return utcMs - offsetMs;
}

/** Formats Unix milliseconds the way DriveQuant does, always in UTC. */
export function formatDriveQuantDate(unixMs: number): string {
  return new Date(unixMs).toISOString().replace('Z', '+0000');
}

/** Real offsets run from -12:00 to +14:00; the widest is allowed either way. */
const MAX_OFFSET_MINUTES = 14 * 60;

/** An offset in milliseconds east of UTC, or undefined for one no clock has (`+9999`). */
function parseOffsetMs(offset: string): number | undefined {
  if (offset === 'Z') {
    return 0;
  }

  const sign = offset.startsWith('-') ? -1 : 1;
  const digits = offset.slice(1).replace(':', '');
  const hours = Number(digits.slice(0, 2));
  const minutes = Number(digits.slice(2, 4));
  const totalMinutes = hours * 60 + minutes;
  if (minutes > 59 || totalMinutes > MAX_OFFSET_MINUTES) {
    return undefined;
  }

  return sign * totalMinutes * 60_000;
}
