/**
 * The violation span (docs/contract.md "Violation span"): exported downstream inside the violating
 * trace, a child of its root span. Everything in it derives from the violation
 * (never from the time of evaluation), so the same violation always gives the
 * same span.
 */
import { ExportTraceServiceRequest } from '../otlp/index.ts';
import { VIOLATION_SPAN_NAME } from '../rules/index.ts';
import type { ViolationRecord } from './violation-record.ts';

export { VIOLATION_SPAN_NAME };
const SPAN_KIND_INTERNAL = 1;
const STATUS_CODE_ERROR = 2;

import { BETRACE_VERSION } from '../version.ts';

export { BETRACE_VERSION };

type KeyValue = { key: string; value: Record<string, unknown> };

function str(key: string, value: string): KeyValue {
  return { key, value: { stringValue: value } };
}
function int(key: string, value: number): KeyValue {
  return { key, value: { intValue: value } };
}
function strArray(key: string, values: readonly string[]): KeyValue {
  return { key, value: { arrayValue: { values: values.map((v) => ({ stringValue: v })) } } };
}

/**
 * The span's attributes, in the order docs/contract.md "Violation span" lists them;
 * `betrace.trace.partial` and `betrace.trace.root_missing` only when true.
 */
export function violationAttributes(v: ViolationRecord): KeyValue[] {
  const attrs: KeyValue[] = [
    str('betrace.violation.id', v.violation_id),
    str('betrace.rule.id', v.rule_id),
    str('betrace.rule.name', v.rule_name),
    str('betrace.rule.severity', v.severity),
    strArray('betrace.rule.tags', v.tags),
    str('betrace.violation.message', v.message),
    strArray('betrace.violation.span_ids', v.span_ids),
    int('betrace.violation.witness_count', v.witness_count),
    int('betrace.trace.span_count', v.span_count),
  ];
  if (v.partial) attrs.push({ key: 'betrace.trace.partial', value: { boolValue: true } });
  if (v.root_missing) attrs.push({ key: 'betrace.trace.root_missing', value: { boolValue: true } });
  return attrs;
}

/** ExportTraceServiceRequest (protobuf) holding one violation span per record. */
export function violationSpansPayload(records: readonly ViolationRecord[]): Uint8Array {
  const spans = records.map((v) => ({
    traceId: Buffer.from(v.trace_id, 'hex'),
    spanId: Buffer.from(v.violation_id.slice(0, 16), 'hex'),
    parentSpanId: v.root_span_id === '' ? Buffer.alloc(0) : Buffer.from(v.root_span_id, 'hex'),
    name: VIOLATION_SPAN_NAME,
    kind: SPAN_KIND_INTERNAL,
    startTimeUnixNano: v.start_time_unix_nano,
    endTimeUnixNano: v.end_time_unix_nano,
    attributes: violationAttributes(v),
    status: { code: STATUS_CODE_ERROR, message: v.message },
  }));
  const request = ExportTraceServiceRequest.fromObject({
    resourceSpans: [
      {
        resource: { attributes: [str('service.name', 'betrace'), str('service.version', BETRACE_VERSION)] },
        scopeSpans: [{ scope: { name: 'betrace', version: BETRACE_VERSION }, spans }],
      },
    ],
  });
  return ExportTraceServiceRequest.encode(request).finish();
}
