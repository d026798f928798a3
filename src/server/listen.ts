/**
 * HTTP and HTTPS listeners with the limits the receiver and the admin API share
 * (connections at once, read timeout, keep-alive), the certificate reloaded when its
 * files change, and a close that lets requests finish for a grace period.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TlsConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { readServerTls, TlsFilesWatcher } from './tls.ts';

/** An HTTP or HTTPS server (certificate reloaded when its files change) listening on host:port. */
export interface ListeningServer {
  /** The bound port (the configured one, or the one chosen for port 0). */
  readonly port: number;
  /** Stops accepting, closes idle connections, and after `graceMs` every connection. */
  close(graceMs?: number): Promise<void>;
}

/** receiver.read_timeout's and api.read_timeout's default, for servers made without a configuration. */
export const DEFAULT_READ_TIMEOUT_MS = 30_000;

export interface HttpLimits {
  /** Connections open at once; more are closed as they arrive. */
  readonly maxConnections: number;
  /** Request headers must arrive within it (bodies: see readRequestBody). */
  readonly readTimeoutMs: number;
  /** Called for each connection refused over maxConnections. */
  readonly onConnectionRefused?: () => void;
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsConfig | undefined;
  readonly logger: Logger;
  readonly limits?: HttpLimits | undefined;
}

/** A server made with the limits and TLS, not yet bound: `server` for a framework to serve on, `listen` to bind it. */
export interface HttpServer {
  readonly server: Server | TlsServer;
  /** Binds host:port and starts reloading the certificate; the server answers with `handler` from then on. */
  listen(): Promise<ListeningServer>;
}

export function createHttpServer(options: HttpServerOptions, handler: (req: IncomingMessage, res: ServerResponse) => void): HttpServer {
  let server: Server | TlsServer;
  let watcher: TlsFilesWatcher | undefined;
  const limits = options.limits;
  // Node checks headersTimeout every connectionsCheckingInterval (30 s by default): checked often enough for the read timeout.
  const timeouts =
    limits === undefined
      ? {}
      : {
          headersTimeout: limits.readTimeoutMs,
          requestTimeout: Math.max(300_000, limits.readTimeoutMs),
          connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(limits.readTimeoutMs / 4))),
        };
  if (options.tls === undefined) server = createServer(timeouts, handler);
  else {
    const secure = createTlsServer({ ...readServerTls(options.tls), ...timeouts }, handler);
    watcher = new TlsFilesWatcher(options.tls, (o) => secure.setSecureContext(o), options.logger);
    server = secure;
  }
  server.keepAliveTimeout = 65_000;
  if (limits !== undefined) {
    server.maxConnections = limits.maxConnections;
    const refused = limits.onConnectionRefused;
    if (refused !== undefined) server.on('drop', () => refused());
  }
  const listen = async (): Promise<ListeningServer> => {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await watcher?.start();
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;
    return {
      port,
      async close(graceMs = 5000) {
        await watcher?.shutdown();
        server.closeIdleConnections();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => server.closeAllConnections(), graceMs);
          server.close(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      },
    };
  };
  return { server, listen };
}

/** createHttpServer and listen: a server answering with `handler` on host:port. */
export function listenHttp(options: HttpServerOptions, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<ListeningServer> {
  return createHttpServer(options, handler).listen();
}

/** Node's answers to a request it cannot read, by error code (400 Bad Request otherwise). */
const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * Answers a request that cannot be read (malformed, headers too large or too slow) as
 * Node does for a server without a 'clientError' listener, the receiver's: the status
 * line, `Connection: close`, no body; then the connection is closed. For frameworks
 * that listen for 'clientError' themselves (fastify's clientErrorHandler).
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (socket.destroyed) return;
  if (socket.writable) socket.write(`HTTP/1.1 ${CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`);
  socket.destroy(err);
}
