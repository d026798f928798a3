/**
 * Semantic checks and rewrites: turns the surface AST (what the author wrote) into
 * the resolved AST (what print.ts and compile.ts read), collecting every error and
 * the warnings (the seed form's weaker readings, src/rules/README.md "The seed idioms,
 * and how they are read", and the likely mistakes of its "Error codes" warnings table).
 *
 * Rewrites:
 * - the seed's leading-has idiom: a top-level `H and A and B` whose first operand
 *   is an unparenthesised trace.has chain becomes `H implies (A and B)`;
 * - BeTrace shorthand inside when-blocks (`X`, `X.where(…)`, `count(X)`) becomes
 *   trace.has / trace.count;
 * - `trace.count(X).where(k == unique and P)` becomes `trace.count(X).where(P).distinct(k)`.
 */
import type {
  Agg,
  Attr,
  Condition,
  CountAgg,
  Expr,
  HasExpr,
  Loc,
  Modifier,
  Pred,
  Selector,
  Step,
  Value,
} from './ast.ts';
import { INTRINSICS, isAgg } from './ast.ts';
import { didYouMean } from '../expected.ts';
import { MAX_NESTING_DEPTH } from './diagnostics.ts';
import type { ErrorCode, RuleDiagnostic, WarningCode } from './diagnostics.ts';
import { printCondition, printExpr, printPred, printSelector } from './print.ts';
import { compileRegex } from './regex.ts';

/** What a rule says about itself, for the warnings that compare words with the condition. */
export interface RuleContext {
  readonly name?: string;
  readonly description?: string;
  readonly message?: string;
}

export interface ValidationResult {
  /** The resolved condition, or null when there are errors. */
  readonly condition: Condition | null;
  readonly errors: RuleDiagnostic[];
  readonly warnings: RuleDiagnostic[];
  /** The seed's leading-has idiom was applied. */
  readonly leadingHas: boolean;
}

const ENUMS: Readonly<Record<string, readonly string[]>> = {
  status: ['ok', 'error', 'unset'],
  kind: ['server', 'client', 'producer', 'consumer', 'internal', 'unspecified'],
};

const LOGICAL = new Set(['and', 'or', 'not', 'implies', 'pand', 'por', 'pnot', 'when']);

/** The deepest chain of logical operators, or the location where it passes the limit. */
function depthViolation(node: unknown, depth: number): Loc | null {
  if (Array.isArray(node)) {
    for (const x of node) {
      const r = depthViolation(x, depth);
      if (r !== null) return r;
    }
    return null;
  }
  if (node === null || typeof node !== 'object') return null;
  const n = node as { kind?: string; loc?: Loc };
  const d = n.kind !== undefined && LOGICAL.has(n.kind) ? depth + 1 : depth;
  if (d > MAX_NESTING_DEPTH) return n.loc ?? { line: 1, col: 1, offset: 0 };
  for (const [k, v] of Object.entries(node)) {
    if (k === 'loc') continue;
    const r = depthViolation(v, d);
    if (r !== null) return r;
  }
  return null;
}

function isUnique(p: Pred): boolean {
  return p.kind === 'cmp' && p.op === '==' && p.value.kind === 'string' && p.value.bare && p.value.value === 'unique';
}

class Validator {
  readonly errors: RuleDiagnostic[] = [];
  readonly warnings: RuleDiagnostic[] = [];
  /** The condition text, to place errors inside string literals; absent, they point at the literal. */
  readonly source: string | undefined;

  constructor(source: string | undefined) {
    this.source = source;
  }

  error(at: Loc, code: ErrorCode, message: string): void {
    this.errors.push({ line: at.line, column: at.col, code, message });
  }

  warn(at: Loc, code: WarningCode, message: string): void {
    this.warnings.push({ line: at.line, column: at.col, code, message });
  }

  // ------------------------------------------------------------ expressions

