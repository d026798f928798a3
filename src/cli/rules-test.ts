/**
 * `betrace rules test --rules FILE --traces FILE… [--fail-on-violation]`: evaluates
 * the rules on the traces of OTLP files (JSON, the Collector file exporter's
 * one-request-per-line, or protobuf) and prints one line per violation.
 * Each trace file's form goes to stderr (JSON ids in hex, as OTLP/JSON writes
 * them, or in base64, as the proto3 JSON mapping does).
 * Exit 0; 1 on an input error (one-line reason on stderr: a file that is not
 * OTLP or holds no span is one, so that a CI gate cannot pass on nothing); 2
 * with --fail-on-violation when a violation was found.
 */
import { TraceFileError, readTraceFile, type TraceFileContents } from '../otlp/index.ts';
import { createRuleSet, formatFileDiagnostic, loadRuleFile } from '../rules/index.ts';
import type { SpanRecord } from '../rules/index.ts';
import type { RulesCheckOutput } from './rules-check.ts';

export interface RulesTestOptions {
  rules: string;
  traces: string[];
  failOnViolation: boolean;
}

export async function rulesTest(opts: RulesTestOptions, out: RulesCheckOutput): Promise<number> {
  const loaded = await loadRuleFile(opts.rules);
  if (loaded.errors.length > 0) {
    for (const e of loaded.errors) out.stderr(formatFileDiagnostic(e, 'error'));
    return 1;
  }
  for (const w of loaded.warnings) out.stderr(formatFileDiagnostic(w, 'warning'));
  if (opts.traces.length === 0) {
    out.stderr('betrace rules test: no trace file given');
    return 1;
  }
  const byTrace = new Map<string, SpanRecord[]>();
  for (const file of opts.traces) {
    let spans: SpanRecord[];
    try {
      const read = await readTraceFile(file);
      spans = read.spans;
      out.stderr(`${file}: ${describeRead(read)}`);
    } catch (e) {
      if (!(e instanceof TraceFileError) && !(e instanceof Error)) throw e;
      out.stderr(`betrace rules test: ${e.message.split('\n')[0] ?? ''}`);
      return 1;
    }
    for (const s of spans) {
      const list = byTrace.get(s.traceId);
      if (list === undefined) byTrace.set(s.traceId, [s]);
      else list.push(s);
    }
  }
  const set = createRuleSet(loaded.rules);
  let violations = 0;
  for (const traceId of [...byTrace.keys()].sort()) {
    const result = set.evaluate(byTrace.get(traceId) ?? []);
    for (const v of result.violations) {
      violations++;
      out.stdout(`${v.traceId} ${v.ruleId} ${v.severity} ${JSON.stringify(v.message)} witnesses=${v.witnessCount}${v.witnessSpanIds.length > 0 ? ` [${v.witnessSpanIds.join(',')}]` : ''} id=${v.violationId}`);
    }
    if (result.budgetExceeded === true) out.stderr(`${traceId}: evaluation budget exceeded for ${(result.budgetExceededRuleIds ?? []).join(', ')}`);
  }
  out.stdout(`${violations} violation${violations === 1 ? '' : 's'} in ${byTrace.size} trace${byTrace.size === 1 ? '' : 's'} (${set.rules.length} rule${set.rules.length === 1 ? '' : 's'})`);
  return violations > 0 && opts.failOnViolation ? 2 : 0;
}

function describeRead(read: TraceFileContents & { spans: readonly SpanRecord[] }): string {
  const counts = `${read.requests.length} request${read.requests.length === 1 ? '' : 's'}, ${read.spans.length} span${read.spans.length === 1 ? '' : 's'}`;
  if (read.format !== 'json') return `OTLP protobuf, ${counts}`;
  return `OTLP JSON, ${counts}; ids in ${read.idForm === 'base64' ? 'the proto3 JSON (base64) form' : 'the OTLP/JSON (hex) form'}`;
}
