/** Hand-built traces for the rule-language tests. */
import assert from 'node:assert/strict';
import { compileRule, evaluateTrace } from '../../src/rules/index.ts';
import type { Attributes, CompiledRule, RuleDefinition, SpanRecord, Violation } from '../../src/rules/index.ts';
import { SpanKind, StatusCode } from '../../src/rules/index.ts';

export const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
/** An arbitrary epoch so that times are realistic bigints. */
export const BASE_NS = 1_700_000_000_000_000_000n;

export interface SpanSpec {
  /** Short id, padded to 16 hex characters (default: a running number). */
  id?: string;
  parent?: string;
  /** Milliseconds after BASE_NS. */
  start?: number;
  /** Milliseconds after BASE_NS (default start + 1). */
  end?: number;
  attrs?: Attributes;
  resource?: Attributes;
  status?: keyof typeof StatusCode;
  kind?: keyof typeof SpanKind;
}

let counter = 0;
export const hexId = (id: string): string => id.padStart(16, '0');

export function span(name: string, o: SpanSpec = {}): SpanRecord {
  const start = o.start ?? 0;
  const end = o.end ?? start + 1;
  return {
    traceId: TRACE_ID,
    spanId: hexId(o.id ?? (++counter).toString(16)),
    parentSpanId: o.parent === undefined ? '' : hexId(o.parent),
    name,
    kind: SpanKind[o.kind ?? 'internal'],
    startTimeUnixNano: BASE_NS + BigInt(Math.round(start * 1e6)),
    endTimeUnixNano: BASE_NS + BigInt(Math.round(end * 1e6)),
    statusCode: StatusCode[o.status ?? 'unset'],
    statusMessage: '',
    attributes: o.attrs ?? {},
    resource: o.resource ?? {},
  };
}

export function def(condition: string, extra: Partial<RuleDefinition> = {}): RuleDefinition {
  return { id: 'test-rule', name: 'Test rule', description: '', severity: 'high', enabled: true, tags: [], condition, ...extra };
}

export function rule(condition: string, extra: Partial<RuleDefinition> = {}): CompiledRule {
  const r = compileRule(def(condition, extra));
  if (!r.ok) assert.fail(`${condition}: ${JSON.stringify(r.errors)}`);
  return r.rule;
}

/** The condition's verdict on the trace. */
export function holds(condition: string, spans: readonly SpanRecord[]): boolean {
  return evaluateTrace([rule(condition)], spans).violations.length === 0;
}

/** The violation of the condition on the trace (fails the test if it holds). */
export function violation(condition: string, spans: readonly SpanRecord[]): Violation {
  const v = evaluateTrace([rule(condition)], spans).violations[0];
  assert.ok(v, `expected a violation of ${condition}`);
  return v;
}

/** Witness span ids in short form (leading zeros stripped). */
export function witnesses(condition: string, spans: readonly SpanRecord[]): string[] {
  return violation(condition, spans).witnessSpanIds.map((s) => s.replace(/^0+/, ''));
}
