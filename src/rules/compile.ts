/**
 * Compiles a resolved condition into closures over a TraceIndex. No eval, no
 * `new Function`, no code built from rule text; regexes are compiled here, once.
 *
 * Every boolean node answers `test` (the verdict) and `witnesses` (the spans that
 * explain it, per construct as src/rules/README.md "Evaluation" lists); witnesses
 * are only computed for violations, so they may
 * re-evaluate. Loops over spans call `tick`, which throws the BUDGET sentinel once
 * the trace's deadline has passed; evaluate.ts turns that into an outcome.
 *
 * Relations avoid quadratic work in the common case: ancestor without `.on` walks
 * up from the spans asked about, memoized per trace; descendant uses the DFS
 * numbering; sibling without `.on` is one linear pass per trace;
 * preceded_by/followed_by binary-search candidates sorted by time.
 */
import type { Agg, Attr, CmpOp, Condition, Expr, Pred, RelationStep, Selector, Step, Value } from './ast.ts';
import { isAgg } from './ast.ts';
import type { RelationName } from './lexer.ts';
import type { AttributeLookup, AttributeValue, Attributes, SpanRecord } from './span.ts';
import type { TraceIndex } from './trace-index.ts';
import { compileRegex } from './regex.ts';
import { compareValues, comparator, containsComparator, inComparator, joinKey, regexComparator, toNumber } from './values.ts';

/** The state of one rule's evaluation on one trace. */
export interface EvalContext {
  readonly index: TraceIndex;
  /** Work counter, checked against the deadline every 1024 steps. */
  steps: number;
  /** performance.now() after which evaluation stops; Infinity for none. */
  readonly deadline: number;
}

/** Thrown (and caught by evaluate.ts) when a trace's evaluation budget is spent. */
export class BudgetExceededError extends Error {}
/** One shared instance: thrown on a hot path, so no stack is captured per throw. */
export const BUDGET = new BudgetExceededError('evaluation budget exceeded');

function tick(c: EvalContext): void {
  if ((++c.steps & 1023) === 0 && performance.now() > c.deadline) throw BUDGET;
}

type SpanTest = (c: EvalContext, i: number) => boolean;
type Getter = (c: EvalContext, i: number) => AttributeValue | undefined;

export interface BoolNode {
  test(c: EvalContext): boolean;
  /** Span indices explaining the node's current value (may contain duplicates). */
  witnesses(c: EvalContext): number[];
}

interface NumNode {
  value(c: EvalContext): number | undefined;
  /** The spans counted. */
  spans(c: EvalContext): number[];
}

// ---------------------------------------------------------------- attributes

const STATUS = ['unset', 'ok', 'error'];
const KIND = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

/** Own-property lookup; the slow path only for keys that Object.prototype has. */
function lookup(key: string): (o: Attributes) => AttributeValue | undefined {
  if (key in Object.prototype) return (o) => (Object.hasOwn(o, key) ? o[key] : undefined);
  return (o) => o[key];
}

function getter(a: Attr): Getter {
  if (a.kind === 'intrinsic') {
    switch (a.name) {
      case 'name':
        return (c, i) => (c.index.spans[i] as SpanRecord).name;
      case 'duration':
        return (c, i) => (c.index.end[i] as number) - (c.index.start[i] as number);
      case 'status':
        return (c, i) => STATUS[(c.index.spans[i] as SpanRecord).statusCode] ?? 'unset';
      case 'kind':
        return (c, i) => KIND[(c.index.spans[i] as SpanRecord).kind] ?? 'unspecified';
      default: {
        const get = lookup('service.name');
        return (c, i) => get((c.index.spans[i] as SpanRecord).resource);
      }
    }
  }
  const get = lookup(a.key);
  if (a.scope === 'resource') return (c, i) => get((c.index.spans[i] as SpanRecord).resource);
  const key = a.key;
  const utf8 = new TextEncoder().encode(key);
  const own = (s: SpanRecord & Partial<AttributeLookup>) => (s.attribute !== undefined ? s.attribute(key, utf8) : get(s.attributes));
  if (a.scope === 'span') return (c, i) => own(c.index.spans[i] as SpanRecord);
  return (c, i) => {
    const s = c.index.spans[i] as SpanRecord;
    const v = own(s);
    return v === undefined ? get(s.resource) : v;
  };
}

