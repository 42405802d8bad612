/** The value below which `share` (0 to 1) of the sorted values fall, nearest-rank. */
export function percentile(values: readonly number[], share: number): number {
  if (values.length === 0) {
    return Number.NaN;
  }

  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(share * sorted.length) - 1));

  return sorted[rank] ?? Number.NaN;
}

/** The median, as the nearest-rank 50th percentile. */
export function median(values: readonly number[]): number {
  return percentile(values, 0.5);
}

/** Rounds to `digits` decimals, for a readable report. */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;

  return Math.round(value * factor) / factor;
}