  expr(e: Expr, inWhen: boolean): Expr {
    switch (e.kind) {
      case 'bool':
        return { kind: 'bool', value: e.value, loc: e.loc };
      case 'not':
        return { kind: 'not', operand: this.expr(e.operand, inWhen), loc: e.loc };
      case 'and':
      case 'or':
        return { kind: e.kind, operands: e.operands.map((x) => this.expr(x, inWhen)), loc: e.loc };
      case 'implies':
        return { kind: 'implies', left: this.expr(e.left, inWhen), right: this.expr(e.right, inWhen), loc: e.loc };
      case 'has':
        if (e.shorthand && !inWhen) {
          const name = printSelector(e.selector);
          this.error(e.loc, 'shorthand-outside-when', `a bare span name (${name}) is BeTrace shorthand, allowed only inside when { … }; write trace.has(${name})`);
        }
        return { kind: 'has', selector: this.selector(e.selector), steps: e.steps.map((s) => this.step(s)), shorthand: false, loc: e.loc };
      case 'every':
        if (!e.steps.some((s) => s.kind !== 'where')) {
          this.error(e.loc, 'every-without-assertion', `trace.every(${printSelector(e.selector)}) needs an assertion: a .satisfies(…) or relation step that every selected span must pass (.where only filters)`);
        }
        return { kind: 'every', selector: this.selector(e.selector), steps: e.steps.map((s) => this.step(s)), loc: e.loc };
      case 'compare':
        return {
          kind: 'compare',
          left: this.agg(e.left, inWhen),
          op: e.op,
          right: isAgg(e.right) ? this.agg(e.right, inWhen) : this.value(e.right),
          loc: e.loc,
        };
    }
  }

  selector(s: Selector): Selector {
    return s.kind === 'any' ? { kind: 'any', loc: s.loc } : { kind: 'name', name: s.name, loc: s.loc };
  }

  step(s: Step): Step {
    switch (s.kind) {
      case 'where':
      case 'satisfies':
        return { kind: s.kind, pred: this.pred(s.pred), loc: s.loc };
      case 'relation': {
        const withins = s.modifiers.filter((m) => m.kind === 'within');
        const temporal = s.relation === 'preceded_by' || s.relation === 'followed_by';
        for (const [i, m] of withins.entries()) {
          if (!temporal) this.error(m.loc, 'bad-modifier', `.within(…) bounds the time gap of preceded_by/followed_by; it has no meaning on ${s.relation}`);
          else if (i > 0) this.error(m.loc, 'bad-modifier', '.within(…) given twice on one relation');
        }
        return {
          kind: 'relation',
          relation: s.relation,
          selector: this.selector(s.selector),
          pred: s.pred === null ? null : this.pred(s.pred),
          modifiers: s.modifiers.map((m) => this.modifier(m)),
          loc: s.loc,
        };
      }
    }
  }

  modifier(m: Modifier): Modifier {
    if (m.kind === 'within') {
      const d = this.value(m.duration);
      return { kind: 'within', duration: d.kind === 'duration' ? d : m.duration, loc: m.loc };
    }
    return { kind: 'on', attrs: m.attrs.map((a) => this.attr(a)), loc: m.loc };
  }

  agg(a: Agg, inWhen: boolean): Agg {
    switch (a.kind) {
      case 'count':
        return this.count(a, inWhen);
      case 'sum':
      case 'min':
      case 'max':
      case 'avg':
        return { kind: a.kind, selector: this.selector(a.selector), attr: this.attr(a.attr), wheres: a.wheres.map((p) => this.pred(p)), loc: a.loc };
      case 'trace_duration':
      case 'span_count':
        return { kind: a.kind, loc: a.loc };
    }
  }

  /** `k == unique` as a top-level conjunct of a where becomes `.distinct(k)`. */
  count(a: CountAgg, inWhen: boolean): CountAgg {
    if (a.shorthand && !inWhen) {
      this.error(a.loc, 'shorthand-outside-when', `count(…) is BeTrace shorthand, allowed only inside when { … }; write trace.count(${printSelector(a.selector)})`);
    }
    let distinct: Attr | null = a.distinct === null ? null : this.attr(a.distinct);
    const wheres: Pred[] = [];
    for (const w of a.wheres) {
      const conjuncts = w.kind === 'pand' ? w.operands : [w];
      const rest: Pred[] = [];
      for (const c of conjuncts) {
        if (!isUnique(c)) {
          rest.push(this.pred(c));
          continue;
        }
        const k = (c as { attr: Attr }).attr;
        if (distinct !== null) this.error(c.loc, 'duplicate-distinct', 'trace.count(…) can count distinct values of one attribute only (`== unique` / .distinct given twice)');
        else distinct = this.attr(k);
      }
      const first = rest[0];
      if (first === undefined) continue;
      wheres.push(rest.length === 1 ? first : { kind: 'pand', operands: rest, loc: first.loc });
    }
    return { kind: 'count', selector: this.selector(a.selector), wheres, distinct, shorthand: false, loc: a.loc };
  }

  // ------------------------------------------------------------ predicates

