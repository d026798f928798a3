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

/**
 * Traces to evaluate, batched: every message between threads costs more than
 * a small trace's evaluation, so all the evaluations asked for in one turn of
 * the worker's event loop travel together, and their results come back together.
 * Payloads in shared memory (the worker's PayloadArena) are read in place;
 * others travel copied into `packed`.
 */
export interface EvalBatch {
  readonly type: 'eval';
  /** The shared slabs holding the batch's payloads (shared, not copied). */
  readonly slabs: readonly SharedArrayBuffer[];
  /** Payloads in no slab, back to back (transferred); empty when there are none. */
  readonly packed: Uint8Array;
  /**
   * The traces, back to back, as numbers (transferred; a structured clone of an
   * object and an array per trace cost the thread more than reading them):
   * per trace its request id, budget in ms, payload count n, then three numbers
   * per payload: its slab's index in `slabs` (-1: `packed`), byte offset, length.
   */
  readonly traces: Float64Array;
}

export interface EvalResults {
  readonly type: 'results';
  readonly results: readonly EvalResponse[];
}

export interface EvalResponse {
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

export type ThreadMessage = RulesMessage | LimitsMessage | EvalBatch;
