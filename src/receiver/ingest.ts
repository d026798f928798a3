/**
 * What both OTLP receivers (gRPC and HTTP) do with a request body: split it by
 * trace id, hand the parts to the transport within an in-flight byte budget, and
 * say how to answer. Outcomes are values; the protocol adapters map them to
 * gRPC status codes and HTTP statuses.
 */
import { TraceSplitter } from '../otlp/index.ts';
import type { TlsConfig } from '../config/index.ts';
import type { AuthResult } from '../server/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { TraceRecord, TransportProducer } from '../transport/transport.ts';

export type Protocol = 'grpc' | 'http';

export type IngestOutcome =
  | { readonly kind: 'accepted'; readonly rejectedSpans: number; readonly errorMessage: string }
  | { readonly kind: 'invalid'; readonly message: string }
  | { readonly kind: 'unavailable'; readonly retryAfterMs: number; readonly message: string }
  | { readonly kind: 'too_large'; readonly message: string };

export interface IngestOptions {
  readonly producer: TransportProducer;
  readonly metrics: Metrics;
  readonly maxInFlightBytes: number;
  readonly retryAfterMs: number;
  /** Largest record: a trace's spans that would make a larger one are split (Kafka's record limit). */
  readonly maxPartBytes?: number | undefined;
  /** Most spans in one request. */
  readonly maxSpansPerRequest?: number;
}

/** What both OTLP receivers (gRPC and HTTP) are built from. */
export interface ReceiverOptions {
  readonly host: string;
  readonly port: number;
  /** TLS files (reloaded when they change); undefined: plaintext. */
  readonly tls?: TlsConfig | undefined;
  /** Bearer-token check on each export. */
  readonly auth?: (authorization: string | string[] | undefined) => AuthResult;
  /** Largest request, after decompression. */
  readonly maxRequestBytes: number;
  readonly ingest: Ingest;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

export class Ingest {
  readonly #options: IngestOptions;
  /** Splits each request (synchronously: requests in flight share it). */
  readonly #splitter = new TraceSplitter();
  #inFlightBytes = 0;

  constructor(options: IngestOptions) {
    this.#options = options;
  }

  get inFlightBytes(): number {
    return this.#inFlightBytes;
  }

  /**
   * Takes an ExportTraceServiceRequest in protobuf. Resolves once the transport took the
   * spans (or refused). `rejected`: spans already taken out of the request as malformed
   * (OTLP/JSON spans that do not follow the JSON mapping), answered with the others.
   * `deadlineMs`: when the client gives up (unix ms), which the transport answers before.
   */
  async ingest(body: Uint8Array, protocol: Protocol, rejected?: { readonly spans: number; readonly message: string }, deadlineMs?: number): Promise<IngestOutcome> {
    const { metrics } = this.#options;
    const splitOnly = this.#splitter.split(body, { maxPartBytes: this.#options.maxPartBytes });
    if (!splitOnly.ok) {
      metrics.receiverSpansRejected.inc({ protocol, reason: 'malformed' });
      return { kind: 'invalid', message: `malformed ExportTraceServiceRequest: ${splitOnly.error}` };
    }
    const split =
      rejected === undefined || rejected.spans === 0
        ? splitOnly
        : {
            ...splitOnly,
            rejectedSpans: splitOnly.rejectedSpans + rejected.spans,
            malformedSpans: splitOnly.malformedSpans + rejected.spans,
            errorMessage: splitOnly.errorMessage === '' ? rejected.message : `${rejected.message}; ${splitOnly.errorMessage}`,
          };
    const total = split.acceptedSpans + split.rejectedSpans;
    metrics.receiverSpansReceived.inc({ protocol }, total);
    const maxSpans = this.#options.maxSpansPerRequest ?? Infinity;
    if (total > maxSpans) {
      metrics.receiverSpansRejected.inc({ protocol, reason: 'too_many_spans' }, total);
      return { kind: 'too_large', message: `${total} spans in one request; the limit is ${maxSpans} (receiver.max_spans_per_request)` };
    }
    if (split.malformedSpans > 0) metrics.receiverSpansRejected.inc({ protocol, reason: 'malformed' }, split.malformedSpans);
    if (split.rejectedSpans > split.malformedSpans) metrics.receiverSpansRejected.inc({ protocol, reason: 'invalid_id' }, split.rejectedSpans - split.malformedSpans);
    if (split.traces.length === 0) {
      return { kind: 'accepted', rejectedSpans: split.rejectedSpans, errorMessage: split.errorMessage };
    }
    const bytes = body.length;
    if (this.#inFlightBytes > 0 && this.#inFlightBytes + bytes > this.#options.maxInFlightBytes) {
      metrics.receiverSpansRejected.inc({ protocol, reason: 'unavailable' }, split.acceptedSpans);
      return {
        kind: 'unavailable',
        retryAfterMs: this.#options.retryAfterMs,
        message: 'too many requests in flight to the transport',
      };
    }
    const records: TraceRecord[] = split.traces.map((t) => ({
      traceId: t.traceId,
      payload: t.payload,
      spanCount: t.spanCount,
      rootSpans: t.rootSpans,
      timestampMs: t.earliestStartNs > 0n ? Number(t.earliestStartNs / 1_000_000n) : Date.now(),
    }));
    this.#inFlightBytes += bytes;
    metrics.receiverInFlightBytes.set(this.#inFlightBytes);
    try {
      const result = await this.#options.producer.send(records, { deadlineMs });
      if (result.status === 'success') {
        metrics.receiverSpansAccepted.inc({ protocol }, split.acceptedSpans);
        return { kind: 'accepted', rejectedSpans: split.rejectedSpans, errorMessage: split.errorMessage };
      }
      metrics.receiverSpansRejected.inc({ protocol, reason: 'unavailable' }, split.acceptedSpans);
      return {
        kind: 'unavailable',
        retryAfterMs: result.status === 'retryable' ? result.retryInMillis : this.#options.retryAfterMs,
        message: `transport unavailable: ${result.error}`,
      };
    } finally {
      this.#inFlightBytes -= bytes;
      metrics.receiverInFlightBytes.set(this.#inFlightBytes);
    }
  }
}
