/**
 * OTLP/gRPC receiver: opentelemetry.proto.collector.trace.v1.TraceService/Export.
 *
 * betrace accepts the TCP connections itself and hands them to grpc-js
 * (Server.createConnectionInjector), so that it can limit them and see what
 * each has read (socket.bytesRead). grpc-js assembles a whole message before
 * the handler sees it; what betrace bounds around that:
 * - connections (receiver.max_connections) and streams per connection
 *   (receiver.grpc.max_concurrent_streams);
 * - the token, checked by a server interceptor when the metadata arrives:
 *   without it the call is answered UNAUTHENTICATED and its message never read;
 * - bytes of messages still being received, against the receiver-wide
 *   receive budget: a call is admitted with a first share of it (else refused
 *   UNAVAILABLE with a retry delay), and its connection takes more as it reads
 *   (what it read since one of its calls began receiving, minus the messages
 *   completed since, checked every CHECK_INTERVAL_MS); when one needs more
 *   while the budget is spent, the connection holding most (perhaps that one)
 *   is closed;
 * - progress: a connection with a call still receiving that reads no byte for
 *   receiver.read_timeout is closed, freeing what its calls held. After a call
 *   is refused (its client may never end it), so is one that stays silent for
 *   the read timeout, or sends on past what its admitted calls account for
 *   (more than a flow-control window), with no admitted call waiting for its
 *   answer. A call admitted after the refusal whose message arrives shows the
 *   client went on (as gRPC clients do: a retry on the same channel), and the
 *   connection is treated as any other again.
 * On a plaintext port, a connection whose first bytes are an HTTP/1.x request (an OTLP/HTTP
 * client pointed at the gRPC port) is answered 400 with a reason phrase saying where OTLP/HTTP
 * is, instead of grpc-js's bytes that such clients cannot parse; the rest go to grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { connect } from 'node:tls';
import type { Component } from '../component.ts';
import { TRACE_SERVICE_DEFINITION } from '../otlp/index.ts';
import { DEFAULT_READ_TIMEOUT_MS } from '../server/index.ts';
import { RateLimitedLog } from '../telemetry/logger.ts';
import { receiveBudgetSpent, type ReceiveBudget } from './budget.ts';
import type { ReceiverOptions } from './ingest.ts';
import { GrpcCode, exportResponseProtobuf, statusProtobuf } from './status.ts';

export interface GrpcReceiverOptions extends ReceiverOptions {
  /**
   * receiver.grpc.flow_control_window as configured. Not applied (see HTTP2_WINDOW below): a value
   * above 64 KiB is logged at start as not in effect.
   */
  readonly flowControlWindowBytes?: number | undefined;
  /** Receiver-wide bound on bytes of messages still being received (shared with OTLP/HTTP). */
  readonly receiveBudget?: ReceiveBudget | undefined;
  /** A connection with a call still receiving that reads no byte for this long is closed. */
  readonly readTimeoutMs?: number;
  /** Connections open at once; more are closed as they arrive. */
  readonly maxConnections?: number;
  /** Concurrent streams (calls) per connection, offered in HTTP/2 SETTINGS. */
  readonly maxConcurrentStreams?: number;
  /** Retry delay suggested when the receive budget is spent. */
  readonly retryAfterMs?: number;
  /** Where OTLP/HTTP is served (e.g. http://127.0.0.1:4318/v1/traces), told to HTTP/1.x requests; undefined: not served. */
  readonly httpEndpoint?: () => string | undefined;
}

/** The request line of an HTTP/1.x request (an HTTP/2 client starts with "PRI * HTTP/2.0"). */
const HTTP1_REQUEST = /^(?:GET|POST|PUT|HEAD|OPTIONS|DELETE|PATCH) \S* HTTP\/1\.[01]\r?\n/;

/** One accepted TCP connection, keyed by its remote address and port (what grpc-js reports per call). */
interface Connection {
  readonly socket: Socket;
  /** socket.bytesRead at the last check, and when it last changed. */
  lastBytes: number;
  lastProgressAt: number;
  /** Calls admitted whose message has not fully arrived. */
  receiving: number;
  /** socket.bytesRead when each of those calls was admitted, and the refusals on the connection by then. */
  readonly starts: Set<CallStart>;
  /** Calls whose message arrived and whose answer is not sent yet: closing the connection would lose their answers. */
  answering: number;
  /** socket.bytesRead when `receiving` last rose from 0, and bytes of the messages completed since (with framing). */
  base: number;
  completed: number;
  /** Bytes it holds by the last check, and bytes of the receive budget it has taken (at least ADMISSION_BYTES per call receiving). */
  held: number;
  reserved: number;
  /** A call was refused before its message, and no call admitted since has had its message arrive. */
  refused: boolean;
  /** Calls refused on the connection so far. */
  refusals: number;
  /** socket.bytesRead at the last refusal, and the bytes read since that admitted calls account for (their messages, framed). */
  refusedAt: number;
  explained: number;
}

