/**
 * The replay report: violations per UTC day (the BeTrace Method's "Day 5: 3
 * violations (…)"), affected traces, a total per rule and overall; as a table
 * for people and as JSON for machines (`--format json`, the replay API).
 */
import type { ReplayCounters, ReplayViolation } from './engine.ts';

export interface ReplayDay {
  readonly violations: number;
  /** Affected traces, in trace start order. */
  readonly trace_ids: string[];
  readonly by_rule: Record<string, number>;
}

/** `--format json` and the replay API's result. */
export interface ReplayReport {
  /** RFC 3339. */
  readonly from: string;
  readonly to: string;
  readonly rules: readonly string[];
  /** What was read: the topic and partitions, or the files. */
  readonly source: string;
  readonly traces_scanned: number;
  readonly spans_scanned: number;
  /** Traces skipped undecoded: they hold no trigger of any rule (their verdict is a pass). */
  readonly traces_skipped: number;
  /** Traces evaluated early at the live-span bound; their violations have partial = true. */
  readonly traces_partial: number;
  readonly records_read: number;
  /** Of records_read, those known from a trace index only: their payloads were never read. */
  readonly records_indexed: number;
  /** Records read by their location in a trace index (the traces that had to be evaluated). */
  readonly records_fetched: number;
  readonly spans_read: number;
  readonly late_records: number;
  readonly undecodable_records: number;
  readonly budget_exceeded_traces: number;
  /** Spans whose start time is 0 or implausible (before 2000, from 2100): their traces are placed by their other spans. */
  readonly spans_without_time: number;
  /** Traces without any plausible span start: in no day, not evaluated; the first ten's ids. */
  readonly traces_without_time: number;
  readonly untimed_trace_ids: readonly string[];
  /**
   * Where the source's history starts, when it starts after the range's start (RFC 3339;
   * null when the history read reaches back to the range's start, or holds nothing).
   */
  readonly history_start: string | null;
  /** The history does not cover the whole range: it starts after the range's start, or holds no spans. */
  readonly incomplete: boolean;
  readonly violations: readonly ReplayViolation[];
  readonly per_day: Record<string, ReplayDay>;
  readonly per_rule: Record<string, number>;
  readonly affected_traces: number;
  readonly total: number;
  readonly elapsed_ms: number;
  readonly spans_per_second: number;
}

export function buildReport(input: {
  fromMs: number;
  toMs: number;
  rules: readonly string[];
  source: string;
  counters: ReplayCounters;
  violations: readonly ReplayViolation[];
  elapsedMs: number;
  /** The source read from the start of its history (SourceResult.fromHistoryStart). */
  fromHistoryStart: boolean;
  /** Where the source's history starts, when the source found it (SourceResult.historyStartMs); else the first record read. */
  historyStartMs?: number | undefined;
  untimedTraceIds: readonly string[];
}): ReplayReport {
  const { counters: c, violations } = input;
  const first = input.historyStartMs ?? c.firstRecordMs;
  const empty = first === Infinity;
  const startsLater = input.fromHistoryStart && !empty && first > input.fromMs;
  const perDay: Record<string, { violations: number; trace_ids: string[]; by_rule: Record<string, number> }> = {};
  const perRule: Record<string, number> = {};
  for (const id of input.rules) perRule[id] = 0;
  const traces = new Set<string>();
  const dayTraces = new Map<string, Set<string>>();
  for (const v of violations) {
    const day = (perDay[v.day] ??= { violations: 0, trace_ids: [], by_rule: {} });
    day.violations++;
    let seen = dayTraces.get(v.day);
    if (seen === undefined) dayTraces.set(v.day, (seen = new Set()));
    if (!seen.has(v.trace_id)) {
      seen.add(v.trace_id);
      day.trace_ids.push(v.trace_id);
    }
    day.by_rule[v.rule_id] = (day.by_rule[v.rule_id] ?? 0) + 1;
    perRule[v.rule_id] = (perRule[v.rule_id] ?? 0) + 1;
    traces.add(v.trace_id);
  }
  const sortedDays: Record<string, ReplayDay> = {};
  for (const day of Object.keys(perDay).sort()) sortedDays[day] = perDay[day]!;
  return {
    from: new Date(input.fromMs).toISOString(),
    to: new Date(input.toMs).toISOString(),
    rules: input.rules,
    source: input.source,
    traces_scanned: c.tracesScanned,
    spans_scanned: c.spansScanned,
    traces_skipped: c.tracesSkipped,
    traces_partial: c.tracesPartial,
    records_read: c.records,
    records_indexed: c.indexedRecords,
    records_fetched: c.fetchedRecords,
    spans_read: c.spansRead,
    late_records: c.lateRecords,
    undecodable_records: c.undecodableRecords,
    budget_exceeded_traces: c.budgetExceededTraces,
    spans_without_time: c.spansWithoutTime,
    traces_without_time: c.tracesWithoutTime,
    untimed_trace_ids: input.untimedTraceIds,
    history_start: startsLater ? new Date(first).toISOString() : null,
    incomplete: startsLater || (input.fromHistoryStart && empty),
    violations,
    per_day: sortedDays,
    per_rule: perRule,
    affected_traces: traces.size,
    total: violations.length,
    elapsed_ms: Math.round(input.elapsedMs),
    spans_per_second: input.elapsedMs > 0 ? Math.round((c.spansRead * 1000) / input.elapsedMs) : 0,
  };
}

