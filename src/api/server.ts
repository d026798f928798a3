/**
 * The admin HTTP API (port 12011): health, readiness, Prometheus metrics, and
 * the routes other components register (rules, violations, replay), served by
 * fastify: its router, its body validation against the component schemas
 * (openapi-schemas.ts), and the OpenAPI document built by @fastify/swagger from
 * the route schemas (GET /openapi.json). JSON in and out; errors are
 * `{ "error": { "code", "message" } }` with a stable code (errors.ts).
 *
 * What fastify would answer on its own is answered as the API always has:
 * bodies are read as JSON whatever their Content-Type (empty: no body), within
 * the body limit and the read timeout (src/server/body.ts); an unknown path is
 * NOT_FOUND and a known path with another method METHOD_NOT_ALLOWED (no HEAD
 * routes of their own); a path that is not valid percent-encoding INVALID_PATH,
 * naming the parameter.
 */
import type { IncomingMessage } from 'node:http';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Component } from '../component.ts';
import type { TlsConfig } from '../config/index.ts';
import { answerClientError, createHttpServer, DEFAULT_READ_TIMEOUT_MS, readRequestBody, type AuthResult, type HttpServer, type ListeningServer } from '../server/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { apiError } from './errors.ts';
import { bodyValidator, componentSchemas, type BodyProblem, type ComponentName } from './openapi-schemas.ts';

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
  /** Raw bytes (e.g. the console's files), sent with `headers` as given: they name the Content-Type. */
  readonly bytes?: Buffer;
}

export type RouteHandler = (req: ApiRequest) => Promise<ApiResponse> | ApiResponse;

/** A response as the OpenAPI document states it: its body's schema per media type, or `type: 'null'` for none. */
export type ResponseSchema =
  | {
      readonly description: string;
      readonly content: Readonly<Record<string, { readonly schema: { readonly $ref: ComponentName } | Readonly<Record<string, unknown>> }>>;
      readonly headers?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
    }
  | { readonly description: string; readonly type: 'null' };

/** A JSON response of `schema` (a component's name, or a schema). */
export const jsonResponse = (description: string, schema: ComponentName | Readonly<Record<string, unknown>>): ResponseSchema => ({
  description,
  content: { 'application/json': { schema: typeof schema === 'string' ? { $ref: schema } : schema } },
});

/** What the OpenAPI document says of a route; `body` is also what its requests are validated against. */
export interface RouteSchema {
  readonly summary: string;
  readonly description?: string;
  /** Path parameters (`{name}`), documented: each route checks its own and names what is wrong. */
  readonly params?: Readonly<Record<string, unknown>>;
  /** Query parameters, documented: each route checks its own and names what is wrong. */
  readonly querystring?: Readonly<Record<string, unknown>>;
  readonly body?: { readonly $ref: ComponentName };
  readonly security?: ReadonlyArray<Readonly<Record<string, readonly string[]>>>;
  readonly response: Readonly<Record<string, ResponseSchema>>;
}