/** The composite join key of `.on(k1, k2…)`; undefined when a key is missing. */
function keyer(attrs: readonly Attr[]): (c: EvalContext, i: number) => string | undefined {
  const getters = attrs.map(getter);
  if (getters.length === 1) {
    const g = getters[0] as Getter;
    return (c, i) => joinKey(g(c, i));
  }
  return (c, i) => {
    let key = '';
    for (const g of getters) {
      const k = joinKey(g(c, i));
      if (k === undefined) return undefined;
      key += k + '\u0001';
    }
    return key;
  };
}

// ---------------------------------------------------------------- predicates

function all(tests: readonly SpanTest[]): SpanTest {
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0] as SpanTest;
  if (tests.length === 2) {
    const [a, b] = tests as [SpanTest, SpanTest];
    return (c, i) => a(c, i) && b(c, i);
  }
  return (c, i) => tests.every((t) => t(c, i));
}

export function compilePred(p: Pred): SpanTest {
  switch (p.kind) {
    case 'pand':
      return all(p.operands.map(compilePred));
    case 'por': {
      const ops = p.operands.map(compilePred);
      return (c, i) => ops.some((t) => t(c, i));
    }
    case 'pnot': {
      const t = compilePred(p.operand);
      return (c, i) => !t(c, i);
    }
    case 'exists': {
      const g = getter(p.attr);
      return (c, i) => g(c, i) !== undefined;
    }
    case 'cmp': {
      const g = getter(p.attr);
      const cmp = comparator(p.op, p.value);
      return (c, i) => cmp(g(c, i));
    }
    case 'regex': {
      const g = getter(p.attr);
      const compiled = compileRegex(p.pattern.value);
      // validate.ts refused every pattern that does not compile
      if (!compiled.ok) throw new Error(`internal: regex ${JSON.stringify(p.pattern.value)} passed validation but does not compile: ${compiled.message}`);
      const cmp = regexComparator(compiled.regex, p.negated);
      return (c, i) => cmp(g(c, i));
    }
    case 'in': {
      const g = getter(p.attr);
      const cmp = inComparator(p.values, p.negated);
      return (c, i) => cmp(g(c, i));
    }
    case 'contains': {
      const g = getter(p.attr);
      const cmp = containsComparator(p.value);
      return (c, i) => cmp(g(c, i));
    }
  }
}

/**
 * A span name as V8 keeps property names: flat and internalized. The parser's names are
 * slices of the rule text, and every trace looks them up in its Map of names (and the rule
 * set's Map of triggers is keyed by them) and compares them with span names: with these
 * strings instead, 100 rules took about a twentieth less time (alternating passes).
 */
export function internalized(name: string): string {
  return Object.keys({ [name]: true })[0] ?? name;
}

function candidates(s: Selector): (c: EvalContext) => readonly number[] {
  if (s.kind === 'any') return (c) => c.index.all();
  const name = internalized(s.name);
  return (c) => c.index.named(name);
}

function selectorTest(s: Selector): SpanTest {
  if (s.kind === 'any') return () => true;
  const name = internalized(s.name);
  return (c, i) => (c.index.spans[i] as SpanRecord).name === name;
}

// ---------------------------------------------------------------- relations

