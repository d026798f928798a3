/** Messages between the worker and its evaluation threads. */
import type { RuleDefinition, Violation } from '../rules/index.ts';

export interface RulesMessage {
  readonly type: 'rules';
  readonly definitions: readonly RuleDefinition[];
}

export interface LimitsMessage {
  readonly type: 'limits';
  readonly maxAttributesPerSpan: number;
  readonly maxAttributeValueLength: number;
}

export interface EvalRequest {
  readonly type: 'eval';
  readonly id: number;
  /** Every payload of the trace, back to back (transferred). */
  readonly packed: Uint8Array;
  /** End offset of each payload in `packed`. */
  readonly ends: readonly number[];
  readonly budgetMs: number;
}

export interface EvalResponse {
  readonly type: 'result';
  readonly id: number;
  readonly violations: Violation[];
  /** Spans decoded (before de-duplication by span id). */
  readonly spansIn: number;
  readonly uniqueSpans: number;
  readonly undecodable: number;
  readonly budgetExceededRuleIds: string[];
  readonly failedRuleIds: string[];
  readonly seconds: number;
  readonly droppedAttributes: number;
  readonly truncatedValues: number;
}

export type ThreadMessage = RulesMessage | LimitsMessage | EvalRequest;