export interface Route {
  readonly method: string;
  /** Path pattern with `{name}` parameters, e.g. /v1/rules/{id}. */
  readonly path: string;
  readonly schema: RouteSchema;
  /** A call that needs the bearer token: checked after the body is read, before it is validated. */
  readonly auth?: (headers: ApiRequest['headers']) => AuthResult;
  /** The answer to a body that does not match `schema.body` (one problem per field). */
  readonly invalidBody?: (problems: readonly BodyProblem[]) => ApiResponse;
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

/** What validators see for a request without a body (fastify hands them null for both `null` and none). */
const NO_BODY = Symbol('no body');

/** A body that is not JSON: answered INVALID_JSON after the route is known (the body was read whole: the connection stays). */
class UnreadableJson {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** A body over the limit: answered BODY_TOO_LARGE (fastify closes the connection: the client may still be sending). */
class BodyTooLarge extends Error {}

/** A request without an answer to give: the client went away, or its connection was closed for the read timeout. */
class RequestGone extends Error {}

/** A body the route's schema refuses. */
class InvalidBody extends Error {
  readonly problems: readonly BodyProblem[];
  constructor(problems: readonly BodyProblem[]) {
    super('invalid body');
    this.problems = problems;
  }
}

const BODY_NAMES: Partial<Record<ComponentName, string>> = { RuleInput: 'the rule', RuleDraft: 'the rule', RuleTry: 'the rule', ReplayRequest: 'the replay request' };

/** A response with the Error body, for route schemas. */
export const errorResponse = (description: string): ResponseSchema => jsonResponse(description, 'Error');

/** GET /ready's body: its status, and the reasons of each check not ready or degraded. */
const READINESS = {
  type: 'object',
  required: ['status'],
  properties: { status: { enum: ['ready', 'degraded', 'not ready'] }, reasons: { type: 'object', additionalProperties: { type: 'string' } } },
};

/** The path as the API names it in its answers: percent-encoded, without a trailing slash. */
function pathOf(url: string): string {
  const pathname = new URL(url, 'http://localhost').pathname;
  return pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
}

interface PathPattern {
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

export class ApiServer implements Component {
  readonly #o: ApiServerOptions;
  readonly #routes: Route[] = [];
  /** Each route's path as a pattern, to tell METHOD_NOT_ALLOWED from NOT_FOUND and name a badly encoded parameter. */
  readonly #patterns: PathPattern[] = [];
  readonly #checks = new Map<string, ReadinessCheck>();
  #app: FastifyInstance | undefined;
  #served: Array<{ method: string; url: string }> = [];
  #server: ListeningServer | undefined;
  #port = 0;

