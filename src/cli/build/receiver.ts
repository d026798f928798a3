/**
 * The receiver role: the transport's producer (behind the receiver's spool when it is on, with
 * Kafka), the ingest step, and the OTLP/gRPC and OTLP/HTTP receivers, all in the intake phase
 * of the lifecycle list. Imported by pipeline.ts only.
 */
import { isLoopbackHost } from '../../config/index.ts';
import { GrpcReceiver, HttpReceiver, Ingest, ReceiveBudget } from '../../receiver/index.ts';
import { Spool } from '../../receiver/spool.ts';
import { createTokenCheck } from '../../server/index.ts';
import type { NamedCheck, Shared } from './shared.ts';

export interface ReceiverRole {
  /** Exports are acknowledged once on local disk (receiver.spool, Kafka only). */
  readonly spooling: boolean;
  /** spool, degraded only. */
  readonly checks: readonly NamedCheck[];
  ports(): { grpc?: number; http?: number };
}

export function buildReceiver(s: Shared): ReceiverRole {
  const { config, kafkaMode, metrics, logger, lifecycle } = s;
  let producer = s.transport.createProducer();
  const checks: NamedCheck[] = [];
  // receiver.spool: every export is acknowledged once fsynced to local disk, then drained to Kafka in order.
  let spooling = false;
  if (config.receiver.spool.enabled && kafkaMode) {
    const sp = config.receiver.spool;
    const spool = new Spool({
      dir: sp.dir,
      inner: producer,
      maxBytes: sp.maxBytes,
      segmentBytes: sp.segmentBytes,
      // Within the pipeline's own bound: what is not handed to Kafka by then stays on disk.
      shutdownTimeoutMs: Math.min(sp.shutdownTimeoutMs, config.shutdownTimeoutMs),
      behindMs: sp.degradedAfterMs,
      retryAfterMs: config.receiver.retryAfterMs,
      metrics,
      logger,
    });
    producer = spool;
    spooling = true;
    // Degraded, not unready: while it refuses, clients get UNAVAILABLE and retry; taking the receiver
    // out of its Service would refuse them all.
    checks.push([
      'spool',
      () => {
        const h = spool.health();
        return h.degraded ? { ready: true, degraded: h.reason } : { ready: true };
      },
    ]);
  }
  const ingest = new Ingest({
    producer,
    metrics,
    maxPartBytes: kafkaMode ? config.transport.kafka.maxRecordBytes : undefined,
    maxInFlightBytes: config.receiver.maxInFlightBytes,
    maxSpansPerRequest: config.receiver.maxSpansPerRequest,
    retryAfterMs: config.receiver.retryAfterMs,
  });
  // Stopped after the receivers (intake, in reverse start order): what they handed over is sent on.
  lifecycle.add(spooling ? 'spool' : 'producer', 'intake', producer);
  const common = {
    receiveBudget: new ReceiveBudget(config.receiver.maxReceivingBytes, metrics),
    readTimeoutMs: config.receiver.readTimeoutMs,
    maxConnections: config.receiver.maxConnections,
    retryAfterMs: config.receiver.retryAfterMs,
    maxRequestBytes: config.receiver.maxRequestBytes,
    ingest,
    metrics,
    logger,
    tls: config.receiver.tls,
    auth: createTokenCheck(config.receiver.authToken),
  };
  const open = [config.receiver.grpc, config.receiver.http].filter((l) => l.enabled && !isLoopbackHost(l.host)).map((l) => `${l.host}:${l.port}`);
  if (open.length > 0 && config.receiver.authToken === '') {
    // Not refused: a receiver is usually open to the applications of a network.
    logger.warn(
      { endpoints: open },
      'the OTLP receiver listens beyond loopback without receiver.auth_token: anyone who reaches it can send spans (set BETRACE_RECEIVER_TOKEN to require a bearer token)',
    );
  }
  let grpc: GrpcReceiver | undefined;
  let http: HttpReceiver | undefined;
  if (config.receiver.grpc.enabled) {
    const h = config.receiver.http;
    const httpEndpoint = (): string | undefined => {
      if (!h.enabled) return undefined;
      const host = h.host === '0.0.0.0' || h.host === '::' ? '<this host>' : h.host.includes(':') ? `[${h.host}]` : h.host;
      return `http${config.receiver.tls === undefined ? '' : 's'}://${host}:${http?.port || h.port}/v1/traces`;
    };
    grpc = new GrpcReceiver({
      ...common,
      httpEndpoint,
      host: config.receiver.grpc.host,
      port: config.receiver.grpc.port,
      flowControlWindowBytes: config.receiver.grpc.flowControlWindowBytes,
      maxConcurrentStreams: config.receiver.grpc.maxConcurrentStreams,
    });
    lifecycle.add('grpc receiver', 'intake', grpc);
  }
  if (config.receiver.http.enabled) {
    http = new HttpReceiver({ ...common, host: config.receiver.http.host, port: config.receiver.http.port });
    lifecycle.add('http receiver', 'intake', http);
  }
  return { spooling, checks, ports: () => ({ grpc: grpc?.port, http: http?.port }) };
}
