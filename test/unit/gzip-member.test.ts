import { gunzipSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { completeGzip, compressGzipPrefix } from '../../src/gzip-member.js';

const BLOCK = Buffer.from(
  Array.from(
    { length: 5000 },
    (_, index) => `drivequant_task_items{task_id="t${index}"} ${index}\n`,
  ).join(''),
);
const LIVE = Buffer.from('# TYPE drivequant_up gauge\ndrivequant_up 1\n');

describe('completeGzip', () => {
  it('makes a gzip stream of the prefix data followed by the tail, checked by gunzip', async () => {
    const prefix = await compressGzipPrefix([BLOCK]);

    const body = Buffer.concat(completeGzip(prefix, LIVE));

    expect(gunzipSync(body).toString()).toBe(`${BLOCK}${LIVE}`);
  });

  it('makes one gzip member, which clients that stop after the first member read whole', async () => {
    const prefix = await compressGzipPrefix([BLOCK]);

    const body = Buffer.concat(completeGzip(prefix, LIVE));
    const deflated = body.subarray(10, -8);

    expect(inflateRawSync(deflated).toString()).toBe(`${BLOCK}${LIVE}`);
    expect(body.readUInt32LE(body.length - 4)).toBe(BLOCK.length + LIVE.length);
  });

  it('compresses data that arrives in many pieces, from an async source', async () => {
    async function* pieces() {
      for (let start = 0; start < BLOCK.length; start += 1000) {
        yield BLOCK.subarray(start, start + 1000);
      }
    }

    const prefix = await compressGzipPrefix(pieces());
    const body = Buffer.concat(completeGzip(prefix, LIVE));

    expect(prefix.length).toBe(BLOCK.length);
    expect(gunzipSync(body).toString()).toBe(`${BLOCK}${LIVE}`);
  });

  it('is done with each piece before asking for the next, so one buffer can be refilled', async () => {
    async function* refilled() {
      const buffer = Buffer.alloc(1000);
      for (let start = 0; start < BLOCK.length; start += 1000) {
        const end = Math.min(BLOCK.length, start + 1000);
        BLOCK.copy(buffer, 0, start, end);
        yield buffer.subarray(0, end - start);
      }
    }

    const prefix = await compressGzipPrefix(refilled());

    expect(gunzipSync(Buffer.concat(completeGzip(prefix, LIVE))).toString()).toBe(
      `${BLOCK}${LIVE}`,
    );
  });

  it('completes one cached prefix with different tails', async () => {
    const prefix = await compressGzipPrefix([BLOCK]);

    const first = gunzipSync(Buffer.concat(completeGzip(prefix, Buffer.from('a 1\n'))));
    const second = gunzipSync(Buffer.concat(completeGzip(prefix, Buffer.from('b 2\n'))));

    expect(first.toString().endsWith('\na 1\n')).toBe(true);
    expect(second.toString().endsWith('\nb 2\n')).toBe(true);
  });

  it('handles an empty prefix and an empty tail', async () => {
    const prefix = await compressGzipPrefix([]);

    const onlyTail = gunzipSync(Buffer.concat(completeGzip(prefix, LIVE)));
    const nothing = gunzipSync(Buffer.concat(completeGzip(prefix, Buffer.alloc(0))));

    expect(onlyTail.toString()).toBe(LIVE.toString());
    expect(nothing.length).toBe(0);
  });

  it('compresses exposition text to a small fraction of its size', async () => {
    const prefix = await compressGzipPrefix([BLOCK]);

    expect(prefix.bytes.length).toBeLessThan(BLOCK.length / 5);
    expect([...prefix.bytes.subarray(0, 3)]).toEqual([0x1f, 0x8b, 0x08]);
  });
});