interface CallStart {
  readonly at: number;
  readonly refusals: number;
}

/** How often connections are checked while any is watched: what a burst can pass the receive budget by is what arrives in this time. */
const CHECK_INTERVAL_MS = 20;
/** The share of the receive budget a call is admitted with: small, so that a connection that stalls is cut holding little. */
const ADMISSION_BYTES = 64 * 1024;
/**
 * The HTTP/2 flow-control window the receiver offers, per request stream and per connection:
 * HTTP/2's initial 65,535 bytes, which grpc-js's servers keep. grpc-js (1.14) has no server
 * option for it ('grpc-node.flow_control_window' is read by its clients only; the server side
 * is grpc/grpc-node#3058) and betrace does not reach into its HTTP/2 servers. The cost: a client
 * sending a large export waits for the receiver's window updates every 64 KiB, and a receiver
 * woken for every few frames reads less per wake-up (CPU per span and the bench client's rate
 * in test/bench/README.md, "HTTP/2 flow-control windows").
 */
const HTTP2_WINDOW = 65_535;
/** HTTP/2 DATA frames carry at most 16 KiB by default, each behind a 9-byte header. */
const framed = (messageBytes: number): number => messageBytes + 5 + 9 * Math.ceil((messageBytes + 5) / 16_384);

const codeNames: Record<number, string> = Object.fromEntries(
  Object.entries(grpc.status).map(([name, code]) => [code, name]),
);

export class GrpcReceiver implements Component {
  readonly #options: GrpcReceiverOptions;
  readonly #connections = new Map<string, Connection>();
  readonly #rateLimited: RateLimitedLog;
  #server: grpc.Server | undefined;
  #listener: NetServer | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #port = 0;