  pred(p: Pred): Pred {
    switch (p.kind) {
      case 'pand':
      case 'por':
        return { kind: p.kind, operands: p.operands.map((x) => this.pred(x)), loc: p.loc };
      case 'pnot':
        return { kind: 'pnot', operand: this.pred(p.operand), loc: p.loc };
      case 'exists':
        return { kind: 'exists', attr: this.attr(p.attr), loc: p.loc };
      case 'cmp':
        if (isUnique(p)) {
          this.error(p.loc, 'misplaced-unique', '`k == unique` is only allowed as a top-level conjunct of trace.count(X).where(…), where it counts distinct values of k; write "unique" in quotes for the string');
        }
        if (p.op === '==' || p.op === '!=') this.checkEnum(p.attr, [p.value]);
        return { kind: 'cmp', attr: this.attr(p.attr), op: p.op, value: this.value(p.value), loc: p.loc };
      case 'regex':
        this.checkRegex(p.pattern.value, p.pattern.loc);
        return { kind: 'regex', attr: this.attr(p.attr), negated: p.negated, op: p.op, pattern: { ...p.pattern, bare: false }, loc: p.loc };
      case 'in':
        this.checkEnum(p.attr, p.values);
        return { kind: 'in', attr: this.attr(p.attr), negated: p.negated, values: p.values.map((v) => this.value(v)), loc: p.loc };
      case 'contains':
        return { kind: 'contains', attr: this.attr(p.attr), value: this.value(p.value), loc: p.loc };
    }
  }

  checkEnum(a: Attr, values: readonly Value[]): void {
    if (a.kind !== 'intrinsic') return;
    const allowed = ENUMS[a.name];
    if (allowed === undefined) return;
    for (const v of values) {
      if (v.kind !== 'string' || !allowed.includes(v.value)) {
        this.error(v.loc, 'bad-enum-value', `span:${a.name} is one of ${allowed.join(', ')}; it never equals ${v.kind === 'string' ? JSON.stringify(v.value) : 'a ' + v.kind}`);
      }
    }
  }

  checkRegex(pattern: string, at: Loc): void {
    const r = compileRegex(pattern);
    if (!r.ok) this.error(this.insideString(at, r.index), 'bad-regex', `regular expression refused: ${r.message}`);
  }

  /**
   * The location of character `index` of the value of the string literal at `at`. String
   * literals are one line; the escapes \" \\ \n \t take two characters of source for one.
   */
  insideString(at: Loc, index: number): Loc {
    const src = this.source;
    if (src === undefined || src[at.offset] !== '"') return at;
    let s = at.offset + 1;
    for (let k = 0; k < index && s < src.length && src[s] !== '"'; k++) s += src[s] === '\\' ? 2 : 1;
    return { line: at.line, col: at.col + (s - at.offset), offset: s };
  }

  attr(a: Attr): Attr {
    if (a.kind === 'intrinsic') {
      if (!(INTRINSICS as readonly string[]).includes(a.name)) {
        const hint = didYouMean(a.name, INTRINSICS, (n) => `span:${n}`);
        this.error(a.loc, 'unknown-intrinsic', `unknown intrinsic span:${a.name}${hint === '' ? ` (known: ${INTRINSICS.map((n) => 'span:' + n).join(', ')})` : hint}`);
      }
      return { kind: 'intrinsic', name: a.name, loc: a.loc };
    }
    if (a.key === '') this.error(a.loc, 'bad-value', 'empty attribute name');
    return { kind: 'attr', scope: a.scope, key: a.key, loc: a.loc };
  }

  value(v: Value): Value {
    switch (v.kind) {
      case 'number':
        if (!Number.isFinite(v.value)) this.error(v.loc, 'bad-value', 'number out of range');
        return { kind: 'number', value: v.value, loc: v.loc };
      case 'duration':
        if (!/^\d+(?:\.\d+)?$/.test(String(v.amount)) || !Number.isSafeInteger(Math.round(v.ns))) {
          this.error(v.loc, 'bad-value', 'duration out of range');
        }
        return { kind: 'duration', amount: v.amount, unit: v.unit, ns: v.ns, loc: v.loc };
      case 'string':
        return { kind: 'string', value: v.value, bare: false, loc: v.loc };
      case 'bool':
        return { kind: 'bool', value: v.value, loc: v.loc };
    }
  }

  // ------------------------------------------------------------ warnings

