import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A plain node:http server on an ephemeral loopback port that records its requests. */
export interface TestServer {
  /** Base URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Requests received so far, in order. */
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  /** TCP connections accepted so far. */
  readonly connectionCount: number;
  /** Replaces the handler. */
  handle(handler: TestHandler): void;
  close(): Promise<void>;
}

/** Answers one request. */
export type TestHandler = (request: IncomingMessage, response: ServerResponse) => void;

/** Starts a server on 127.0.0.1, port 0. */
export async function startTestServer(handler: TestHandler): Promise<TestServer> {
  let current = handler;
  const requests: TestServer['requests'] = [];
  const server = createServer((request, response) => {
    requests.push({
      method: request.method ?? '',
      url: request.url ?? '',
      headers: request.headers,
    });
    current(request, response);
  });
  let connectionCount = 0;
  server.on('connection', () => {
    connectionCount += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get connectionCount() {
      return connectionCount;
    },
    handle(next) {
      current = next;
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Sends a JSON body with a status. */
export function sendJson(response: ServerResponse, statusCode: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  response.writeHead(statusCode, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}
