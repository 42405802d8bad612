import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from './cli.js';
import { enforceClientAuth, httpsServerOptions, type WebTlsConfig } from './web-config.js';

/** A listening server and how to reach it. */
export interface Listener {
  server: Server | HttpsServer;
  /** URL for local clients: `http(s)://HOST:PORT`, with a wildcard host shown as loopback. */
  url: string;
  /** The bound address as `HOST:PORT`, for the startup log line. */
  address: string;
}

/** Starts serving `handler` on the address, over TLS when `tls` is set. */
export function listen(
  handler: RequestListener,
  listenAddress: ListenAddress,
  tls: WebTlsConfig | undefined,
): Promise<Listener> {
  const server =
    tls === undefined
      ? createHttpServer(handler)
      : createHttpsServer(httpsServerOptions(tls), handler);
  if (tls !== undefined) {
    // A reload cannot change the policy (describeUnreloadableChange), so it is fixed here.
    const { clientAuth } = tls;
    server.on('secureConnection', (socket) => enforceClientAuth(socket, clientAuth));
  }
  // Longer than the keep-alive of the load balancers and Prometheus in front, so that the
  // server is never the one to close a connection a client is about to reuse.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenAddress.port, listenAddress.host, () => {
      server.off('error', reject);
      const bound = server.address() as AddressInfo;
      const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      const localHost = host === '[::]' || host === '0.0.0.0' ? '127.0.0.1' : host;
      const scheme = tls === undefined ? 'http' : 'https';
      resolve({
        server,
        url: `${scheme}://${localHost}:${bound.port}`,
        address: `${host}:${bound.port}`,
      });
    });
  });
}
