/**
 * The OTLP protobuf schema, loaded once from the .proto files beside this module.
 * Everything that encodes or decodes OTLP messages goes through these types.
 */
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const protoDir = join(dirname(fileURLToPath(import.meta.url)), 'proto');
const root = new protobuf.Root();
root.loadSync(
  ['otlp.proto', 'trace.proto', 'common.proto', 'resource.proto', 'rpc.proto', 'google.proto'].map((f) =>
    join(protoDir, f),
  ),
);
root.resolveAll();

/** A message type of the OTLP schema, by its full name (`opentelemetry.proto.trace.v1.Span`). */
export function otlpType(fullName: string): protobuf.Type {
  return root.lookupType(fullName);
}

export const ExportTraceServiceRequest = root.lookupType(
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
);
export const ExportTraceServiceResponse = root.lookupType(
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse',
);
export const RpcStatus = root.lookupType('google.rpc.Status');
export const RetryInfo = root.lookupType('google.rpc.RetryInfo');

/** The gRPC method path of the OTLP trace Export call. */
export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
export const TRACE_SERVICE_NAME = 'opentelemetry.proto.collector.trace.v1.TraceService';

/** Shapes of decoded messages (protobufjs, camelCase field names). */
export interface PbLong {
  low: number;
  high: number;
  unsigned?: boolean;
}
export interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: PbLong | number;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
}
export interface PbKeyValue {
  key?: string;
  value?: PbAnyValue;
}
export interface PbSpan {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  traceState?: string;
  flags?: number;
  name?: string;
  kind?: number;
  startTimeUnixNano?: PbLong | number;
  endTimeUnixNano?: PbLong | number;
  attributes?: PbKeyValue[];
  status?: { code?: number; message?: string };
}
export interface PbScopeSpans {
  scope?: { name?: string; version?: string };
  spans?: PbSpan[];
}
export interface PbResourceSpans {
  resource?: { attributes?: PbKeyValue[] };
  scopeSpans?: PbScopeSpans[];
}
export interface PbExportRequest {
  resourceSpans?: PbResourceSpans[];
}

/** A protobufjs 64-bit value as an unsigned bigint. */
export function longToBigInt(value: PbLong | number | undefined): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(value);
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}
