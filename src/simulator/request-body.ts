import type { IncomingMessage } from 'node:http';

/** A request body the control endpoint cannot use; `statusCode` is the answer to give. */
export class RequestBodyError extends Error {
  /** HTTP status to answer: 400 or 413. */
  readonly statusCode: number;

  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'RequestBodyError';
    this.statusCode = statusCode;
  }
}

/** Reads and parses a JSON request body of at most `maxBytes` bytes. */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;

    // An oversized body is still drained, so the 413 reaches the client on a live socket.
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      if (size > maxBytes) {
        reject(new RequestBodyError(413, `body is larger than ${maxBytes} bytes`));
        return;
      }

      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        reject(new RequestBodyError(400, `body is not JSON: ${(error as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}
