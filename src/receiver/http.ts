/**
 * OTLP/HTTP receiver: POST /v1/traces with protobuf or JSON bodies, gzip
 * accepted. The size limit holds for the body as sent and after decompression;
 * nothing is allocated from a size the client declared.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzip, inflate } from 'node:zlib';
import { promisify } from 'node:util';
import type { Component } from '../component.ts';
import { DEFAULT_READ_TIMEOUT_MS, listenHttp, readRequestBody, type ByteBudget, type ListeningServer } from '../server/index.ts';
import { jsonTextToProtobuf } from '../otlp/index.ts';
import { receiveBudgetSpent } from './budget.ts';
import type { ReceiverOptions } from './ingest.ts';
import { GrpcCode, exportResponseJson, exportResponseProtobuf, statusJson, statusProtobuf } from './status.ts';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

export interface HttpReceiverOptions extends ReceiverOptions {
  /** Receiver-wide bound on bytes of bodies still being received (shared with OTLP/gRPC). */
  readonly receiveBudget?: ByteBudget | undefined;
  /** A request whose body (or headers) makes no progress for this long is cut. */
  readonly readTimeoutMs?: number;
  /** Connections open at once. */
  readonly maxConnections?: number;
  /** Retry delay suggested when the receive budget is spent. */
  readonly retryAfterMs?: number;
}

type Encoding = 'protobuf' | 'json';

export class HttpReceiver implements Component {
  readonly #options: HttpReceiverOptions;
  #server: ListeningServer | undefined;
  #port = 0;

