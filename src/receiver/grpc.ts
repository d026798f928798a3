/** OTLP/gRPC receiver: opentelemetry.proto.collector.trace.v1.TraceService/Export. */
import * as grpc from '@grpc/grpc-js';
import type * as http2 from 'node:http2';
import { connect } from 'node:tls';
import type { Component } from '../component.ts';
import { TRACE_SERVICE_DEFINITION } from '../otlp/index.ts';
import type { ReceiverOptions } from './ingest.ts';
import { GrpcCode, exportResponseProtobuf, statusProtobuf } from './status.ts';

export interface GrpcReceiverOptions extends ReceiverOptions {
  /** HTTP/2 flow-control window per request stream and per connection; HTTP/2's 65,535 bytes when undefined. */
  readonly flowControlWindowBytes?: number | undefined;
}

const codeNames: Record<number, string> = Object.fromEntries(
  Object.entries(grpc.status).map(([name, code]) => [code, name]),
);

export class GrpcReceiver implements Component {
  readonly #options: GrpcReceiverOptions;
  #server: grpc.Server | undefined;
  #port = 0;

  constructor(options: GrpcReceiverOptions) {
    this.#options = options;
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
    });
    const internals = server as unknown as GrpcServerInternals;
    let window = this.#options.flowControlWindowBytes;
    if (window !== undefined && !offerStreamWindow(internals, window)) {
      this.#options.logger.warn('grpc-js keeps its HTTP/2 server options elsewhere than expected: receiver.grpc.flow_control_window not applied, HTTP/2 windows of 64KiB');
      window = undefined;
    }
    server.addService(
      TRACE_SERVICE_DEFINITION,
      { Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => this.#export(call, callback) },
    );
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.#port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, this.#credentials(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    this.#server = server;
    if (window !== undefined && !widenConnectionWindows(internals, window)) {
      this.#options.logger.warn('grpc-js keeps its HTTP/2 servers elsewhere than expected: receiver.grpc.flow_control_window applied to streams only, connections keep 64KiB');
    }
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
    const auth = this.#options.auth?.(call.metadata.get('authorization').map(String)) ?? 'ok';
    if (auth !== 'ok') {
      metrics.receiverRequests.inc({ protocol: 'grpc', code: 'UNAUTHENTICATED' });
      callback({ code: grpc.status.UNAUTHENTICATED, details: auth === 'missing' ? 'this receiver needs authorization: Bearer <token>' : 'the bearer token is not valid' }, null);
      return;
    }
    const stopTimer = metrics.receiverRequestDuration.startTimer({ protocol: 'grpc' });
    const answer = (code: number, body?: Buffer, error?: Partial<grpc.StatusObject>): void => {
      metrics.receiverRequests.inc({ protocol: 'grpc', code: codeNames[code] ?? String(code) });
      stopTimer();
      if (code === GrpcCode.OK) callback(null, body ?? Buffer.alloc(0));
      else callback({ code, details: error?.details ?? '', metadata: error?.metadata ?? new grpc.Metadata() }, null);
    };
    ingest.ingest(call.request, 'grpc').then(
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

  async shutdown(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
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
  }
}

/*
 * HTTP/2 flow control. grpc-js (1.14) reads no server option for it (grpc/grpc-node#3058:
 * 'grpc-node.flow_control_window' is read by its clients only), so its HTTP/2 servers keep
 * Node's windows of 65,535 bytes, per stream and per connection: a client sending a
 * 200 KB export stops three times for the receiver's window updates, and its requests
 * in flight share 64 KB. With 1 MiB windows the receiver bench's client sent its
 * requests twice as fast and the receiver spent about a quarter less CPU per span
 * (README, Benchmarks). Set through two grpc-js internals: the options it creates its
 * HTTP/2 servers with (the stream window, offered in the SETTINGS frame) and the
 * servers it made (each connection's window, raised as it opens). Where a grpc-js keeps
 * them elsewhere the receiver says so in its log and runs with 64 KiB windows; the
 * receiver tests read both windows from a client's side of a connection, so such a
 * grpc-js fails there.
 */
interface GrpcServerInternals {
  commonServerOptions?: http2.ServerOptions;
  http2Servers?: Map<http2.Http2Server, { sessions?: Set<http2.ServerHttp2Session> }>;
}

/** False when grpc-js keeps its HTTP/2 server options elsewhere. */
function offerStreamWindow(server: GrpcServerInternals, window: number): boolean {
  const options = server.commonServerOptions;
  if (options === undefined || typeof options !== 'object') return false;
  options.settings = { ...options.settings, initialWindowSize: window };
  return true;
}

/** False when grpc-js keeps its HTTP/2 servers elsewhere. */
function widenConnectionWindows(server: GrpcServerInternals, window: number): boolean {
  const servers = server.http2Servers;
  if (!(servers instanceof Map)) return false;
  const widen = (session: http2.ServerHttp2Session) => {
    if (!session.destroyed) session.setLocalWindowSize(window);
  };
  for (const [http2Server, info] of servers) {
    http2Server.on('session', widen);
    for (const session of info.sessions ?? []) widen(session);
  }
  return true;
}
