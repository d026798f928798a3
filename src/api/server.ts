/**
 * The admin HTTP API (port 12011): health, readiness, Prometheus metrics, and
 * the routes other components register (rules, violations, replay). JSON in and
 * out; errors are `{ "error": { "code", "message" } }` with a stable code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TlsConfig } from '../config/index.ts';
import { DEFAULT_READ_TIMEOUT_MS, listenHttp, readRequestBody, type ListeningServer } from '../server/index.ts';
import type { Component } from '../component.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { apiError } from './errors.ts';
import openapi from './openapi.json' with { type: 'json' };

export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** Parsed JSON body (undefined when empty). */
  readonly body: unknown;
}

export interface ApiResponse {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Raw text body (e.g. Prometheus exposition) instead of JSON. */
  readonly text?: string;
}

export type RouteHandler = (req: ApiRequest) => Promise<ApiResponse> | ApiResponse;

export interface Route {
  readonly method: string;
  /** Path pattern with `{name}` parameters, e.g. /v1/rules/{id}. */
  readonly path: string;
  readonly handler: RouteHandler;
}

/** A readiness condition: ready (perhaps degraded: working, but something is wrong; said in the reasons), or why not. */
export type ReadinessCheck = () => { ready: true; degraded?: string } | { ready: false; reason: string };


export interface ApiServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsConfig | undefined;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly maxBodyBytes?: number;
  /** Connections open at once. */
  readonly maxConnections?: number;
  /** A request whose headers or body get no byte for this long is cut. */
  readonly readTimeoutMs?: number;
}

interface CompiledRoute {
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: string[];
  readonly handler: RouteHandler;
}

export class ApiServer implements Component {
  readonly #o: ApiServerOptions;
  readonly #routes: CompiledRoute[] = [];
  readonly #checks = new Map<string, ReadinessCheck>();
  #server: ListeningServer | undefined;
  #port = 0;

  constructor(options: ApiServerOptions) {
    this.#o = options;
    this.addRoute({ method: 'GET', path: '/health', handler: () => ({ status: 200, body: { status: 'ok' } }) });
    this.addRoute({ method: 'GET', path: '/ready', handler: () => this.#ready() });
    this.addRoute({ method: 'GET', path: '/openapi.json', handler: () => ({ status: 200, body: openapi }) });
    this.addRoute({
      method: 'GET',
      path: '/metrics',
      handler: async () => ({
        status: 200,
        text: await options.metrics.registry.metrics(),
        headers: { 'Content-Type': options.metrics.registry.contentType },
      }),
    });
  }

  get port(): number {
    return this.#port;
  }

  addRoute(route: Route): void {
    const names: string[] = [];
    const pattern = new RegExp(
      '^' +
        route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
          names.push(name);
          return '([^/]+)';
        }) +
        '$',
    );
    this.#routes.push({ method: route.method, pattern, names, handler: route.handler });
  }

  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.#checks.set(name, check);
  }

  #ready(): ApiResponse {
    const notReady: Record<string, string> = {};
    const degraded: Record<string, string> = {};
    for (const [name, check] of this.#checks) {
      const r = check();
      if (!r.ready) notReady[name] = r.reason;
      else if (r.degraded !== undefined) degraded[name] = r.degraded;
    }
    if (Object.keys(notReady).length > 0) return { status: 503, body: { status: 'not ready', reasons: { ...degraded, ...notReady } } };
    return Object.keys(degraded).length === 0
      ? { status: 200, body: { status: 'ready' } }
      : { status: 200, body: { status: 'degraded', reasons: degraded } };
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#o.logger.error({ err }, 'admin API request failed unexpectedly');
        if (!res.headersSent) send(res, apiError('INTERNAL', 'internal error'));
      });
    };
    const limits = {
      maxConnections: this.#o.maxConnections ?? 64,
      readTimeoutMs: this.#o.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
      onConnectionRefused: () => this.#o.metrics.connectionsRefused.inc({ server: 'api' }),
    };
    const server = await listenHttp({ ...this.#o, limits }, handler);
    this.#port = server.port;
    this.#server = server;
    this.#o.logger.info({ address: `${this.#o.host}:${this.#port}` }, 'admin API listening');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/$/, '') : url.pathname;
    const method = req.method ?? 'GET';
    let pathMatched = false;
    for (const route of this.#routes) {
      const m = route.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params = decodeParams(route.names, m);
      if (typeof params === 'string') {
        req.resume();
        send(res, apiError('INVALID_PATH', params));
        return;
      }
      const body = await this.#readJsonBody(req, res);
      if (body === undefined) return;
      if (!body.ok) {
        send(res, body.response);
        return;
      }
      send(res, await route.handler({ method, path, params, query: url.searchParams, headers: req.headers, body: body.value }));
      return;
    }
    req.resume();
    send(res, pathMatched ? apiError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`) : apiError('NOT_FOUND', `no route ${path}`));
  }

  /**
   * The JSON body; undefined when the request is over without an answer to give
   * (the client went away, or sent nothing for the read timeout: its connection is closed).
   */
  async #readJsonBody(req: IncomingMessage, res: ServerResponse): Promise<{ ok: true; value: unknown } | { ok: false; response: ApiResponse } | undefined> {
    const limit = this.#o.maxBodyBytes ?? 1024 * 1024;
    const read = await readRequestBody(req, { limit, idleTimeoutMs: this.#o.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS });
    switch (read.kind) {
      case 'too_large': {
        const response = apiError('BODY_TOO_LARGE', `request body larger than ${limit} bytes`);
        return { ok: false, response: { ...response, headers: { Connection: 'close' } } };
      }
      case 'timeout':
        this.#o.metrics.requestsCut.inc({ server: 'api', reason: 'read_timeout' });
        this.#o.logger.debug({ remote: req.socket.remoteAddress }, 'admin API request body stalled: connection closed');
        res.destroy();
        return undefined;
      case 'aborted':
        this.#o.metrics.requestsCut.inc({ server: 'api', reason: 'client_aborted' });
        this.#o.logger.debug({ remote: req.socket.remoteAddress }, 'admin API client closed the connection before the end of its request');
        return undefined;
      case 'ok':
        break;
    }
    if (read.body.length === 0) return { ok: true, value: undefined };
    try {
      return { ok: true, value: JSON.parse(read.body.toString('utf8')) as unknown };
    } catch (err) {
      return { ok: false, response: apiError('INVALID_JSON', `request body is not JSON: ${(err as Error).message}`) };
    }
  }

  async shutdown(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    await server.close(3000);
  }
}

function send(res: ServerResponse, response: ApiResponse): void {
  if (response.text !== undefined) {
    res.writeHead(response.status, { 'Content-Type': 'text/plain; charset=utf-8', ...response.headers });
    res.end(response.text);
    return;
  }
  const body = response.body === undefined ? '' : JSON.stringify(response.body);
  res.writeHead(response.status, {
    ...(body === '' ? {} : { 'Content-Type': 'application/json' }),
    ...response.headers,
  });
  res.end(body);
}

/** Path parameters, percent-decoded; a string saying which one is not valid percent-encoding. */
function decodeParams(names: readonly string[], match: RegExpExecArray): Record<string, string> | string {
  const params: Record<string, string> = {};
  for (const [i, name] of names.entries()) {
    const raw = match[i + 1]!;
    try {
      params[name] = decodeURIComponent(raw);
    } catch {
      return `path parameter ${name} is not valid percent-encoding: ${JSON.stringify(raw)}`;
    }
  }
  return params;
}
