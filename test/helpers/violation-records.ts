/** Violation records as the store and the violations topic hold them, for tests that write them by hand. */
export function violationRecord(n: number, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    violation_id: `v-${n}`,
    rule_id: 'old-rule',
    rule_name: 'old rule',
    severity: 'low',
    tags: [],
    message: 'from before the crash',
    trace_id: n.toString(16).padStart(32, '0'),
    root_span_id: n.toString(16).padStart(16, '0'),
    span_ids: [n.toString(16).padStart(16, '0')],
    witness_count: 1,
    span_count: 1,
    partial: false,
    root_missing: false,
    start_time_unix_nano: String(1_700_000_000_000_000_000n + BigInt(n)),
    end_time_unix_nano: String(1_700_000_000_000_000_000n + BigInt(n) + 10n),
    // Recent: within the violation file's retention (violations.max_age).
    evaluated_at_ms: Date.now() - 60_000,
    ...fields,
  };
}
