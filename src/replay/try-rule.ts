/**
 * A rule tried before it is saved, on a pasted OTLP/JSON trace (POST /v1/rules/try):
 * the spans grouped by trace id, the rule evaluated on each trace as a worker would
 * (one rule, the default budget per trace and TRY_BUDGET_MS in all, enabled whatever the
 * draft says), and for each trace whether it violates, with its witness spans (name,
 * service, times). Lives beside
 * replay, which evaluates rules on recorded traces too; the admin API calls it.
 */
import { SpanDecoder, traceFileRequests, TraceFileError } from '../otlp/index.ts';
import { DEFAULT_BUDGET_MS, createRuleSet, type CompiledRule, type SpanRecord } from '../rules/index.ts';

export interface TriedWitness {
  readonly span_id: string;
  readonly name: string;
  readonly service: string;
  readonly start_time_unix_nano: string;
  readonly end_time_unix_nano: string;
}

export interface TriedTrace {
  readonly trace_id: string;
  readonly spans: number;
  readonly violated: boolean;
  readonly message?: string;
  readonly witness_count?: number;
  readonly witnesses?: readonly TriedWitness[];
  /** The evaluation ran out of its budget: no verdict. */
  readonly budget_exceeded?: boolean;
}

/** A paste holds at most this many traces (more: refused, saying so). */
export const MAX_TRIED_TRACES = 1000;
/**
 * The time a try may take in all: it runs on the admin API's thread, so a paste of many
 * traces must not hold it for their budgets added up. Each trace gets the default budget, or
 * what is left of this; traces past it get no verdict (`budget_exceeded`).
 */
export const TRY_BUDGET_MS = 1000;

export type TryResult = { ok: true; spans: number; traces: TriedTrace[] } | { ok: false; error: string };

/** Evaluates `rule` on every trace of `text` (OTLP/JSON: one request, or one per line; ids in hex or base64). */
export function tryRuleOnTrace(rule: CompiledRule, text: string): TryResult {
  const data = Buffer.from(text, 'utf8');
  const first = data.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first !== 0x7b && first !== 0x5b) return { ok: false, error: 'the trace must be OTLP JSON: an object with "resourceSpans"' };
  let spans: SpanRecord[];
  try {
    const decoder = new SpanDecoder();
    spans = traceFileRequests('the trace', data, () => false).requests.flatMap((r) => decoder.decode(r));
  } catch (err) {
    if (err instanceof TraceFileError || err instanceof Error) return { ok: false, error: err.message };
    throw err;
  }
  if (spans.length === 0) return { ok: false, error: 'the trace holds no spans' };
  const byTrace = new Map<string, SpanRecord[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId);
    if (list === undefined) byTrace.set(s.traceId, [s]);
    else list.push(s);
  }
  if (byTrace.size > MAX_TRIED_TRACES) return { ok: false, error: `the paste holds ${byTrace.size} traces: at most ${MAX_TRIED_TRACES} are tried at once` };
  const set = createRuleSet([{ ...rule, definition: { ...rule.definition, enabled: true } }]);
  const deadline = performance.now() + TRY_BUDGET_MS;
  const traces = [...byTrace.keys()].sort().map((traceId): TriedTrace => {
    const traceSpans = byTrace.get(traceId)!;
    const left = deadline - performance.now();
    if (left <= 0) return { trace_id: traceId, spans: traceSpans.length, violated: false, budget_exceeded: true };
    const result = set.evaluate(traceSpans, { budgetMs: Math.min(DEFAULT_BUDGET_MS, left) });
    const v = result.violations[0];
    if (result.budgetExceeded === true && v === undefined) return { trace_id: traceId, spans: traceSpans.length, violated: false, budget_exceeded: true };
    if (v === undefined) return { trace_id: traceId, spans: traceSpans.length, violated: false };
    const byId = new Map(traceSpans.map((s) => [s.spanId, s]));
    return {
      trace_id: traceId,
      spans: traceSpans.length,
      violated: true,
      message: v.message,
      witness_count: v.witnessCount,
      witnesses: v.witnessSpanIds.flatMap((id) => {
        const s = byId.get(id);
        if (s === undefined) return [];
        const service = s.resource['service.name'];
        return [
          {
            span_id: id,
            name: s.name,
            service: typeof service === 'string' ? service : '',
            start_time_unix_nano: String(s.startTimeUnixNano),
            end_time_unix_nano: String(s.endTimeUnixNano),
          },
        ];
      }),
    };
  });
  return { ok: true, spans: spans.length, traces };
}
