export { splitByTrace, TraceSplitter, recordTraces, mergeRequests, type TracePart, type SplitResult, type SplitOptions } from './split.ts';
export { fromBase64Id, jsonTextToProtobuf, jsonValueToProtobuf, parseJsonText, type IdForm, type JsonResult } from './json.ts';
export { readTraceFile, readTraceFileRequests, traceFileRequests, TraceFileError, type TraceFileContents } from './files.ts';
export { toHex, fromHexId, isAllZero } from './hex.ts';
export {
  ExportTraceServiceRequest,
  ExportTraceServiceResponse,
  RpcStatus,
  RetryInfo,
  TRACE_EXPORT_PATH,
  TRACE_SERVICE_NAME,
  longToBigInt,
} from './schema.ts';
export { AttributeKeyFilter, SpanDecoder, decodeSpans, type DecodeLimits, type DecodeOptions } from './span-decoder.ts';
export { TRACE_SERVICE_DEFINITION } from './grpc-service.ts';
export { NameMatcher, PLAUSIBLE_FROM_MS, PLAUSIBLE_TO_MS, isPlausibleTimeMs, scanPart, type PartScan } from './scan.ts';