  constructor(options: GrpcReceiverOptions) {
    this.#options = options;
    this.#rateLimited = new RateLimitedLog(options.logger);
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    const { maxRequestBytes, host, port } = this.#options;
    const server = new grpc.Server({
      // The limit applies to the decompressed message too (grpc-js checks after decompression).
      'grpc.max_receive_message_length': maxRequestBytes,
      'grpc.max_send_message_length': 4 * 1024 * 1024,
      'grpc.max_concurrent_streams': this.#options.maxConcurrentStreams ?? 16,
      interceptors: [(_method, call) => this.#intercept(call)],
    });
    const window = this.#options.flowControlWindowBytes;
    if (window !== undefined && window > 64 * 1024) {
      this.#options.logger.warn(
        { flowControlWindow: window },
        `receiver.grpc.flow_control_window is not applied: grpc-js offers no server option for HTTP/2 flow-control windows (grpc/grpc-node#3058), so the receiver offers HTTP/2's ${HTTP2_WINDOW} bytes per stream and per connection`,
      );
    }
    server.addService(
      TRACE_SERVICE_DEFINITION,
      { Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => this.#export(call, callback) },
    );
    const injector = server.createConnectionInjector(this.#credentials());
    const listener = createServer({ noDelay: true }, (socket) => this.#accept(socket, injector));
    listener.maxConnections = this.#options.maxConnections ?? 1024;
    listener.on('drop', () => this.#options.metrics.connectionsRefused.inc({ server: 'grpc' }));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    const bound = listener.address();
    this.#port = typeof bound === 'object' && bound !== null ? bound.port : port;
    this.#listener = listener;
    this.#server = server;
    if (this.#options.tls !== undefined) await this.#tlsReady(host);
    this.#options.logger.info({ address: `${host}:${this.#port}` }, 'OTLP/gRPC receiver listening');
  }

  /** Plaintext, or TLS whose files grpc-js re-reads every second (mTLS with a client CA). */
  #credentials(): grpc.ServerCredentials {
    const tls = this.#options.tls;
    if (tls === undefined) return grpc.ServerCredentials.createInsecure();
    const identity = new grpc.experimental.FileWatcherCertificateProvider({
      certificateFile: tls.certFile,
      privateKeyFile: tls.keyFile,
      refreshIntervalMs: 1000,
    });
    const ca = tls.clientCaFile === '' ? null : new grpc.experimental.FileWatcherCertificateProvider({ caCertificateFile: tls.clientCaFile, refreshIntervalMs: 1000 });
    // grpc-js's typings name the first two parameters the other way round; the implementation takes (identity, ca, requireClientCertificate).
    return grpc.experimental.createCertificateProviderServerCredentials(identity, ca, ca !== null);
  }

  /** grpc-js loads watched certificates asynchronously: ready once a handshake completes. */
  async #tlsReady(host: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    const target = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: target, port: this.#port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error('OTLP/gRPC receiver: the TLS certificate could not be loaded');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #export(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    const { metrics, ingest } = this.#options;
    const stopTimer = metrics.receiverRequestDuration.startTimer({ protocol: 'grpc' });
    const answer = (code: number, body?: Buffer, error?: Partial<grpc.StatusObject>): void => {
      metrics.receiverRequests.inc({ protocol: 'grpc', code: codeNames[code] ?? String(code) });
      stopTimer();
      if (code === GrpcCode.OK) callback(null, body ?? Buffer.alloc(0));
      else callback({ code, details: error?.details ?? '', metadata: error?.metadata ?? new grpc.Metadata() }, null);
    };
    // The client's deadline (grpc-timeout): the transport answers well before it, so the client can retry.
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? Number(deadline) : undefined;
    ingest.ingest(call.request, 'grpc', undefined, deadlineMs).then(
      (outcome) => {
        switch (outcome.kind) {
          case 'accepted':
            answer(GrpcCode.OK, Buffer.from(exportResponseProtobuf(outcome.rejectedSpans, outcome.errorMessage)));
            return;
          case 'invalid':
            answer(GrpcCode.INVALID_ARGUMENT, undefined, { details: outcome.message });
            return;
          case 'too_large':
            answer(GrpcCode.RESOURCE_EXHAUSTED, undefined, { details: outcome.message });
            return;
          case 'unavailable': {
            const metadata = new grpc.Metadata();
            metadata.set(
              'grpc-status-details-bin',
              Buffer.from(statusProtobuf(GrpcCode.UNAVAILABLE, outcome.message, outcome.retryAfterMs)),
            );
            answer(GrpcCode.UNAVAILABLE, undefined, { details: outcome.message, metadata });
            return;
          }
        }
      },
      (err: unknown) => {
        this.#options.logger.error({ err }, 'OTLP/gRPC export failed unexpectedly');
        answer(GrpcCode.INTERNAL, undefined, { details: 'internal error' });
      },
    );
  }

  /** A new TCP connection: tracked, then handed to grpc-js. */
  #accept(socket: Socket, injector: grpc.ConnectionInjector): void {
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    const now = Date.now();
    this.#connections.set(key, {
      socket,
      lastBytes: 0,
      lastProgressAt: now,
      receiving: 0,
      starts: new Set(),
      answering: 0,
      base: 0,
      completed: 0,
      held: 0,
      reserved: 0,
      refused: false,
      refusals: 0,
      refusedAt: 0,
      explained: 0,
    });
    socket.once('close', () => {
      const c = this.#connections.get(key);
      if (c?.socket === socket) {
        this.#release(c);
        this.#connections.delete(key);
      }
    });
    if (this.#options.tls !== undefined) {
      injector.injectConnection(socket);
      return;
    }
    // The first bytes tell HTTP/2 from HTTP/1.x; given back to the socket, http2 reads them first.
    // Until http2 owns the socket, its errors (a client resetting before it sent anything, or
    // while answered 400) are ours: without a listener they would be uncaught.
    const onError = () => socket.destroy();
    socket.on('error', onError);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      if (HTTP1_REQUEST.test(first.toString('latin1', 0, Math.min(first.length, 2048)))) {
        this.#answerHttp1(socket);
        return;
      }
      socket.unshift(first);
      socket.off('error', onError);
      injector.injectConnection(socket);
    });
  }

  /** An HTTP/1.x request on the gRPC port: 400, the reason phrase and body saying where OTLP/HTTP is; then closed. */
  #answerHttp1(socket: Socket): void {
    const http = this.#options.httpEndpoint?.();
    const hint = `this is betrace's OTLP/gRPC port; ${http === undefined ? 'OTLP/HTTP is not enabled (receiver.http.enabled)' : `OTLP/HTTP is on ${http}`}`;
    this.#rateLimited.warn(
      'http1',
      { remote: `${socket.remoteAddress}:${socket.remotePort}`, ...(http === undefined ? {} : { otlpHttp: http }) },
      `an HTTP/1.x request arrived on the OTLP/gRPC port (an OTLP/HTTP client, e.g. OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, pointed at the gRPC port): answered 400; ${http === undefined ? 'OTLP/HTTP is not enabled' : `point it at ${http}`}`,
    );
    const body = `${hint}\n`;
    // Read on (and discard) what the client still sends, so that it gets the answer rather than a reset.
    socket.on('data', () => undefined);
    socket.resume();
    socket.end(
      `HTTP/1.1 400 ${hint.replace(/[\r\n]/g, ' ')}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    setTimeout(() => socket.destroy(), 5000).unref();
  }

  /** The server interceptor: admits a call when its metadata arrives (token, receive budget) and follows its message. */
  #intercept(call: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCall {
    const info = call.getConnectionInfo();
    const connection = this.#connections.get(`${info.remoteAddress}|${info.remotePort}`);
    let start: CallStart | undefined;
    let answering = false;
    const received = (messageBytes: number | undefined): void => {
      if (start === undefined || connection === undefined) return;
      connection.starts.delete(start);
      connection.receiving = Math.max(0, connection.receiving - 1);
      if (messageBytes !== undefined) {
        const bytes = framed(messageBytes);
        connection.completed += bytes;
        connection.explained += bytes;
        // Admitted after the last refusal and its message arrived: the client went on after the refusal.
        if (start.refusals === connection.refusals) connection.refused = false;
        connection.answering++;
        answering = true;
      } else {
        // Cancelled before its message arrived: what the connection read meanwhile is an upper bound of its share.
        connection.explained += connection.socket.bytesRead - start.at;
      }
      start = undefined;
    };
    const answered = (): void => {
      if (!answering || connection === undefined) return;
      answering = false;
      connection.answering = Math.max(0, connection.answering - 1);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const refusal = this.#admit(metadata, connection);
            if (refusal !== undefined) {
              if (connection !== undefined) {
                connection.refused = true;
                connection.refusals++;
                connection.refusedAt = connection.socket.bytesRead;
                connection.explained = 0;
              }
              this.#watch();
              call.sendStatus(refusal);
              return;
            }
            if (connection !== undefined) {
              if (connection.receiving++ === 0) {
                connection.base = connection.socket.bytesRead;
                connection.completed = 0;
              }
              start = { at: connection.socket.bytesRead, refusals: connection.refusals };
              connection.starts.add(start);
              this.#watch();
            }
            nextMetadata(metadata);
          },
          onReceiveMessage: (message: Buffer, nextMessage) => {
            received(message.length);
            nextMessage(message);
          },
          onCancel: () => {
            received(undefined);
            answered();
          },
        }),
      sendStatus: (status, next) => {
        answered();
        next(status);
      },
    });
  }

  /** Why a call is refused before its message is read, or undefined to admit it. */
  #admit(metadata: grpc.Metadata, connection: Connection | undefined): grpc.StatusObject | undefined {
    const { metrics } = this.#options;
    const auth = this.#options.auth?.(metadata.get('authorization').map(String)) ?? 'ok';
    if (auth !== 'ok') {
      metrics.receiverRequests.inc({ protocol: 'grpc', code: 'UNAUTHENTICATED' });
      const details = auth === 'missing' ? 'this receiver needs authorization: Bearer <token>' : 'the bearer token is not valid';
      return { code: grpc.status.UNAUTHENTICATED, details, metadata: new grpc.Metadata() };
    }
    const budget = this.#options.receiveBudget;
    if (budget !== undefined && connection !== undefined && !budget.tryTake(ADMISSION_BYTES)) {
      metrics.receiverRequests.inc({ protocol: 'grpc', code: 'UNAVAILABLE' });
      metrics.requestsCut.inc({ server: 'grpc', reason: 'receive_budget' });
      const { message, retryAfterMs } = receiveBudgetSpent(this.#options.retryAfterMs);
      const status = new grpc.Metadata();
      status.set('grpc-status-details-bin', Buffer.from(statusProtobuf(GrpcCode.UNAVAILABLE, message, retryAfterMs)));
      return { code: grpc.status.UNAVAILABLE, details: message, metadata: status };
    }
    if (budget !== undefined && connection !== undefined) connection.reserved += ADMISSION_BYTES;
    return undefined;
  }

  #release(c: Connection): void {
    this.#options.receiveBudget?.release(c.reserved);
    c.reserved = 0;
  }

  /** Checks connections every CHECK_INTERVAL_MS while any has a call receiving or refused. */
  #watch(): void {
    if (this.#checkTimer !== undefined) return;
    this.#checkTimer = setInterval(() => this.#check(), CHECK_INTERVAL_MS);
    this.#checkTimer.unref();
  }

  #check(): void {
    const now = Date.now();
    const readTimeoutMs = this.#options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    const perCall = this.#options.maxRequestBytes + 5 + HTTP2_WINDOW;
    const budget = this.#options.receiveBudget;
    const refusedAllowance = HTTP2_WINDOW + ADMISSION_BYTES;
    let watched = 0;
    for (const c of this.#connections.values()) {
      const bytes = c.socket.bytesRead;
      if (bytes !== c.lastBytes) {
        c.lastBytes = bytes;
        c.lastProgressAt = now;
      }
      // Bounded three ways: what was read since receiving began minus the messages completed since (HTTP/2 control frames
      // make this drift up on a connection that never stops receiving), what was read since its oldest call receiving
      // was admitted, and what its calls can hold.
      let oldest = bytes;
      for (const { at } of c.starts) oldest = Math.min(oldest, at);
      c.held = c.receiving > 0 ? Math.min(Math.max(0, bytes - c.base - c.completed), bytes - oldest, c.receiving * perCall) : 0;
      if (c.receiving === 0 && !c.refused) {
        if (c.reserved > 0) this.#release(c);
        continue;
      }
      // A refused connection is closed only when no admitted call on it waits for its answer.
      const refusedIdle = c.refused && c.receiving === 0 && c.answering === 0;
      if (now - c.lastProgressAt >= readTimeoutMs && (c.receiving > 0 || refusedIdle)) {
        this.#cut(c, 'read_timeout');
        continue;
      }
      // A gRPC client stops sending a call answered before its end (grpc-js discards what still comes): one that sends on is cut.
      if (refusedIdle && bytes - c.refusedAt - c.explained > refusedAllowance) {
        this.#cut(c, 'refused');
        continue;
      }
      if (budget !== undefined) {
        const need = Math.max(c.held, c.receiving * ADMISSION_BYTES);
        if (need > c.reserved && !this.#take(budget, c, need - c.reserved)) {
          this.#cut(c, 'receive_budget');
          continue;
        }
        if (need < c.reserved) budget.release(c.reserved - need);
        c.reserved = need;
      }
      watched++;
    }
    if (watched === 0 && this.#checkTimer !== undefined) {
      clearInterval(this.#checkTimer);
      this.#checkTimer = undefined;
    }
  }

  /**
   * Takes `more` bytes of the budget for `c`; while it is spent, closes the connection holding most
   * (usually a stalled one) as long as that is another holding more than `c` would, and tries again.
   * False when `c` itself holds most: the caller closes it.
   */
  #take(budget: ReceiveBudget, c: Connection, more: number): boolean {
    for (;;) {
      if (budget.tryTake(more)) return true;
      let most: Connection | undefined;
      for (const other of this.#connections.values()) {
        if (other !== c && other.reserved > (most?.reserved ?? 0)) most = other;
      }
      if (most === undefined || most.reserved <= c.reserved + more) return false;
      this.#cut(most, 'receive_budget');
    }
  }

  /** Closes a connection, freeing what its calls held; its clients see the connection reset (UNAVAILABLE). */
  #cut(c: Connection, reason: 'read_timeout' | 'receive_budget' | 'refused'): void {
    this.#options.metrics.requestsCut.inc({ server: 'grpc', reason }, Math.max(1, c.receiving));
    this.#options.logger.debug({ remote: `${c.socket.remoteAddress}:${c.socket.remotePort}`, reason, calls: c.receiving, heldBytes: c.held }, 'OTLP/gRPC connection closed');
    c.receiving = 0;
    c.starts.clear();
    c.answering = 0;
    c.refused = false;
    c.held = 0;
    this.#release(c);
    c.socket.destroy();
  }

  async shutdown(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.close();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 5000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    for (const c of this.#connections.values()) {
      this.#release(c);
      c.socket.destroy();
    }
    this.#connections.clear();
    if (this.#checkTimer !== undefined) clearInterval(this.#checkTimer);
    this.#checkTimer = undefined;
  }
}
