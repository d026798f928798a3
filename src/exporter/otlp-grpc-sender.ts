/**
 * Sends ready-made ExportTraceServiceRequest bytes to an OTLP/gRPC endpoint with
 * @opentelemetry/otlp-grpc-exporter-base. The bytes are passed through as they
 * are, so forwarded spans stay exactly what the application sent.
 */
import { Metadata, status as grpcStatus } from '@grpc/grpc-js';
import { ExportResultCode } from '@opentelemetry/core';
import {
  createInsecureCredentials,
  createOtlpGrpcExportDelegate,
  createSslCredentials,
} from '@opentelemetry/otlp-grpc-exporter-base';
import type { DownstreamConfig } from '../config/index.ts';
import { RetryInfo, RpcStatus, TRACE_EXPORT_PATH } from '../otlp/index.ts';

/** Expected failures are values. `code` is the gRPC status name downstream answered, when it answered one. */
export type SendResult =
  | { readonly status: 'success' }
  | {
      readonly status: 'retryable';
      readonly error: string;
      readonly code?: string | undefined;
      /** The delay downstream asked for (google.rpc.RetryInfo), when it gave one. */
      readonly retryAfterMs?: number | undefined;
    }
  | {
      readonly status: 'failure';
      readonly error: string;
      readonly code?: string | undefined;
      /**
       * The refusal may concern what this payload holds (a message downstream cannot
       * decode or accepts no part of), so parts of it may be accepted when sent apart.
       * False when downstream refuses every request alike (authentication, permission,
       * no such service) or when nothing reached downstream.
       */
      readonly payloadSpecific: boolean;
    };

export interface PayloadSender {
  /** One OTLP/gRPC Export call of ready-made request bytes; resolves with downstream's answer, classified. */
  send(payload: Uint8Array, spanCount: number): Promise<SendResult>;
  shutdown(): Promise<void>;
}

interface Batch {
  readonly payload: Uint8Array;
  readonly spanCount: number;
}

/**
 * Retryable per the OTLP specification (OTLP/gRPC, "Failures"): these, and
 * RESOURCE_EXHAUSTED only when downstream says recovery is possible by sending
 * RetryInfo. Every other status is not retryable: the data is dropped.
 */
const RETRYABLE = new Set<number>([
  grpcStatus.CANCELLED,
  grpcStatus.DEADLINE_EXCEEDED,
  grpcStatus.ABORTED,
  grpcStatus.OUT_OF_RANGE,
  grpcStatus.UNAVAILABLE,
  grpcStatus.DATA_LOSS,
]);

/** Not retryable, and not about the payload: every request would be refused alike, so splitting would not help. */
const REFUSES_ALL = new Set<number>([
  grpcStatus.UNAUTHENTICATED,
  grpcStatus.PERMISSION_DENIED,
  grpcStatus.UNIMPLEMENTED,
  grpcStatus.NOT_FOUND,
]);

const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

/**
 * The retry delay of a google.rpc.RetryInfo in the `grpc-status-details-bin`
 * trailer (a google.rpc.Status), in milliseconds; undefined when there is none or
 * it cannot be read.
 */
export function retryDelayMs(metadata: unknown): number | undefined {
  if (!(metadata instanceof Metadata)) return undefined;
  const [bin] = metadata.get('grpc-status-details-bin');
  if (!(bin instanceof Uint8Array)) return undefined;
  try {
    const st = RpcStatus.decode(bin) as unknown as { details?: Array<{ typeUrl?: string; value?: Uint8Array }> };
    for (const any of st.details ?? []) {
      if (any.typeUrl !== RETRY_INFO_TYPE || any.value === undefined) continue;
      const info = RetryInfo.decode(any.value) as unknown as {
        retryDelay?: { seconds?: number | { low: number; high: number }; nanos?: number };
      };
      if (info.retryDelay === undefined) return undefined;
      const s = info.retryDelay.seconds ?? 0;
      // int64: a Long's high word is signed.
      const seconds = typeof s === 'number' ? s : s.high * 2 ** 32 + (s.low >>> 0);
      const ms = seconds * 1000 + (info.retryDelay.nanos ?? 0) / 1e6;
      return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
    }
  } catch {
    return undefined; // undecodable details: as if there were none
  }
  return undefined;
}

/**
 * Classifies a failed export by its gRPC status code, per the OTLP specification.
 * An error without a status code never reached downstream (the client could not
 * be set up): not retryable, not about the payload.
 */
export function classifyFailure(error: unknown): Exclude<SendResult, { status: 'success' }> {
  const e = error as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown } | undefined;
  const code = e?.code;
  const message = typeof e?.message === 'string' ? e.message : 'export failed';
  if (typeof code !== 'number') return { status: 'failure', error: message, payloadSpecific: false };
  const name = (grpcStatus as unknown as Record<number, string | undefined>)[code] ?? String(code);
  const details = typeof e?.details === 'string' && e.details !== '' ? e.details : message;
  const retryAfterMs = retryDelayMs(e?.metadata);
  if (RETRYABLE.has(code) || (code === (grpcStatus.RESOURCE_EXHAUSTED as number) && retryAfterMs !== undefined)) {
    return { status: 'retryable', error: details, code: name, retryAfterMs };
  }
  return { status: 'failure', error: details, code: name, payloadSpecific: !REFUSES_ALL.has(code) };
}

export function createOtlpGrpcSender(config: DownstreamConfig): PayloadSender {
  const url = config.endpoint;
  const tls = url.startsWith('https://');
  const address = url.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const delegate = createOtlpGrpcExportDelegate<Batch, unknown>(
    {
      url: address,
      timeoutMillis: config.timeoutMs,
      // Far above the QueuedExporter's sends in flight (one per batch slot): the
      // delegate's own limit never refuses a send.
      concurrencyLimit: 64,
      compression: config.compression,
      metadata: () => {
        const md = new Metadata();
        for (const [k, v] of Object.entries(config.headers)) md.set(k.toLowerCase(), v);
        return md;
      },
      credentials: () => (tls ? createSslCredentials() : createInsecureCredentials()),
      userAgent: 'betrace',
    },
    {
      serializeRequest: (batch) => batch.payload,
      deserializeResponse: (data) => data,
    },
    'betrace_exporter',
    { name: 'span', countItems: (batch) => batch.spanCount },
    undefined,
    'TraceExportService',
    TRACE_EXPORT_PATH,
  );
  return {
    // Never rejects: an error thrown before the call is classified like any other (no status code: not retryable).
    send: (payload, spanCount) =>
      new Promise<SendResult>((resolve) => {
        try {
          delegate.export({ payload, spanCount }, (result) => {
            resolve(result.code === ExportResultCode.SUCCESS ? { status: 'success' } : classifyFailure(result.error));
          });
        } catch (err) {
          resolve(classifyFailure(err));
        }
      }),
    shutdown: () => delegate.shutdown(),
  };
}
