/**
 * Formats a Unix time in milliseconds the way DriveQuant writes dates:
 * `2024-12-09T14:14:17.574+0000`, always UTC, whatever the TZ environment variable says.
 */
export function formatDriveQuantDate(epochMs: number): string {
  // toISOString is defined to be UTC, so only the zone suffix differs from DriveQuant's.
  return `${new Date(epochMs).toISOString().slice(0, -1)}+0000`;
}
