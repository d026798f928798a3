/**
 * A violation as stored and served by the API (and, in Kafka mode, written to the
 * violations topic): the violation span's attributes plus the trace, root span
 * and evaluation time. JSON-safe (times as decimal strings of nanoseconds).
 */
import type { Violation } from '../rules/index.ts';

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
  };
}
