/**
 * What the receivers and the admin API share for transport security: TLS
 * files watched and re-read when they change (certificate rotation without a
 * restart), and a constant-time bearer-token check.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Component } from './component.ts';
import type { TlsConfig } from './config/index.ts';
import type { Logger } from './telemetry/logger.ts';

export type AuthResult = 'ok' | 'missing' | 'wrong';

/** Checks `Authorization: Bearer <token>`; always 'ok' when no token is configured. */
export function createTokenCheck(token: string): (authorization: string | string[] | undefined) => AuthResult {
  if (token === '') return () => 'ok';
  // Digests of equal length, compared in constant time: neither content nor length leaks.
  const expected = createHash('sha256').update(token).digest();
  return (authorization) => {
    const header = Array.isArray(authorization) ? authorization[0] : authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (m === null) return 'missing';
    const given = createHash('sha256').update(m[1]!).digest();
    return timingSafeEqual(given, expected) ? 'ok' : 'wrong';
  };
}

/** The same check, for HTTP request headers. */
export function checkHeaders(check: ReturnType<typeof createTokenCheck>): (headers: IncomingHttpHeaders) => AuthResult {
  return (headers) => check(headers.authorization);
}

export interface ServerTlsOptions extends SecureContextOptions {
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/** Options for https.createServer / server.setSecureContext. Throws when a file cannot be read. */
export function readServerTls(tls: TlsConfig): ServerTlsOptions {
  const withCa = tls.clientCaFile !== '';
  return {
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
    ...(withCa ? { ca: readFileSync(tls.clientCaFile) } : {}),
    requestCert: withCa,
    rejectUnauthorized: withCa,
  };
}

/**
 * Watches the TLS files (a stat a second: works for in-place writes, renames and
 * Kubernetes Secret symlink swaps) and hands the new options over when any
 * changed. A half-written or broken pair is logged and the previous one kept.
 */
export class TlsFilesWatcher implements Component {
  readonly #tls: TlsConfig;
  readonly #onChange: (options: ServerTlsOptions) => void;
  readonly #logger: Logger;
  #stamp = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(tls: TlsConfig, onChange: (options: ServerTlsOptions) => void, logger: Logger) {
    this.#tls = tls;
    this.#onChange = onChange;
    this.#logger = logger;
    this.#stamp = this.#currentStamp();
  }

  #currentStamp(): string {
    return [this.#tls.certFile, this.#tls.keyFile, this.#tls.clientCaFile]
      .filter((f) => f !== '')
      .map((f) => {
        try {
          const s = statSync(f);
          return `${s.mtimeMs}:${s.size}:${s.ino}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  start(): Promise<void> {
    this.#timer = setInterval(() => {
      const stamp = this.#currentStamp();
      if (stamp === this.#stamp) return;
      this.#stamp = stamp;
      try {
        this.#onChange(readServerTls(this.#tls));
        this.#logger.info({ cert: this.#tls.certFile }, 'TLS certificate reloaded');
      } catch (err) {
        this.#logger.error({ cert: this.#tls.certFile, error: (err as Error).message }, 'TLS files changed but cannot be used: the previous certificate stays');
      }
    }, 1000);
    this.#timer.unref();
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    return Promise.resolve();
  }
}

/** An HTTP or HTTPS server (certificate reloaded when its files change) listening on host:port. */
export interface ListeningServer {
  /** The bound port (the configured one, or the one chosen for port 0). */
  readonly port: number;
  /** Stops accepting, closes idle connections, and after `graceMs` every connection. */
  close(graceMs?: number): Promise<void>;
}

export async function listenHttp(
  options: { host: string; port: number; tls?: TlsConfig | undefined; logger: Logger },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<ListeningServer> {
  let server: Server | TlsServer;
  let watcher: TlsFilesWatcher | undefined;
  if (options.tls === undefined) server = createServer(handler);
  else {
    const secure = createTlsServer(readServerTls(options.tls), handler);
    watcher = new TlsFilesWatcher(options.tls, (o) => secure.setSecureContext(o), options.logger);
    await watcher.start();
    server = secure;
  }
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
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
}
