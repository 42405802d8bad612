import { Agent, request } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** One timed scrape of /metrics. */
export interface Scrape {
  /** From sending the request to the last byte of the body, in milliseconds. */
  ms: number;
  /** Body size on the wire, in bytes. */
  bytes: number;
  /** Whether the body came gzip-encoded. */
  gzip: boolean;
  /** The body, decoded, only when asked for. */
  text?: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** Scrapes `${url}/metrics` once, as Prometheus would, and times it. */
export function scrape(url: string, gzip: boolean, keepText = false): Promise<Scrape> {
  const started = performance.now();

  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1',
      ...(gzip ? { 'accept-encoding': 'gzip' } : {}),
    };
    const req = request(`${url}/metrics`, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const ms = performance.now() - started;
        if (res.statusCode !== 200) {
          reject(new Error(`/metrics answered ${res.statusCode}`));
          return;
        }
        const body = Buffer.concat(chunks);
        const encoded = res.headers['content-encoding'] === 'gzip';
        const text = keepText ? (encoded ? gunzipSync(body) : body).toString('utf8') : undefined;
        resolve({ ms, bytes: body.length, gzip: encoded, text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Scrapes `count` times in a row, one at a time. */
export async function scrapeRepeatedly(
  url: string,
  gzip: boolean,
  count: number,
): Promise<Scrape[]> {
  const scrapes: Scrape[] = [];
  for (let index = 0; index < count; index += 1) {
    scrapes.push(await scrape(url, gzip));
  }

  return scrapes;
}