  constructor(options: ApiServerOptions) {
    this.#o = options;
    this.addRoute({
      method: 'GET',
      path: '/health',
      schema: { summary: 'Process alive', response: { 200: jsonResponse('Alive', { type: 'object', properties: { status: { const: 'ok' } } }) } },
      handler: () => ({ status: 200, body: { status: 'ok' } }),
    });
    this.addRoute({
      method: 'GET',
      path: '/ready',
      schema: {
        summary: 'Ready for traffic: config loaded, transport connected, rules compiled',
        response: {
          200: jsonResponse(
            'Ready: {"status": "ready"}; or ready but degraded, {"status": "degraded", "reasons": {check: why}} (e.g. rules_quarantined: the quarantined rules, why, since when)',
            READINESS,
          ),
          503: jsonResponse('Not ready, with reasons', READINESS),
        },
      },
      handler: () => this.#ready(),
    });
    this.addRoute({
      method: 'GET',
      path: '/metrics',
      schema: { summary: 'Prometheus text format', response: { 200: { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } } },
      handler: async () => ({
        status: 200,
        text: await options.metrics.registry.metrics(),
        headers: { 'Content-Type': options.metrics.registry.contentType },
      }),
    });
    this.addRoute({
      method: 'GET',
      path: '/openapi.json',
      schema: { summary: 'This document', response: { 200: jsonResponse('OpenAPI document', { type: 'object' }) } },
      handler: () => ({ status: 200, body: this.#app!.swagger() }),
    });
  }

  get port(): number {
    return this.#port;
  }

  /** Adds a route; all are added before start (fastify's routes and the OpenAPI document are built from them then). */
  addRoute(route: Route): void {
    if (this.#app !== undefined) throw new Error(`route ${route.method} ${route.path} added after the admin API started`);
    this.#routes.push(route);
    const names: string[] = [];
    const pattern = new RegExp(
      '^' +
        route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
          names.push(name);
          return '([^/]+)';
        }) +
        '$',
    );
    this.#patterns.push({ method: route.method, pattern, names });
  }

  addReadinessCheck(name: string, check: ReadinessCheck): void {
    this.#checks.set(name, check);
  }

  /** The routes fastify serves (method and path, `{name}` parameters), once built. */
  served(): ReadonlyArray<{ method: string; url: string }> {
    return this.#served;
  }

  /** The OpenAPI document of the routes added so far (builds the server without listening). */
  async document(): Promise<Record<string, unknown>> {
    const app = await this.#build(undefined);
    const document = app.swagger() as unknown as Record<string, unknown>;
    await app.close();
    return document;
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
    let http: HttpServer | undefined;
    const limits = {
      maxConnections: this.#o.maxConnections ?? 64,
      readTimeoutMs: this.#o.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
      onConnectionRefused: () => this.#o.metrics.connectionsRefused.inc({ server: 'api' }),
    };
    const app = await this.#build((handler) => (http = createHttpServer({ ...this.#o, limits }, handler)).server);
    let server: ListeningServer;
    try {
      server = await http!.listen();
    } catch (err) {
      await app.close();
      throw err;
    }
    this.#app = app;
    this.#port = server.port;
    this.#server = server;
    this.#o.logger.info({ address: `${this.#o.host}:${this.#port}` }, 'admin API listening');
  }

  /** Builds the fastify instance with every route; `serverFactory` gives it the server to answer on (none: not served). */
  async #build(serverFactory: ((handler: Parameters<typeof createHttpServer>[1]) => HttpServer['server']) | undefined): Promise<FastifyInstance> {
    this.#served = [];
    const idleTimeoutMs = this.#o.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    const app = Fastify({
      logger: false,
      ...(serverFactory !== undefined ? { serverFactory } : {}),
      // fastify's body limit, enforced as the receiver's is (src/server/body.ts: a declared Content-Length over it refused unread).
      bodyLimit: this.#o.maxBodyBytes ?? 1024 * 1024,
      exposeHeadRoutes: false,
      return503OnClosing: false,
      requestIdHeader: false,
      // Paths up to the header limit: a rule id is as long as its schema allows, not the router's 100 characters.
      routerOptions: { ignoreTrailingSlash: true, maxParamLength: 64 * 1024 },
      // A request that cannot be read is answered as the receiver's servers answer it (Node's answer, no body).
      clientErrorHandler: answerClientError,
      frameworkErrors: (err, request, reply) => {
        if (err.code === 'FST_ERR_BAD_URL') return void this.#send(reply, this.#unrouted(request.raw.method ?? 'GET', request.raw.url ?? '/'));
        return void this.#send(reply, apiError('INTERNAL', 'internal error'));
      },
    });
    // A GET's body is read as any other's, as the API always has (fastify's GET has none by default).
    app.addHttpMethod('GET', { hasBody: true, overrideExisting: true });
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'betrace admin API',
          version: '1.0.0',
          description:
            'Health, readiness, metrics, rules and violations. Mutating calls need `Authorization: Bearer <token>` when a token is configured. Errors are `{"error": {"code", "message"}}` with a stable code (src/api/README.md: errors).',
        },
        servers: [{ url: 'http://127.0.0.1:12011' }],
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      },
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    });
    for (const schema of componentSchemas()) app.addSchema(schema);
    // Answers are written as JSON here (send): the response schemas document them, they do not reshape them.
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    app.setValidatorCompiler(({ schema, httpPart }) => {
      const name = (schema as { $ref?: string }).$ref as ComponentName | undefined;
      if (httpPart !== 'body' || name === undefined) return () => true;
      const problems = bodyValidator(name, BODY_NAMES[name] ?? 'the body');
      return (data: unknown) => {
        const found = problems(data === NO_BODY ? undefined : data);
        return found === undefined ? true : { error: new InvalidBody(found) };
      };
    });

    // Every body is read as JSON, as before fastify: the Content-Type is not consulted.
    app.addHook('onRequest', (request, _reply, done) => {
      delete request.raw.headers['content-type'];
      done();
    });
    app.addContentTypeParser('*', (request, _payload, done) => {
      if (request.is404) {
        request.raw.resume();
        done(null, undefined);
        return;
      }
      const limit = request.routeOptions.bodyLimit;
      void readRequestBody(request.raw, { limit, idleTimeoutMs }).then((read) => {
        switch (read.kind) {
          case 'too_large':
            return done(new BodyTooLarge(`request body larger than ${limit} bytes`), undefined);
          case 'timeout':
            this.#o.metrics.requestsCut.inc({ server: 'api', reason: 'read_timeout' });
            this.#o.logger.debug({ remote: request.raw.socket.remoteAddress }, 'admin API request body stalled: connection closed');
            request.raw.socket.destroy();
            return done(new RequestGone('read timeout'), undefined);
          case 'aborted':
            this.#o.metrics.requestsCut.inc({ server: 'api', reason: 'client_aborted' });
            this.#o.logger.debug({ remote: request.raw.socket.remoteAddress }, 'admin API client closed the connection before the end of its request');
            return done(new RequestGone('client aborted'), undefined);
          case 'ok':
            break;
        }
        if (read.body.length === 0) return done(null, undefined);
        try {
          done(null, JSON.parse(read.body.toString('utf8')) as unknown);
        } catch (err) {
          done(null, new UnreadableJson(`request body is not JSON: ${(err as Error).message}`));
        }
      });
    });

    app.setNotFoundHandler((request, reply) => void this.#send(reply, this.#unrouted(request.method, request.url)));
    app.setErrorHandler((err, request, reply) => void this.#failed(err, request, reply, undefined));
    app.addHook('onRoute', (options) => {
      this.#served.push({ method: String(options.method), url: options.url.replace(/:(\w+)/g, '{$1}') });
    });

    for (const route of this.#routes) {
      app.route({
        method: route.method,
        url: route.path.replace(/\{(\w+)\}/g, ':$1'),
        schema: route.schema,
        errorHandler: (err, request, reply) => void this.#failed(err, request, reply, route),
        // In this order, as before fastify: the body read (INVALID_JSON), the token, then the body's schema.
        preValidation: (request, reply, done) => {
          if (request.body instanceof UnreadableJson) return void this.#send(reply, apiError('INVALID_JSON', request.body.message));
          const auth = route.auth?.(request.headers);
          if (auth === 'missing') return void this.#send(reply, apiError('UNAUTHENTICATED', 'this call needs Authorization: Bearer <token>'));
          if (auth === 'wrong') return void this.#send(reply, apiError('FORBIDDEN', 'the bearer token is not valid'));
          if (request.body === undefined) request.body = NO_BODY;
          done();
        },
        handler: async (request, reply) => {
          const params = request.params as Record<string, string>;
          const response = await route.handler({
            method: request.method,
            path: pathOf(request.url),
            params,
            query: new URL(request.url, 'http://localhost').searchParams,
            headers: request.headers,
            body: request.body === NO_BODY ? undefined : request.body,
          });
          return this.#send(reply, response);
        },
      });
    }
    await app.ready();
    return app;
  }

  /** The answer for a request no route takes: METHOD_NOT_ALLOWED, INVALID_PATH (naming the parameter) or NOT_FOUND. */
  #unrouted(method: string, url: string): ApiResponse {
    const path = pathOf(url);
    let pathMatched = false;
    for (const p of this.#patterns) {
      const m = p.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (p.method !== method) continue;
      for (const [i, name] of p.names.entries()) {
        const raw = m[i + 1]!;
        try {
          decodeURIComponent(raw);
        } catch {
          return apiError('INVALID_PATH', `path parameter ${name} is not valid percent-encoding: ${JSON.stringify(raw)}`);
        }
      }
    }
    return pathMatched ? apiError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`) : apiError('NOT_FOUND', `no route ${path}`);
  }

  #failed(err: unknown, request: FastifyRequest, reply: FastifyReply, route: Route | undefined): FastifyReply | undefined {
    if (err instanceof RequestGone) {
      reply.hijack();
      return undefined;
    }
    if (err instanceof BodyTooLarge) return this.#send(reply, { ...apiError('BODY_TOO_LARGE', err.message), headers: { Connection: 'close' } });
    if (err instanceof InvalidBody && route?.invalidBody !== undefined) return this.#send(reply, route.invalidBody(err.problems));
    this.#o.logger.error({ err, method: request.method, path: pathOf(request.url) }, 'admin API request failed unexpectedly');
    return this.#send(reply, apiError('INTERNAL', 'internal error'));
  }

  #send(reply: FastifyReply, response: ApiResponse): FastifyReply {
    reply.code(response.status);
    if (response.bytes !== undefined) return reply.headers({ ...response.headers }).send(response.bytes);
    if (response.text !== undefined) {
      return reply.headers({ 'Content-Type': 'text/plain; charset=utf-8', ...response.headers }).send(response.text);
    }
    if (response.body === undefined) return reply.headers({ ...response.headers }).send();
    // A Buffer: fastify adds a charset to a JSON string's Content-Type, which the API has never sent.
    return reply.headers({ 'Content-Type': 'application/json', ...response.headers }).send(Buffer.from(JSON.stringify(response.body)));
  }

  async shutdown(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    await server.close(3000);
    await this.#app?.close();
    this.#app = undefined;
  }
}
