/**
 * What the receivers and the admin API share for transport security: TLS
 * files watched and re-read when they change (certificate rotation without a
 * restart), a constant-time bearer-token check, and the limits of their HTTP
 * servers (connections, read timeout, request bodies).
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

export async function listenHttp(
  options: { host: string; port: number; tls?: TlsConfig | undefined; logger: Logger; limits?: HttpLimits | undefined },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<ListeningServer> {
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
    await watcher.start();
    server = secure;
  }
  server.keepAliveTimeout = 65_000;
  if (limits !== undefined) {
    server.maxConnections = limits.maxConnections;
    const refused = limits.onConnectionRefused;
    if (refused !== undefined) server.on('drop', () => refused());
  }
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

/** A bound on bytes held at once (the receiver's bytes of requests still being received). */
export interface ByteBudget {
  /** Counts `bytes` unless that passes the bound (then nothing is counted). */
  tryTake(bytes: number): boolean;
  release(bytes: number): void;
}

export type BodyResult =
  | { readonly kind: 'ok'; readonly body: Buffer }
  /** Declared (Content-Length) or sent past the limit. */
  | { readonly kind: 'too_large' }
  /** The shared budget is spent: try again later (only with a budget). */
  | { readonly kind: 'busy' }
  /** No byte arrived for the read timeout. */
  | { readonly kind: 'timeout' }
  /** The client closed the connection before the end of the body. */
  | { readonly kind: 'aborted' };

interface BodyOptions {
  readonly limit: number;
  readonly idleTimeoutMs: number;
}

/**
 * Reads a request body, never allocating from what the client declared: refuses
 * a declared Content-Length over `limit` before reading, counts each chunk
 * against `budget` as it arrives (released when the body is complete or given
 * up), and gives up when no byte arrived for `idleTimeoutMs`. After any result
 * but 'ok' the rest of the body is discarded as it arrives; the caller answers
 * with `Connection: close` (or closes the socket on 'timeout').
 */
export function readRequestBody(req: IncomingMessage, options: BodyOptions): Promise<Exclude<BodyResult, { kind: 'busy' }>>;
export function readRequestBody(req: IncomingMessage, options: BodyOptions & { readonly budget: ByteBudget | undefined }): Promise<BodyResult>;
export function readRequestBody(req: IncomingMessage, options: BodyOptions & { readonly budget?: ByteBudget | undefined }): Promise<BodyResult> {
  const { limit, idleTimeoutMs, budget } = options;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve({ kind: 'too_large' });
  }
  return new Promise<BodyResult>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      chunks.length = 0;
      budget?.release(size);
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), idleTimeoutMs);
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      timer.refresh();
      if (size + chunk.length > limit) return finish({ kind: 'too_large' });
      if (budget !== undefined && !budget.tryTake(chunk.length)) return finish({ kind: 'busy' });
      size += chunk.length;
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      const body = Buffer.concat(chunks, size);
      finish({ kind: 'ok', body });
    });
    // 'error' (ECONNRESET "aborted") and 'close' before the end: the client went away.
    req.on('error', () => finish({ kind: 'aborted' }));
    req.on('close', () => {
      if (!req.complete) finish({ kind: 'aborted' });
    });
  });
}
