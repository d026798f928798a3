/** google.rpc.Status bodies and details, as OTLP error responses carry them. */
import { ExportTraceServiceResponse, RetryInfo, RpcStatus } from '../otlp/index.ts';

/** gRPC status codes used by the receiver. */
export const GrpcCode = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNAUTHENTICATED: 16,
  UNAVAILABLE: 14,
  INTERNAL: 13,
} as const;

export function retryInfoAny(retryAfterMs: number): { typeUrl: string; value: Uint8Array } {
  const seconds = Math.floor(retryAfterMs / 1000);
  const nanos = Math.round((retryAfterMs % 1000) * 1e6);
  return {
    typeUrl: 'type.googleapis.com/google.rpc.RetryInfo',
    value: RetryInfo.encode(RetryInfo.create({ retryDelay: { seconds, nanos } })).finish(),
  };
}

/** google.rpc.Status in protobuf. */
export function statusProtobuf(code: number, message: string, retryAfterMs?: number): Uint8Array {
  const details = retryAfterMs === undefined ? [] : [retryInfoAny(retryAfterMs)];
  return RpcStatus.encode(RpcStatus.create({ code, message, details })).finish();
}

/** google.rpc.Status in JSON (the protobuf JSON mapping). */
export function statusJson(code: number, message: string, retryAfterMs?: number): string {
  const details =
    retryAfterMs === undefined
      ? []
      : [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${(retryAfterMs / 1000).toFixed(3)}s` }];
  return JSON.stringify({ code, message, details });
}

/** ExportTraceServiceResponse, with partial_success when spans were rejected. */
export function exportResponseProtobuf(rejectedSpans: number, errorMessage: string): Uint8Array {
  if (rejectedSpans === 0 && errorMessage === '') return new Uint8Array(0);
  return ExportTraceServiceResponse.encode(
    ExportTraceServiceResponse.create({ partialSuccess: { rejectedSpans, errorMessage } }),
  ).finish();
}

export function exportResponseJson(rejectedSpans: number, errorMessage: string): string {
  if (rejectedSpans === 0 && errorMessage === '') return '{}';
  return JSON.stringify({ partialSuccess: { rejectedSpans, errorMessage } });
}