function upperBound(keys: Float64Array, idx: Int32Array, x: number): number {
  // number of entries with keys[e] <= x (entries sorted by key)
  let lo = 0;
  let hi = idx.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[idx[mid] as number] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lowerBound(keys: Float64Array | Int32Array, idx: Int32Array, x: number): number {
  // first entry with keys[e] >= x
  let lo = 0;
  let hi = idx.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[idx[mid] as number] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * `members` sorted by their keys, stably, in an Int32Array of the trace's. Groups are
 * mostly a few spans: an insertion sort, with no comparator call per comparison.
 */
function sortedBy(c: EvalContext, members: number[], keys: Float64Array | Int32Array): Int32Array {
  const out = c.index.arrays.int32(members.length);
  if (members.length > 24) {
    members.sort((a, b) => (keys[a] as number) - (keys[b] as number));
    out.set(members);
    return out;
  }
  for (let k = 0; k < members.length; k++) {
    const m = members[k] as number;
    const key = keys[m] as number;
    let j = k;
    for (; j > 0 && (keys[out[j - 1] as number] as number) > key; j--) out[j] = out[j - 1] as number;
    out[j] = m;
  }
  return out;
}

/** Compiles `.relation(Y[, pred])[.within(d)][.on(k…)]` into a test on the span x. */
function compileRelation(step: RelationStep): SpanTest {
  const matchSel = selectorTest(step.selector);
  const pred = step.pred === null ? null : compilePred(step.pred);
  const match: SpanTest = pred === null ? matchSel : (c, i) => matchSel(c, i) && pred(c, i);
  const onAttrs = step.modifiers.flatMap((m) => (m.kind === 'on' ? m.attrs : []));
  const within = step.modifiers.find((m) => m.kind === 'within');
  const maxGap = within === undefined ? Infinity : within.duration.ns;
  const key = onAttrs.length === 0 ? null : keyer(onAttrs);
  const cands = candidates(step.selector);
  const memoKey = step; // one memo entry per relation node and trace

  /** Matching candidates, grouped by join key ('' without `.on`), cached per trace. */
  const groups = <T>(c: EvalContext, build: (c: EvalContext, members: number[]) => T): Map<string, T> => {
    const memo = c.index.memo;
    let m = memo.get(memoKey) as Map<string, T> | undefined;
    if (m !== undefined) return m;
    m = new Map();
    if (key === null) {
      // One group: the matching candidates.
      const members: number[] = [];
      for (const y of cands(c)) {
        tick(c);
        if (match(c, y)) members.push(y);
      }
      if (members.length > 0) m.set('', build(c, members));
      memo.set(memoKey, m);
      return m;
    }
    const byKey = new Map<string, number[]>();
    for (const y of cands(c)) {
      tick(c);
      if (!match(c, y)) continue;
      const k = key(c, y);
      if (k === undefined) continue;
      const list = byKey.get(k);
      if (list === undefined) byKey.set(k, [y]);
      else list.push(y);
    }
    for (const [k, members] of byKey) m.set(k, build(c, members));
    memo.set(memoKey, m);
    return m;
  };
  const keyOf = (c: EvalContext, x: number): string | undefined => (key === null ? '' : key(c, x));
  const joins = (c: EvalContext, x: number, y: number): boolean => key === null || (key(c, x) !== undefined && key(c, x) === key(c, y));

  const relation: RelationName = step.relation;
  switch (relation) {
    case 'has_parent':
      return (c, x) => {
        const p = c.index.parent[x] as number;
        return p >= 0 && match(c, p) && joins(c, x, p);
      };
    case 'has_child':
      return (c, x) => {
        const { childStart, childList } = c.index;
        for (let k = childStart[x] as number; k < (childStart[x + 1] as number); k++) {
          tick(c);
          const y = childList[k] as number;
          if (match(c, y) && joins(c, x, y)) return true;
        }
        return false;
      };
    case 'has_ancestor':
      if (key === null) {
        return (c, x) => {
          // anc[i]: 1 some proper ancestor of i matches, 2 none does, 0 not known yet. Walks
          // up from the spans asked about, each stopping at the first span whose answer is
          // known: linear in the trace, and no DFS numbering made for it.
          let anc = c.index.memo.get(memoKey) as Uint8Array | undefined;
          if (anc === undefined) {
            anc = c.index.arrays.uint8(c.index.size).fill(0);
            c.index.memo.set(memoKey, anc);
          }
          if (anc[x] === 0) {
            const parent = c.index.treeParent;
            let answer = 2;
            let p = parent[x] as number;
            for (; p >= 0; p = parent[p] as number) {
              tick(c);
              if (anc[p] === 1 || match(c, p)) {
                answer = 1;
                break;
              }
              if (anc[p] === 2) break;
            }
            // Every span from x up to (not with) p has the answer: none between matches.
            for (let q = x; q !== p; q = parent[q] as number) anc[q] = answer;
          }
          return anc[x] === 1;
        };
      }
      return (c, x) => {
        const kx = key(c, x);
        if (kx === undefined) return false;
        const parent = c.index.treeParent;
        for (let p = parent[x] as number; p >= 0; p = parent[p] as number) {
          tick(c);
          if (match(c, p) && key(c, p) === kx) return true;
        }
        return false;
      };
    case 'has_descendant': {
      if (key === null) {
        return (c, x) => {
          let desc = c.index.memo.get(memoKey) as Uint8Array | undefined;
          if (desc === undefined) {
            const { treeParent: parent, preorder } = c.index;
            desc = c.index.arrays.uint8(c.index.size).fill(0);
            for (let k = preorder.length - 1; k >= 0; k--) {
              tick(c);
              const i = preorder[k] as number;
              const p = parent[i] as number;
              if (p >= 0 && (desc[i] === 1 || match(c, i))) desc[p] = 1;
            }
            c.index.memo.set(memoKey, desc);
          }
          return desc[x] === 1;
        };
      }
      // With a join: matching candidates per key sorted by DFS number; a descendant
      // of x has its number in (tin[x], tout[x]].
      return (c, x) => {
        const g = groups(c, (c2, members) => sortedBy(c2, members, c2.index.tin));
        const kx = keyOf(c, x);
        const list = kx === undefined ? undefined : g.get(kx);
        if (list === undefined) return false;
        const { tin, tout } = c.index;
        const pos = lowerBound(tin, list, (tin[x] as number) + 1);
        const y = list[pos];
        return y !== undefined && (tin[y] as number) <= (tout[x] as number);
      };
    }
    case 'has_sibling':
      // Siblings share a parent span id (present in the trace or not).
      return (c, x) => {
        const g = groups(c, (c2, members) => {
          const counts = new Map<string, number>();
          for (const y of members) {
            const pid = (c2.index.spans[y] as SpanRecord).parentSpanId;
            if (pid !== '') counts.set(pid, (counts.get(pid) ?? 0) + 1);
          }
          return counts;
        });
        const pid = (c.index.spans[x] as SpanRecord).parentSpanId;
        const kx = keyOf(c, x);
        if (pid === '' || kx === undefined) return false;
        const n = g.get(kx)?.get(pid) ?? 0;
        const self = match(c, x) ? 1 : 0;
        return n - self > 0;
      };
    case 'preceded_by':
      // y.end <= x.start, and x.start - y.end <= within
      return (c, x) => {
        const g = groups(c, (c2, members) => sortedBy(c2, members, c2.index.end));
        const kx = keyOf(c, x);
        const list = kx === undefined ? undefined : g.get(kx);
        if (list === undefined) return false;
        const { start, end } = c.index;
        const xs = start[x] as number;
        for (let pos = upperBound(end, list, xs) - 1; pos >= 0; pos--) {
          tick(c);
          const y = list[pos] as number;
          if (xs - (end[y] as number) > maxGap) return false;
          if (y !== x) return true;
        }
        return false;
      };
    case 'followed_by':
      // y.start >= x.end, and y.start - x.end <= within
      return (c, x) => {
        const g = groups(c, (c2, members) => sortedBy(c2, members, c2.index.start));
        const kx = keyOf(c, x);
        const list = kx === undefined ? undefined : g.get(kx);
        if (list === undefined) return false;
        const { start, end } = c.index;
        const xe = end[x] as number;
        for (let pos = lowerBound(start, list, xe); pos < list.length; pos++) {
          tick(c);
          const y = list[pos] as number;
          if ((start[y] as number) - xe > maxGap) return false;
          if (y !== x) return true;
        }
        return false;
      };
  }
}

function compileStep(s: Step): SpanTest {
  return s.kind === 'relation' ? compileRelation(s) : compilePred(s.pred);
}

// ---------------------------------------------------------------- aggregates

function filtered(selector: Selector, wheres: readonly Pred[]): (c: EvalContext) => number[] {
  const cands = candidates(selector);
  const test = all(wheres.map(compilePred));
  return (c) => {
    const out: number[] = [];
    for (const i of cands(c)) {
      tick(c);
      if (test(c, i)) out.push(i);
    }
    return out;
  };
}

function compileAgg(a: Agg): NumNode {
  switch (a.kind) {
    case 'count': {
      const spans = filtered(a.selector, a.wheres);
      if (a.distinct === null) {
        if (a.wheres.length === 0) {
          const cands = candidates(a.selector);
          return { value: (c) => cands(c).length, spans: (c) => [...cands(c)] };
        }
        return { value: (c) => spans(c).length, spans };
      }
      const g = getter(a.distinct);
      return {
        value: (c) => {
          const seen = new Set<string>();
          for (const i of spans(c)) {
            const k = joinKey(g(c, i));
            if (k !== undefined) seen.add(k);
          }
          return seen.size;
        },
        spans,
      };
    }
    case 'sum':
    case 'min':
    case 'max':
    case 'avg': {
      const spans = filtered(a.selector, a.wheres);
      const g = getter(a.attr);
      const kind = a.kind;
      const counted = (c: EvalContext): { n: number; sum: number; min: number; max: number; used: number[] } => {
        let n = 0;
        let sum = 0;
        let min = Infinity;
        let max = -Infinity;
        const used: number[] = [];
        for (const i of spans(c)) {
          const v = toNumber(g(c, i));
          if (v === undefined) continue;
          n++;
          sum += v;
          if (v < min) min = v;
          if (v > max) max = v;
          used.push(i);
        }
        return { n, sum, min, max, used };
      };
      return {
        value: (c) => {
          const r = counted(c);
          if (kind === 'sum') return r.sum;
          if (r.n === 0) return undefined;
          return kind === 'min' ? r.min : kind === 'max' ? r.max : r.sum / r.n;
        },
        spans: (c) => counted(c).used,
      };
    }
    case 'trace_duration':
      return {
        value: (c) => c.index.duration(),
        spans: (c) => {
          const { size, start, end } = c.index;
          if (size === 0) return [];
          let first = 0;
          let last = 0;
          for (let i = 1; i < size; i++) {
            if ((start[i] as number) < (start[first] as number)) first = i;
            if ((end[i] as number) > (end[last] as number)) last = i;
          }
          return [first, last];
        },
      };
    case 'span_count':
      return { value: (c) => c.index.size, spans: (c) => [...c.index.all()] };
  }
}

function compileCompare(left: Agg, op: CmpOp, right: Agg | Value): BoolNode {
  const l = compileAgg(left);
  if (isAgg(right)) {
    const r = compileAgg(right);
    const test = (c: EvalContext): boolean => {
      const a = l.value(c);
      const b = r.value(c);
      return a !== undefined && b !== undefined && compareValues(a, op, b);
    };
    return { test, witnesses: (c) => [...l.spans(c), ...r.spans(c)] };
  }
  // A literal: a number, a duration (ns) or a numeric string; anything else never compares.
  const lit = right.kind === 'number' ? right.value : right.kind === 'duration' ? right.ns : right.kind === 'string' ? toNumber(right.value) : undefined;
  const test = (c: EvalContext): boolean => {
    const a = l.value(c);
    return a !== undefined && lit !== undefined && compareValues(a, op, lit);
  };
  return { test, witnesses: (c) => l.spans(c) };
}

// ---------------------------------------------------------------- expressions

function compileChain(selector: Selector, steps: readonly Step[], every: boolean): BoolNode {
  const cands = candidates(selector);
  if (!every) {
    const test = all(steps.map(compileStep));
    return {
      test(c) {
        for (const i of cands(c)) {
          tick(c);
          if (test(c, i)) return true;
        }
        return false;
      },
      witnesses(c) {
        return cands(c).filter((i) => test(c, i));
      },
    };
  }
  const filter = all(steps.filter((s) => s.kind === 'where').map(compileStep));
  const assert = all(steps.filter((s) => s.kind !== 'where').map(compileStep));
  const node: BoolNode = {
    test(c) {
      for (const i of cands(c)) {
        tick(c);
        if (filter(c, i) && !assert(c, i)) return false;
      }
      return true;
    },
    // false: the spans that failed an assertion; true: the spans checked.
    witnesses(c) {
      const checked = cands(c).filter((i) => filter(c, i));
      const failed = checked.filter((i) => !assert(c, i));
      return failed.length > 0 ? failed : checked;
    },
  };
  return node;
}

function union(c: EvalContext, nodes: readonly BoolNode[]): number[] {
  return nodes.flatMap((n) => n.witnesses(c));
}

export function compileExpr(e: Expr): BoolNode {
  switch (e.kind) {
    case 'bool': {
      const v = e.value;
      return { test: () => v, witnesses: () => [] };
    }
    case 'not': {
      const x = compileExpr(e.operand);
      return { test: (c) => !x.test(c), witnesses: (c) => x.witnesses(c) };
    }
    case 'and': {
      const ops = e.operands.map(compileExpr);
      return {
        test: (c) => ops.every((o) => o.test(c)),
        witnesses: (c) => {
          const firstFalse = ops.find((o) => !o.test(c));
          return firstFalse === undefined ? union(c, ops) : firstFalse.witnesses(c);
        },
      };
    }
    case 'or': {
      const ops = e.operands.map(compileExpr);
      return {
        test: (c) => ops.some((o) => o.test(c)),
        witnesses: (c) => {
          const firstTrue = ops.find((o) => o.test(c));
          return firstTrue === undefined ? union(c, ops) : firstTrue.witnesses(c);
        },
      };
    }
    case 'implies':
      return implication(compileExpr(e.left), compileExpr(e.right), null);
    case 'has':
      return compileChain(e.selector, e.steps, false);
    case 'every':
      return compileChain(e.selector, e.steps, true);
    case 'compare':
      return compileCompare(e.left, e.op, e.right);
  }
}

/** `A implies (B and not C)`; witnesses of a failure: A's spans, B's if B failed, C's if C matched. */
function implication(a: BoolNode, b: BoolNode | null, never: BoolNode | null): BoolNode {
  const consequent = (c: EvalContext): boolean => (b === null || b.test(c)) && (never === null || !never.test(c));
  return {
    test: (c) => !a.test(c) || consequent(c),
    witnesses: (c) => {
      if (!a.test(c)) return a.witnesses(c);
      const out = a.witnesses(c);
      if (b !== null && !b.test(c)) out.push(...b.witnesses(c));
      if (never !== null && never.test(c)) out.push(...never.witnesses(c));
      return out;
    },
  };
}

export function compileCondition(cond: Condition): BoolNode {
  if (cond.kind === 'when') {
    return implication(
      compileExpr(cond.when),
      cond.always === null ? null : compileExpr(cond.always),
      cond.never === null ? null : compileExpr(cond.never),
    );
  }
  return compileExpr(cond);
}

/**
 * The span names whose presence can change the verdict: the selectors of every
 * trace.has / trace.every / aggregate. Null (always run) when one of them is `*`
 * or the condition uses trace.duration / trace.span_count.
 */
export function triggerNames(cond: Condition): Set<string> | null {
  const names = new Set<string>();
  let always = false;
  const sel = (s: Selector): void => {
    if (s.kind === 'any') always = true;
    else names.add(internalized(s.name));
  };
  const agg = (a: Agg): void => {
    if ('selector' in a) sel(a.selector);
    else always = true;
  };
  const expr = (e: Expr): void => {
    switch (e.kind) {
      case 'not':
        expr(e.operand);
        return;
      case 'and':
      case 'or':
        e.operands.forEach(expr);
        return;
      case 'implies':
        expr(e.left);
        expr(e.right);
        return;
      case 'has':
      case 'every':
        sel(e.selector);
        return;
      case 'compare':
        agg(e.left);
        if (isAgg(e.right)) agg(e.right);
        return;
      case 'bool':
        return;
    }
  };
  if (cond.kind === 'when') {
    expr(cond.when);
    if (cond.always !== null) expr(cond.always);
    if (cond.never !== null) expr(cond.never);
  } else expr(cond);
  return always ? null : names;
}
