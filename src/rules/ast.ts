/**
 * The typed AST of a condition. The grammar (grammar.ne) builds the *surface* tree,
 * which records what the author wrote (shorthand, parentheses, `== unique`);
 * validate.ts turns it into the *resolved* tree that print.ts and compile.ts read
 * (leading-has read as `implies`, shorthand expanded, `== unique` as `.distinct`).
 *
 * Every node carries `loc`, the position of its first token in the condition text.
 */
import type { RelationName } from './lexer.ts';

export interface Loc {
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
  /** 0-based offset into the condition text. */
  readonly offset: number;
}

// ---------------------------------------------------------------- values

export interface NumberValue {
  readonly kind: 'number';
  readonly value: number;
  readonly loc: Loc;
}
export type DurationUnit = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';
export interface DurationValue {
  readonly kind: 'duration';
  readonly amount: number;
  readonly unit: DurationUnit;
  /** The duration in nanoseconds. */
  readonly ns: number;
  readonly loc: Loc;
}
export interface StringValue {
  readonly kind: 'string';
  readonly value: string;
  /** Written as a bare word (`operation == write`); validate.ts clears it once
   * `== unique` has been resolved, and the printer always quotes. */
  readonly bare: boolean;
  readonly loc: Loc;
}
export interface BoolValue {
  readonly kind: 'bool';
  readonly value: boolean;
  readonly loc: Loc;
}
export type Value = NumberValue | DurationValue | StringValue | BoolValue;

// ---------------------------------------------------------------- attributes

export const INTRINSICS = ['name', 'duration', 'status', 'kind', 'service'] as const;
export type IntrinsicName = (typeof INTRINSICS)[number];

export interface AttrRef {
  readonly kind: 'attr';
  /** `span.k` → span, `resource.k` → resource, bare or quoted `k` → any (span, then resource). */
  readonly scope: 'span' | 'resource' | 'any';
  /** A quoted string names any key verbatim: `"span.x"` is the key `span.x`, scope any. */
  readonly key: string;
  readonly loc: Loc;
}
export interface IntrinsicRef {
  readonly kind: 'intrinsic';
  /** As written after `span:`; validate.ts rejects names outside INTRINSICS. */
  readonly name: string;
  readonly loc: Loc;
}
export type Attr = AttrRef | IntrinsicRef;

// ---------------------------------------------------------------- predicates (on one span)

