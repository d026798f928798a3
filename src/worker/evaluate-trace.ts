/**
 * Decode and evaluate one trace: its OTLP payloads → spans (by a decoder made for
 * the rule set, decoderFor, with the attribute limits in force) → every rule of a rule set →
 * violations and counts. The one path from bytes to verdicts, used by the
 * evaluation threads and by replay, so both give the same verdicts and
 * violation ids for the same spans.
 */
import { AttributeKeyFilter, SpanDecoder, type DecodeLimits } from '../otlp/index.ts';
import { DEFAULT_BUDGET_MS, attributeKeys, type CompiledRule, type EvaluationResult, type RuleSet, type SpanRecord } from '../rules/index.ts';

/** A decoder for these rules: only the attributes they name, each when a rule reads it, under `limits`. */
export function decoderFor(rules: readonly CompiledRule[], limits?: DecodeLimits): SpanDecoder {
  return new SpanDecoder({ attributes: new AttributeKeyFilter(attributeKeys(rules)), lazyAttributes: true, limits });
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
  decoder: SpanDecoder,
  budgetMs: number = DEFAULT_BUDGET_MS,
): TraceEvaluation {
  const spans: SpanRecord[] = [];
  let undecodable = 0;
  for (const payload of payloads) {
    try {
      for (const s of decoder.decode(payload)) spans.push(s);
    } catch {
      undecodable++;
    }
  }
  const started = performance.now();
  const result = ruleSet.evaluate(spans, { budgetMs });
  const seconds = (performance.now() - started) / 1000;
  const { droppedAttributes, truncatedValues } = decoder.takeLimitCounts();
  return { result, spansIn: spans.length, undecodable, seconds, droppedAttributes, truncatedValues };
}