  warnings_(c: Condition, context: RuleContext | undefined, leadingHas: boolean): void {
    if (c.kind === 'has') {
      const filters = c.steps.filter((s) => s.kind === 'where' || s.kind === 'satisfies');
      const sel = printSelector(c.selector);
      const onlyWhen = filters.length > 0 && filters.length === c.steps.length
        ? ` If you mean "${sel} should only happen when …", write trace.every(${sel}).satisfies(${filters.map((s) => wrapPred(s.pred, filters.length > 1)).join(' and ')}).`
        : ` Did you mean when { trace.has(${sel}) } always { … } or trace.has(${sel}) implies …?`;
      this.warn(c.loc, 'bare-has', `a lone ${printExpr(c)} is violated by every trace without such a span.${onlyWhen}`);
    }
    visit(c, (n) => {
      if (n.kind === 'compare') {
        for (const side of [n.left, n.right]) {
          if (side.kind === 'min' || side.kind === 'max' || side.kind === 'avg') {
            this.warn(side.loc, 'aggregate-may-be-missing', `trace.${side.kind}(…) is missing when no ${printSelector(side.selector)} span has a numeric value, and every comparison with it is then false (a violation unless guarded, e.g. trace.has(${printSelector(side.selector)}) implies …)`);
          }
        }
        const r = n.right;
        if ((r.kind === 'string' && !isNumeric(r.value)) || r.kind === 'bool') {
          this.warn(r.loc, 'number-vs-string', `an aggregate is a number; comparing it with ${r.kind === 'string' ? JSON.stringify(r.value) : String(r.value)} is always false`);
        }
      }
      if ((n.kind === 'every' || n.kind === 'has') && n.selector.kind === 'name') {
        for (const s of n.steps) {
          if (s.kind === 'where' && !canMatchName(s.pred, n.selector.name)) {
            this.warn(s.loc, 'where-never-matches', `this .where(…) requires a span:name other than ${printSelector(n.selector)}, so it never matches`);
          }
        }
      }
    });
    // The seed's weaker readings: the guide's words ask for more than its rule text checks
    // (same span, ordering): warn and suggest the stronger rule (src/rules/README.md "The
    // seed idioms, and how they are read").
    const imp = c.kind === 'implies' ? { left: c.left, right: c.right } : c.kind === 'when' && c.always !== null ? { left: c.when, right: c.always } : null;
    if (imp !== null && isFilterHas(imp.left) && isFilterHas(imp.right) && imp.left.selector.kind === 'name'
      && imp.right.selector.kind === 'name' && imp.left.selector.name === imp.right.selector.name && imp.right.steps.length > 0) {
      const sel = printSelector(imp.left.selector);
      const p = filterPreds(imp.left).map((x) => `.where(${printPred(x)})`).join('');
      const rp = filterPreds(imp.right);
      const q = rp.map((x) => wrapPred(x, rp.length > 1)).join(' and ');
      this.warn(imp.right.loc, 'same-span-not-checked', `the two ${sel} spans may be different spans; to require it of the same span write trace.every(${sel})${p}.satisfies(${q})`);
    }
    const words = `${context?.name ?? ''} ${context?.description ?? ''} ${context?.message ?? ''}`;
    if (/\b(?:preceded by|precede[sd]?|before|after|followed by|follows?)\b/i.test(words) && !hasTemporal(c)) {
      const rel = /\b(?:followed by|follows?)\b/i.test(words) ? 'followed_by' : 'preceded_by';
      let suggestion = '';
      if (imp !== null && isFilterHas(imp.left) && imp.right.kind === 'has' && imp.right.steps.length === 0) {
        const p = filterPreds(imp.left).map((x) => `.where(${printPred(x)})`).join('');
        suggestion = `; write trace.every(${printSelector(imp.left.selector)})${p}.${rel}(${printSelector(imp.right.selector)})`;
      }
      this.warn(c.loc, 'ordering-not-checked', `the rule speaks of order ("${/\b(?:preceded by|precede[sd]?|before|after|followed by|follows?)\b/i.exec(words)?.[0] ?? ''}") but its condition${leadingHas ? ' (read as ' + printCondition(c) + ')' : ''} does not check it${suggestion}`);
    }
  }
}

function wrapPred(p: Pred, many: boolean): string {
  return many && (p.kind === 'por' || p.kind === 'pand') ? `(${printPred(p)})` : printPred(p);
}

function isNumeric(s: string): boolean {
  return s.trim() !== '' && Number.isFinite(Number(s));
}