const TRACES_PER_DAY_LINE = 10;

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The human report (one string, lines joined by \n). */
export function formatTable(r: ReplayReport): string {
  const lines: string[] = [];
  lines.push(
    `Replay of ${plural(r.rules.length, 'rule')} (${r.rules.join(', ')}) over ${r.from} .. ${r.to} from ${r.source}: ` +
      `${plural(r.traces_scanned, 'trace')}, ${plural(r.spans_scanned, 'span')} in range` +
      (r.traces_skipped > 0 ? ` (${r.traces_skipped} without any trigger, skipped)` : ''),
  );
  lines.push('');
  const days = Object.entries(r.per_day);
  if (days.length === 0) lines.push('No violations.');
  for (const [day, d] of days) {
    const shown = d.trace_ids.slice(0, TRACES_PER_DAY_LINE);
    const more = d.trace_ids.length > shown.length ? `, … ${d.trace_ids.length - shown.length} more` : '';
    lines.push(`${day}: ${plural(d.violations, 'violation')} (trace ${shown.join(', ')}${more})`);
  }
  lines.push('');
  lines.push(`Affected traces: ${r.affected_traces}`);
  lines.push('Per rule:');
  const width = Math.max(0, ...Object.keys(r.per_rule).map((k) => k.length));
  for (const [rule, n] of Object.entries(r.per_rule)) lines.push(`  ${rule.padEnd(width)}  ${n}`);
  lines.push(`Total: ${plural(r.total, 'historical violation')}`);
  const notes: string[] = [];
  if (r.incomplete) {
    notes.push(
      r.history_start === null
        ? `the source holds no spans with a plausible time: the report covers nothing (incomplete)`
        : `history in the source starts at ${r.history_start}, after the range's start: the report covers ${r.history_start} .. ${r.to} only (incomplete)`,
    );
  }
  if (r.traces_without_time > 0) {
    const more = r.traces_without_time > r.untimed_trace_ids.length ? `, … ${r.traces_without_time - r.untimed_trace_ids.length} more` : '';
    notes.push(`${plural(r.traces_without_time, 'trace')} without a plausible start time (0, before 2000 or from 2100) placed in no day, not evaluated (trace ${r.untimed_trace_ids.join(', ')}${more})`);
  }
  if (r.spans_without_time > 0) notes.push(`${plural(r.spans_without_time, 'span')} without a plausible start time (a trace with other spans is placed by them)`);
  if (r.traces_partial > 0) notes.push(`${plural(r.traces_partial, 'trace')} evaluated early at the live-span bound (violations marked partial)`);
  if (r.late_records > 0) notes.push(`${plural(r.late_records, 'record')} of traces already evaluated not evaluated`);
  if (r.undecodable_records > 0) notes.push(`${plural(r.undecodable_records, 'record')} could not be decoded`);
  if (r.budget_exceeded_traces > 0) notes.push(`${plural(r.budget_exceeded_traces, 'trace')} exceeded the evaluation budget`);
  for (const n of notes) lines.push(`Note: ${n}`);
  return lines.join('\n');
}

export function formatJson(r: ReplayReport): string {
  return JSON.stringify(r, null, 2);
}
