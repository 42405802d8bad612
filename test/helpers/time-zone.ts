import { afterEach } from 'vitest';

/** Puts process.env.TZ back as it was after each test of the calling file. */
export function restoreTimeZoneAfterEach(): void {
  const original = process.env.TZ;
  afterEach(() => {
    if (original === undefined) {
      delete process.env.TZ;
    } else {
      process.env.TZ = original;
    }
  });
}