/** A has chain whose steps only filter the span itself (where/satisfies). */
function isFilterHas(e: Expr): e is HasExpr {
  return e.kind === 'has' && e.steps.every((s) => s.kind === 'where' || s.kind === 'satisfies');
}

/** The predicates of a filter-only has chain. */
function filterPreds(h: HasExpr): Pred[] {
  return h.steps.flatMap((s) => (s.kind === 'relation' ? [] : [s.pred]));
}

function hasTemporal(c: Condition): boolean {
  let found = false;
  visit(c, (n) => {
    if (n.kind === 'relation' && (n.relation === 'preceded_by' || n.relation === 'followed_by')) found = true;
  });
  return found;
}

/** False when a top-level conjunct of p pins span:name to something other than `name`. */
function canMatchName(p: Pred, name: string): boolean {
  const conjuncts = p.kind === 'pand' ? p.operands : [p];
  for (const c of conjuncts) {
    if (c.kind === 'cmp' && c.attr.kind === 'intrinsic' && c.attr.name === 'name' && c.value.kind === 'string') {
      if (c.op === '==' && c.value.value !== name) return false;
      if (c.op === '!=' && c.value.value === name) return false;
    }
    if (c.kind === 'in' && c.attr.kind === 'intrinsic' && c.attr.name === 'name') {
      const has = c.values.some((v) => v.kind === 'string' && v.value === name);
      if (c.negated ? has : !has) return false;
    }
  }
  return true;
}

type Visited = Condition | Step | Agg | Pred;

/** Visits every expression, step, aggregate and predicate node. */
export function visit(node: Visited, fn: (n: Visited) => void): void {
  fn(node);
  switch (node.kind) {
    case 'when':
      visit(node.when, fn);
      if (node.always !== null) visit(node.always, fn);
      if (node.never !== null) visit(node.never, fn);
      return;
    case 'not':
    case 'pnot':
      visit(node.operand, fn);
      return;
    case 'and':
    case 'or':
      for (const x of node.operands) visit(x, fn);
      return;
    case 'pand':
    case 'por':
      for (const x of node.operands) visit(x, fn);
      return;
    case 'implies':
      visit(node.left, fn);
      visit(node.right, fn);
      return;
    case 'has':
    case 'every':
      for (const s of node.steps) visit(s, fn);
      return;
    case 'where':
    case 'satisfies':
      visit(node.pred, fn);
      return;
    case 'relation':
      if (node.pred !== null) visit(node.pred, fn);
      return;
    case 'compare':
      visit(node.left, fn);
      if (isAgg(node.right)) visit(node.right, fn);
      return;
    case 'count':
    case 'sum':
    case 'min':
    case 'max':
    case 'avg':
      for (const w of node.wheres) visit(w, fn);
      return;
    default:
      return;
  }
}

/** Checks a surface condition and resolves it (see the file comment). */
export function validateCondition(surface: Condition, context?: RuleContext, source?: string): ValidationResult {
  const deep = depthViolation(surface, 0);
  if (deep !== null) {
    return {
      condition: null,
      errors: [{ line: deep.line, column: deep.col, code: 'too-deep', message: `logical operators nested deeper than ${MAX_NESTING_DEPTH} levels` }],
      warnings: [],
      leadingHas: false,
    };
  }
  const v = new Validator(source);
  let resolved: Condition;
  let leadingHas = false;
  if (surface.kind === 'when') {
    resolved = {
      kind: 'when',
      when: v.expr(surface.when, true),
      always: surface.always === null ? null : v.expr(surface.always, true),
      never: surface.never === null ? null : v.expr(surface.never, true),
      loc: surface.loc,
    };
  } else {
    resolved = v.expr(surface, false);
    const first = surface.kind === 'and' ? surface.operands[0] : undefined;
    if (resolved.kind === 'and' && first?.kind === 'has' && first.parens !== true) {
      // The seed's leading-has idiom: `H and A and B` is read as `H implies (A and B)`.
      leadingHas = true;
      const [h, ...rest] = resolved.operands;
      const r0 = rest[0];
      if (h !== undefined && r0 !== undefined) {
        resolved = {
          kind: 'implies',
          left: h,
          right: rest.length === 1 ? r0 : { kind: 'and', operands: rest, loc: r0.loc },
          loc: resolved.loc,
        };
      }
    }
  }
  if (v.errors.length > 0) return { condition: null, errors: v.errors, warnings: [], leadingHas };
  v.warnings_(resolved, context, leadingHas);
  return { condition: resolved, errors: [], warnings: v.warnings, leadingHas };
}