export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export interface PredAnd {
  readonly kind: 'pand';
  readonly operands: readonly Pred[];
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface PredOr {
  readonly kind: 'por';
  readonly operands: readonly Pred[];
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface PredNot {
  readonly kind: 'pnot';
  readonly operand: Pred;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface PredExists {
  readonly kind: 'exists';
  readonly attr: Attr;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface PredCompare {
  readonly kind: 'cmp';
  readonly attr: Attr;
  readonly op: CmpOp;
  readonly value: Value;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface PredRegex {
  readonly kind: 'regex';
  readonly attr: Attr;
  /** `!~` */
  readonly negated: boolean;
  /** How it was written: `=~`, `!~` or `matches`. */
  readonly op: '=~' | '!~' | 'matches';
  readonly pattern: StringValue;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface PredIn {
  readonly kind: 'in';
  readonly attr: Attr;
  readonly negated: boolean;
  readonly values: readonly Value[];
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface PredContains {
  readonly kind: 'contains';
  readonly attr: Attr;
  readonly value: Value;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export type Pred = PredAnd | PredOr | PredNot | PredExists | PredCompare | PredRegex | PredIn | PredContains;

// ---------------------------------------------------------------- selectors and steps

export interface NameSelector {
  readonly kind: 'name';
  readonly name: string;
  readonly loc: Loc;
}
export interface AnySelector {
  readonly kind: 'any';
  readonly loc: Loc;
}
export type Selector = NameSelector | AnySelector;

export interface WhereStep {
  readonly kind: 'where';
  readonly pred: Pred;
  readonly loc: Loc;
}
export interface SatisfiesStep {
  readonly kind: 'satisfies';
  readonly pred: Pred;
  readonly loc: Loc;
}
export interface WithinModifier {
  readonly kind: 'within';
  readonly duration: DurationValue;
  readonly loc: Loc;
}
export interface OnModifier {
  readonly kind: 'on';
  readonly attrs: readonly Attr[];
  readonly loc: Loc;
}
export type Modifier = WithinModifier | OnModifier;
export interface RelationStep {
  readonly kind: 'relation';
  readonly relation: RelationName;
  readonly selector: Selector;
  readonly pred: Pred | null;
  readonly modifiers: readonly Modifier[];
  readonly loc: Loc;
}
export type Step = WhereStep | SatisfiesStep | RelationStep;

// ---------------------------------------------------------------- aggregates

export interface CountAgg {
  readonly kind: 'count';
  readonly selector: Selector;
  readonly wheres: readonly Pred[];
  readonly distinct: Attr | null;
  /** BeTrace's `count(X)` (only inside when-blocks). */
  readonly shorthand: boolean;
  readonly loc: Loc;
}
export interface NumericAgg {
  readonly kind: 'sum' | 'min' | 'max' | 'avg';
  readonly selector: Selector;
  readonly attr: Attr;
  readonly wheres: readonly Pred[];
  readonly loc: Loc;
}
export interface TraceAgg {
  readonly kind: 'trace_duration' | 'span_count';
  readonly loc: Loc;
}
export type Agg = CountAgg | NumericAgg | TraceAgg;

// ---------------------------------------------------------------- expressions (on a trace)

export interface BoolLit {
  readonly kind: 'bool';
  readonly value: boolean;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface NotExpr {
  readonly kind: 'not';
  readonly operand: Expr;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface AndExpr {
  readonly kind: 'and';
  readonly operands: readonly Expr[];
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface OrExpr {
  readonly kind: 'or';
  readonly operands: readonly Expr[];
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface ImpliesExpr {
  readonly kind: 'implies';
  readonly left: Expr;
  readonly right: Expr;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface HasExpr {
  readonly kind: 'has';
  readonly selector: Selector;
  readonly steps: readonly Step[];
  /** BeTrace's bare `X` / `X.where(…)` (only inside when-blocks). */
  readonly shorthand: boolean;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface EveryExpr {
  readonly kind: 'every';
  readonly selector: Selector;
  readonly steps: readonly Step[];
  readonly loc: Loc;
  readonly parens?: boolean;
}
export interface CompareExpr {
  readonly kind: 'compare';
  readonly left: Agg;
  readonly op: CmpOp;
  readonly right: Agg | Value;
  readonly loc: Loc;
  readonly parens?: boolean;
}
export type Expr = BoolLit | NotExpr | AndExpr | OrExpr | ImpliesExpr | HasExpr | EveryExpr | CompareExpr;

export interface WhenCondition {
  readonly kind: 'when';
  readonly when: Expr;
  readonly always: Expr | null;
  readonly never: Expr | null;
  readonly loc: Loc;
}

/** A whole condition: the when-form or an expression. */
export type Condition = WhenCondition | Expr;

/** Any node (for generic walks). */
export type Node = Condition | Pred | Step | Modifier | Agg | Selector | Attr | Value;

/** A deep copy without `loc` and `parens`: what "the same AST modulo locations" compares. */
export function stripLocations(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(stripLocations);
  if (node !== null && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === 'loc' || k === 'parens') continue;
      out[k] = stripLocations(v);
    }
    return out;
  }
  return node;
}

const AGG_KINDS: ReadonlySet<string> = new Set(['count', 'sum', 'min', 'max', 'avg', 'trace_duration', 'span_count']);

/** The right side of a comparison is an aggregate (not a literal value). */
export function isAgg(x: Agg | Value): x is Agg {
  return AGG_KINDS.has(x.kind);
}
