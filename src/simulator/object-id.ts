import { randomBytes } from 'node:crypto';

// Laid out like a MongoDB ObjectId (seconds, per-process random, counter) so that
// generated ids look like DriveQuant's and stay unique without a lookup.
const processRandomHex = randomBytes(5).toString('hex');
let counter = randomBytes(3).readUIntBE(0, 3);

/** Creates a fresh 24-hex-character task id in the shape of a MongoDB ObjectId. */
export function createObjectId(nowMs: number): string {
  counter = (counter + 1) % 0x1000000;
  const seconds = Math.floor(nowMs / 1000) % 0x100000000;

  const secondsHex = seconds.toString(16).padStart(8, '0');

  return `${secondsHex}${processRandomHex}${counter.toString(16).padStart(6, '0')}`;
}
