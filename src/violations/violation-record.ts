/**
 * A violation as stored and served by the API (and, in Kafka mode, written to the
 * violations topic): the violation span's attributes plus the trace, root span
 * and evaluation time. JSON-safe (times as decimal strings of nanoseconds).
 */
import { SEVERITIES, type Violation } from '../rules/index.ts';

export interface ViolationRecord {
  readonly violation_id: string;
  readonly rule_id: string;
  readonly rule_name: string;
  readonly severity: string;
  readonly tags: readonly string[];
  readonly message: string;
  readonly trace_id: string;
  readonly root_span_id: string;
  readonly span_ids: readonly string[];
  readonly witness_count: number;
  readonly span_count: number;
  readonly partial: boolean;
  readonly root_missing: boolean;
  readonly start_time_unix_nano: string;
  readonly end_time_unix_nano: string;
  /** When the worker evaluated the trace, unix milliseconds. */
  readonly evaluated_at_ms: number;
  /** The witnesses' services (resource service.name), else the root's; absent in records written before they were kept. */
  readonly services?: readonly string[];
  /** The witnesses' distinct span names; absent in records written before they were kept. */
  readonly witness_names?: readonly string[];
}

export function toViolationRecord(v: Violation, partial: boolean, evaluatedAtMs: number): ViolationRecord {
  return {
    violation_id: v.violationId,
    rule_id: v.ruleId,
    rule_name: v.ruleName,
    severity: v.severity,
    tags: v.tags,
    message: v.message,
    trace_id: v.traceId,
    root_span_id: v.rootSpanId,
    span_ids: v.witnessSpanIds,
    witness_count: v.witnessCount,
    span_count: v.spanCount,
    partial,
    root_missing: v.rootMissing,
    start_time_unix_nano: v.startTimeUnixNano.toString(),
    end_time_unix_nano: v.endTimeUnixNano.toString(),
    evaluated_at_ms: evaluatedAtMs,
    services: v.services,
    witness_names: v.witnessNames,
  };
}

const HEX32 = /^[0-9a-f]{32}$/;
const SPAN_ID = /^(?:[0-9a-f]{16})?$/;
const NANOS = /^\d{1,20}$/;

/**
 * Why `value` (parsed JSON) is not a ViolationRecord, or undefined when it is one:
 * every field present with its type, ids in lowercase hex, times decimal strings,
 * a known severity. What the store reads back from disk (or a topic) is checked
 * with this before it is served.
 */
export function violationRecordProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  const str = (k: string) => (typeof r[k] === 'string' ? undefined : `${k} is not a string`);
  const count = (k: string) => (Number.isSafeInteger(r[k]) && (r[k] as number) >= 0 ? undefined : `${k} is not a non-negative integer`);
  const bool = (k: string) => (typeof r[k] === 'boolean' ? undefined : `${k} is not a boolean`);
  const strings = (k: string) => (Array.isArray(r[k]) && (r[k] as unknown[]).every((x) => typeof x === 'string') ? undefined : `${k} is not an array of strings`);
  return (
    str('violation_id') ??
    (r.violation_id === '' ? 'violation_id is empty' : undefined) ??
    str('rule_id') ??
    (r.rule_id === '' ? 'rule_id is empty' : undefined) ??
    str('rule_name') ??
    ((SEVERITIES as readonly unknown[]).includes(r.severity) ? undefined : `severity is not one of ${SEVERITIES.join(', ')}`) ??
    strings('tags') ??
    str('message') ??
    (typeof r.trace_id === 'string' && HEX32.test(r.trace_id) ? undefined : 'trace_id is not 32 lowercase hex characters') ??
    (typeof r.root_span_id === 'string' && SPAN_ID.test(r.root_span_id) ? undefined : 'root_span_id is not 16 lowercase hex characters') ??
    strings('span_ids') ??
    count('witness_count') ??
    count('span_count') ??
    bool('partial') ??
    bool('root_missing') ??
    (typeof r.start_time_unix_nano === 'string' && NANOS.test(r.start_time_unix_nano) ? undefined : 'start_time_unix_nano is not a decimal string') ??
    (typeof r.end_time_unix_nano === 'string' && NANOS.test(r.end_time_unix_nano) ? undefined : 'end_time_unix_nano is not a decimal string') ??
    count('evaluated_at_ms') ??
    (r.services === undefined ? undefined : strings('services')) ??
    (r.witness_names === undefined ? undefined : strings('witness_names'))
  );
}
