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
import { TRACE_EXPORT_PATH } from '../otlp/index.ts';

/** Expected failures are values. */
export type SendResult =
  | { readonly status: 'success' }
  | { readonly status: 'retryable'; readonly error: string }
  | { readonly status: 'failure'; readonly error: string };

export interface PayloadSender {
  send(payload: Uint8Array, spanCount: number): Promise<SendResult>;
  shutdown(): Promise<void>;
}

interface Batch {
  readonly payload: Uint8Array;
  readonly spanCount: number;
}

/** Retryable per the OTLP specification (gRPC). */
const RETRYABLE = new Set<number>([
  grpcStatus.CANCELLED,
  grpcStatus.DEADLINE_EXCEEDED,
  grpcStatus.RESOURCE_EXHAUSTED,
  grpcStatus.ABORTED,
  grpcStatus.OUT_OF_RANGE,
  grpcStatus.UNAVAILABLE,
  grpcStatus.DATA_LOSS,
]);

export function createOtlpGrpcSender(config: DownstreamConfig): PayloadSender {
  const url = config.endpoint;
  const tls = url.startsWith('https://');
  const address = url.replace(/^https?:\/\//, '').replace(/\/$/, '');
  const delegate = createOtlpGrpcExportDelegate<Batch, unknown>(
    {
      url: address,
      timeoutMillis: config.timeoutMs,
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
    send: (payload, spanCount) =>
      new Promise<SendResult>((resolve) => {
        delegate.export({ payload, spanCount }, (result) => {
          if (result.code === ExportResultCode.SUCCESS) {
            resolve({ status: 'success' });
            return;
          }
          const error = result.error;
          const code = (error as { code?: unknown } | undefined)?.code;
          const message = error?.message ?? 'export failed';
          const retryable =
            typeof code === 'number' ? RETRYABLE.has(code) : /Concurrent export limit/.test(message) || code === undefined;
          resolve(retryable ? { status: 'retryable', error: message } : { status: 'failure', error: message });
        });
      }),
    shutdown: () => delegate.shutdown(),
  };
}
