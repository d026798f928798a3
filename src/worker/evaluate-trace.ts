/**
 * Decode and evaluate one trace: its OTLP payloads → spans (with the decode
 * limits in force in this thread, setDecodeLimits) → every rule of a rule set →
 * violations and counts. The one path from bytes to verdicts, used by the
 * evaluation threads and by replay, so both give the same verdicts and
 * violation ids for the same spans.
 */
import { AttributeKeyFilter, decodeSpans, takeLimitCounts, type DecodeOptions } from '../otlp/index.ts';
import { DEFAULT_BUDGET_MS, attributeKeys, type CompiledRule, type EvaluationResult, type RuleSet, type SpanRecord } from '../rules/index.ts';

/** Decoding for these rules: only the attributes they name, each when a rule reads it. */
export function decodeOptionsFor(rules: readonly CompiledRule[]): DecodeOptions {
  return { attributes: new AttributeKeyFilter(attributeKeys(rules)), lazyAttributes: true };
}

export interface TraceEvaluation {
  readonly result: EvaluationResult;
  /** Span records decoded (re-sent spans included: see result.repeatedSpans). */
  readonly spansIn: number;
  /** Payloads that did not decode (skipped; the rest of the trace is evaluated). */
  readonly undecodable: number;
  /** Time spent evaluating the rules (decoding excluded), s. */
  readonly seconds: number;
  /** Attributes dropped and values truncated by the decode limits. */
  readonly droppedAttributes: number;
  readonly truncatedValues: number;
}

export function decodeAndEvaluate(
  payloads: readonly Uint8Array[],
  ruleSet: RuleSet,
  decode: DecodeOptions,
  budgetMs: number = DEFAULT_BUDGET_MS,
): TraceEvaluation {
  const spans: SpanRecord[] = [];
  let undecodable = 0;
  for (const payload of payloads) {
    try {
      for (const s of decodeSpans(payload, decode)) spans.push(s);
    } catch {
      undecodable++;
    }
  }
  const started = performance.now();
  const result = ruleSet.evaluate(spans, { budgetMs });
  const seconds = (performance.now() - started) / 1000;
  const { droppedAttributes, truncatedValues } = takeLimitCounts();
  return { result, spansIn: spans.length, undecodable, seconds, droppedAttributes, truncatedValues };
}
