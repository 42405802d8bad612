// Durations in Prometheus' syntax: one or more `<number><unit>` groups, largest unit first,
// each unit at most once (`1h30m`, `500ms`, `24h`). A bare `0` is allowed, as in Prometheus.
const DURATION_PATTERN =
  /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

const UNIT_MS = [
  365 * 24 * 3_600_000,
  7 * 24 * 3_600_000,
  24 * 3_600_000,
  3_600_000,
  60_000,
  1000,
  1,
];

/** Parses a Prometheus duration into milliseconds, or returns undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') {
    return 0;
  }

  const match = DURATION_PATTERN.exec(text);
  if (match === null || text === '') {
    return undefined;
  }

  let totalMs = 0;
  for (const [index, group] of match.slice(1).entries()) {
    if (group !== undefined) {
      totalMs += Number(group) * (UNIT_MS[index] ?? 0);
    }
  }

  return Number.isSafeInteger(totalMs) ? totalMs : undefined;
}

/** Formats milliseconds back into the shortest Prometheus duration (`90000` is `1m30s`). */
export function formatDuration(totalMs: number): string {
  if (totalMs === 0) {
    return '0s';
  }

  const units = ['y', 'w', 'd', 'h', 'm', 's', 'ms'];
  let restMs = totalMs;
  let text = '';
  for (const [index, unitMs] of UNIT_MS.entries()) {
    const count = Math.floor(restMs / unitMs);
    if (count > 0) {
      text += `${count}${units[index]}`;
      restMs -= count * unitMs;
    }
  }

  return text;
}
