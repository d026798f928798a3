/**
 * The canonical printer: one line, minimal but unambiguous parentheses, string
 * values always quoted, names unquoted where they lex as a plain name.
 *
 * Contract: for a resolved condition c, validate(parse(print(c))) is c modulo
 * locations. The canonical text is hashed into the violation id (docs/contract.md
 * "Violation id"), so
 * changing its output changes ids: do it only deliberately.
 */
import type { Agg, Attr, Condition, Expr, Modifier, Pred, Selector, Step, Value } from './ast.ts';
import { isAgg } from './ast.ts';
import { KEYWORD_TEXT, isPlainName } from './lexer.ts';

export function quote(s: string): string {
  return `"${s.replace(/[\\"\n\t]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\${c}`))}"`;
}

function nameOrString(s: string): string {
  return isPlainName(s) && !KEYWORD_TEXT.has(s) ? s : quote(s);
}

export function printSelector(s: Selector): string {
  return s.kind === 'any' ? '*' : nameOrString(s.name);
}

export function printAttr(a: Attr): string {
  if (a.kind === 'intrinsic') return `span:${a.name}`;
  if (a.scope !== 'any') return `${a.scope}.${a.key}`;
  return isPlainName(a.key) && !/^(?:span|resource)\./.test(a.key) ? a.key : quote(a.key);
}

export function printValue(v: Value): string {
  switch (v.kind) {
    case 'number':
      return String(v.value);
    case 'duration':
      return `${v.amount}${v.unit}`;
    case 'string':
      return quote(v.value);
    case 'bool':
      return String(v.value);
  }
}

// Predicates: por < pand < pnot < comparison
function predPrec(p: Pred): number {
  return p.kind === 'por' ? 1 : p.kind === 'pand' ? 2 : p.kind === 'pnot' ? 3 : 4;
}

export function printPred(p: Pred): string {
  const wrap = (x: Pred, min: number, sameKind: Pred['kind'] | null): string =>
    predPrec(x) < min || x.kind === sameKind ? `(${printPred(x)})` : printPred(x);
  switch (p.kind) {
    case 'por':
      return p.operands.map((x) => wrap(x, 2, 'por')).join(' or ');
    case 'pand':
      return p.operands.map((x) => wrap(x, 3, 'pand')).join(' and ');
    case 'pnot':
      return `not ${wrap(p.operand, 3, null)}`;
    case 'exists':
      return `exists(${printAttr(p.attr)})`;
    case 'cmp':
      return `${printAttr(p.attr)} ${p.op} ${printValue(p.value)}`;
    case 'regex':
      return `${printAttr(p.attr)} ${p.op} ${printValue(p.pattern)}`;
    case 'in':
      return `${printAttr(p.attr)} ${p.negated ? 'not in' : 'in'} [${p.values.map(printValue).join(', ')}]`;
    case 'contains':
      return `${printAttr(p.attr)} contains ${printValue(p.value)}`;
  }
}

function printModifier(m: Modifier): string {
  return m.kind === 'within' ? `.within(${printValue(m.duration)})` : `.on(${m.attrs.map(printAttr).join(', ')})`;
}

function printStep(s: Step): string {
  switch (s.kind) {
    case 'where':
      return `.where(${printPred(s.pred)})`;
    case 'satisfies':
      return `.satisfies(${printPred(s.pred)})`;
    case 'relation': {
      const pred = s.pred === null ? '' : `, ${printPred(s.pred)}`;
      return `.${s.relation}(${printSelector(s.selector)}${pred})${s.modifiers.map(printModifier).join('')}`;
    }
  }
}

export function printAgg(a: Agg): string {
  const wheres = (ps: readonly Pred[]): string => ps.map((p) => `.where(${printPred(p)})`).join('');
  switch (a.kind) {
    case 'count':
      return `trace.count(${printSelector(a.selector)})${wheres(a.wheres)}${a.distinct === null ? '' : `.distinct(${printAttr(a.distinct)})`}`;
    case 'sum':
    case 'min':
    case 'max':
    case 'avg':
      return `trace.${a.kind}(${printSelector(a.selector)}, ${printAttr(a.attr)})${wheres(a.wheres)}`;
    case 'trace_duration':
      return 'trace.duration';
    case 'span_count':
      return 'trace.span_count';
  }
}

// Expressions: implies < or < and < not < primary
function exprPrec(e: Expr): number {
  return e.kind === 'implies' ? 1 : e.kind === 'or' ? 2 : e.kind === 'and' ? 3 : e.kind === 'not' ? 4 : 5;
}

function wrapIf(cond: boolean, e: Expr): string {
  return cond ? `(${printExpr(e)})` : printExpr(e);
}

export function printExpr(e: Expr, topLevel = false): string {
  switch (e.kind) {
    case 'bool':
      return String(e.value);
    case 'not':
      return `not ${wrapIf(exprPrec(e.operand) < 4, e.operand)}`;
    case 'and':
      // At the top level a leading has chain would be read as an implication:
      // parenthesise it to keep the plain conjunction.
      return e.operands
        .map((x, i) => wrapIf(exprPrec(x) <= 3 || (topLevel && i === 0 && x.kind === 'has'), x))
        .join(' and ');
    case 'or':
      return e.operands.map((x) => wrapIf(exprPrec(x) <= 2, x)).join(' or ');
    case 'implies':
      return `${wrapIf(exprPrec(e.left) <= 3, e.left)} implies ${wrapIf(exprPrec(e.right) <= 3 && e.right.kind !== 'implies', e.right)}`;
    case 'has':
      return `trace.has(${printSelector(e.selector)})${e.steps.map(printStep).join('')}`;
    case 'every':
      return `trace.every(${printSelector(e.selector)})${e.steps.map(printStep).join('')}`;
    case 'compare':
      return `${printAgg(e.left)} ${e.op} ${isAgg(e.right) ? printAgg(e.right) : printValue(e.right)}`;
  }
}

/** Prints a resolved condition in canonical form. */
export function printCondition(c: Condition): string {
  if (c.kind === 'when') {
    const always = c.always === null ? '' : ` always { ${printExpr(c.always)} }`;
    const never = c.never === null ? '' : ` never { ${printExpr(c.never)} }`;
    return `when { ${printExpr(c.when)} }${always}${never}`;
  }
  return printExpr(c, true);
}