  constructor(options: HttpReceiverOptions) {
    this.#options = options;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#options.logger.error({ err }, 'OTLP/HTTP request failed unexpectedly');
        if (!res.headersSent) this.#reply(res, 'json', 500, statusJson(GrpcCode.INTERNAL, 'internal error'));
      });
    };
    const { metrics } = this.#options;
    const limits = {
      maxConnections: this.#options.maxConnections ?? 1024,
      readTimeoutMs: this.#options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
      onConnectionRefused: () => metrics.connectionsRefused.inc({ server: 'http' }),
    };
    const server = await listenHttp({ ...this.#options, limits }, handler);
    this.#port = server.port;
    this.#server = server;
    this.#options.logger.info({ address: `${this.#options.host}:${this.#port}` }, 'OTLP/HTTP receiver listening');
  }

  #reply(res: ServerResponse, encoding: Encoding, status: number, body: string | Uint8Array, headers: Record<string, string> = {}): void {
    this.#options.metrics.receiverRequests.inc({ protocol: 'http', code: String(status) });
    res.writeHead(status, {
      'Content-Type': encoding === 'json' ? 'application/json' : 'application/x-protobuf',
      'Content-Length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
      ...headers,
    });
    res.end(body);
  }

  /** `close`: the rest of a body not read is not waited for (a client that never finishes it cannot hold the connection). */
  #error(res: ServerResponse, encoding: Encoding, status: number, code: number, message: string, retryAfterMs?: number, close = !res.req.complete): void {
    const headers: Record<string, string> = {};
    if (retryAfterMs !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
    if (close) headers.Connection = 'close';
    const body = encoding === 'json' ? statusJson(code, message, retryAfterMs) : statusProtobuf(code, message, retryAfterMs);
    this.#reply(res, encoding, status, body, headers);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { metrics, ingest, maxRequestBytes } = this.#options;
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const encoding: Encoding = contentType === 'application/x-protobuf' || contentType === 'application/protobuf' ? 'protobuf' : 'json';
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/v1/traces') {
      req.resume();
      this.#error(res, encoding, 404, 5, `no such path ${path}; OTLP traces are POSTed to /v1/traces`);
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      this.#error(res, encoding, 405, 12, 'use POST');
      return;
    }
    if (contentType !== 'application/json' && encoding !== 'protobuf') {
      req.resume();
      this.#error(res, 'json', 415, GrpcCode.INVALID_ARGUMENT, `unsupported content type "${contentType}"; use application/x-protobuf or application/json`);
      return;
    }
    const contentEncoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (!['identity', 'gzip', 'deflate', ''].includes(contentEncoding)) {
      req.resume();
      this.#error(res, encoding, 415, GrpcCode.INVALID_ARGUMENT, `unsupported content encoding "${contentEncoding}"; use gzip or none`);
      return;
    }
    const auth = this.#options.auth?.(req.headers.authorization) ?? 'ok';
    if (auth !== 'ok') {
      req.resume();
      this.#error(res, encoding, 401, GrpcCode.UNAUTHENTICATED, auth === 'missing' ? 'this receiver needs Authorization: Bearer <token>' : 'the bearer token is not valid');
      return;
    }
    const stopTimer = metrics.receiverRequestDuration.startTimer({ protocol: 'http' });
    try {
      const tooLarge = () => {
        metrics.receiverSpansRejected.inc({ protocol: 'http', reason: 'too_large' });
        this.#error(res, encoding, 413, GrpcCode.RESOURCE_EXHAUSTED, `request larger than ${maxRequestBytes} bytes (after decompression)`);
      };
      const readTimeoutMs = this.#options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
      const read = await readRequestBody(req, { limit: maxRequestBytes, idleTimeoutMs: readTimeoutMs, budget: this.#options.receiveBudget });
      switch (read.kind) {
        case 'ok':
          break;
        case 'too_large':
          tooLarge();
          return;
        case 'busy': {
          metrics.requestsCut.inc({ server: 'http', reason: 'receive_budget' });
          const { message, retryAfterMs } = receiveBudgetSpent(this.#options.retryAfterMs);
          this.#error(res, encoding, 503, GrpcCode.UNAVAILABLE, message, retryAfterMs);
          // The rest of the body is not wanted: closed once the answer is out, not read to its end.
          res.once('finish', () => req.socket.destroy());
          return;
        }
        case 'timeout':
          metrics.requestsCut.inc({ server: 'http', reason: 'read_timeout' });
          this.#error(res, encoding, 408, 4 /* DEADLINE_EXCEEDED */, `no byte of the body arrived for ${readTimeoutMs} ms (receiver.read_timeout)`);
          res.once('finish', () => req.socket.destroy());
          return;
        case 'aborted':
          // The client went away: nobody to answer, nothing to fix here.
          metrics.requestsCut.inc({ server: 'http', reason: 'client_aborted' });
          metrics.receiverRequests.inc({ protocol: 'http', code: '499' });
          this.#options.logger.debug({ remote: req.socket.remoteAddress }, 'OTLP/HTTP client closed the connection before the end of its request');
          return;
      }
      let body = read.body;
      try {
        if (contentEncoding === 'gzip') body = await gunzipAsync(body, { maxOutputLength: maxRequestBytes });
        else if (contentEncoding === 'deflate') body = await inflateAsync(body, { maxOutputLength: maxRequestBytes });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          tooLarge();
          return;
        }
        if (err instanceof Error && 'errno' in err && contentEncoding !== 'identity') {
          this.#error(res, encoding, 400, GrpcCode.INVALID_ARGUMENT, `cannot decompress the body: ${err.message}`);
          return;
        }
        throw err;
      }
      let protobuf: Uint8Array = body;
      let rejected: { spans: number; message: string } | undefined;
      if (encoding === 'json') {
        const converted = jsonTextToProtobuf(body.toString('utf8'));
        if (!converted.ok) {
          metrics.receiverSpansRejected.inc({ protocol: 'http', reason: 'malformed' });
          this.#error(res, encoding, 400, GrpcCode.INVALID_ARGUMENT, `malformed OTLP/JSON: ${converted.error}`);
          return;
        }
        protobuf = converted.protobuf;
        rejected = { spans: converted.rejectedSpans, message: converted.errorMessage };
      }
      const outcome = await ingest.ingest(protobuf, 'http', rejected);
      switch (outcome.kind) {
        case 'accepted':
          this.#reply(
            res,
            encoding,
            200,
            encoding === 'json'
              ? exportResponseJson(outcome.rejectedSpans, outcome.errorMessage)
              : exportResponseProtobuf(outcome.rejectedSpans, outcome.errorMessage),
          );
          return;
        case 'invalid':
          this.#error(res, encoding, 400, GrpcCode.INVALID_ARGUMENT, outcome.message);
          return;
        case 'too_large':
          this.#error(res, encoding, 413, GrpcCode.RESOURCE_EXHAUSTED, outcome.message);
          return;
        case 'unavailable':
          this.#error(res, encoding, 503, GrpcCode.UNAVAILABLE, outcome.message, outcome.retryAfterMs);
          return;
      }
    } finally {
      stopTimer();
    }
  }

  async shutdown(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    await server.close();
  }
}
