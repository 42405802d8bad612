import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Fault } from './faults.js';

/** The content type of every JSON answer, as DriveQuant sends it. */
export const JSON_TYPE = 'application/json';

const HTML_ERROR_PAGE =
  '<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n' +
  '<body><h1>502 Bad Gateway</h1><p>The upstream server is unavailable.</p></body></html>\n';

/** Answers a complete body with an exact `content-length`. */
export function send(res: ServerResponse, code: number, contentType: string, text: string) {
  res.writeHead(code, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Answers a value as JSON. */
export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  send(res, code, JSON_TYPE, JSON.stringify(body));
}

/** Answers a status without a body. */
export function sendEmpty(res: ServerResponse, code: number): void {
  res.writeHead(code);
  res.end();
}

/** The `status` fault: a string body goes out verbatim as text, anything else as JSON. */
export function sendStatusFault(res: ServerResponse, code: number, body: unknown): void {
  if (typeof body === 'string') {
    send(res, code, 'text/plain; charset=utf-8', body);
    return;
  }

  sendJson(res, code, body ?? { error: STATUS_CODES[code] ?? `HTTP ${code}` });
}

/** The `rate-limit` fault: 429, with `Retry-After` verbatim when there is one. */
export function sendRateLimit(res: ServerResponse, retryAfter: string | undefined): void {
  const text = JSON.stringify({ error: 'Too Many Requests' });
  res.writeHead(429, {
    'content-type': JSON_TYPE,
    'content-length': Buffer.byteLength(text),
    ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
  });
  res.end(text);
}

/** The `malformed-json` fault: 200 with JSON cut off mid-object. */
export function sendMalformedJson(res: ServerResponse): void {
  send(res, 200, JSON_TYPE, '{"taskId": "abc", ');
}

/** The `html` fault: 200 with the error page a misconfigured proxy would serve. */
export function sendHtmlPage(res: ServerResponse): void {
  send(res, 200, 'text/html; charset=utf-8', HTML_ERROR_PAGE);
}

/** The `reset` fault: promises the whole body, sends half, then destroys the socket. */
export function sendPartThenReset(res: ServerResponse, code: number, text: string): void {
  const bytes = Buffer.from(text);
  const half = bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2)));
  res.writeHead(code, { 'content-type': JSON_TYPE, 'content-length': bytes.length });

  // Destroying only once the half is flushed makes sure the client sees a partial body.
  res.write(half, () => res.destroy());
}

/**
 * The `drip` fault: sends the body one byte at a time, waiting with `pause` before each.
 * `pause` resolves false once the wait was cut short, and then the answer is abandoned.
 */
export async function sendDrip(
  res: ServerResponse,
  code: number,
  text: string,
  pause: () => Promise<boolean>,
): Promise<void> {
  const bytes = Buffer.from(text);
  res.writeHead(code, { 'content-type': JSON_TYPE, 'content-length': bytes.length });
  res.flushHeaders();
  for (let index = 0; index < bytes.length; index += 1) {
    if (!(await pause()) || res.destroyed) {
      return;
    }

    res.write(bytes.subarray(index, index + 1));
  }

  res.end();
}

/** Renders a normal 200 body, reshaped by the `fields` and `huge` faults. */
export function renderShapedBody(body: object, fault: Fault | undefined): string {
  if (fault?.kind === 'fields') {
    const shaped: Record<string, unknown> = { ...body, ...fault.patch };
    for (const field of fault.remove ?? []) {
      delete shaped[field];
    }

    return JSON.stringify(shaped);
  }

  if (fault?.kind === 'huge') {
    // The padding field goes last, so the body stays one valid object of exactly that size.
    const bare = JSON.stringify({ ...body, padding: '' });
    const paddingBytes = fault.bytes - Buffer.byteLength(bare);

    return paddingBytes > 0 ? `${bare.slice(0, -2)}${'x'.repeat(paddingBytes)}"}` : bare;
  }

  return JSON.stringify(body);
}
