/**
 * Value semantics (src/rules/README.md "Values and attributes"): how an attribute
 * value compares with a literal.
 *
 * - A missing attribute makes every comparison false, `!=` included.
 * - A comparison of values that cannot be compared (a non-numeric string with a
 *   number, a boolean with a number, a kvlist with anything) is false, `!=` included:
 *   `!=` means "present, comparable and not equal".
 * - Numbers compare numerically; numeric strings compare as numbers with number and
 *   duration literals; durations are nanoseconds.
 * - The strings "true"/"false" equal the boolean literals.
 * - Arrays: `==` (and `<`, `>`, …) hold if some element does; `!=` if no element
 *   is equal; `contains` tests membership.
 */
import type { CmpOp, Value } from './ast.ts';
import type { RuleRegex } from './regex.ts';
import type { AttributeValue } from './span.ts';

export type Comparator = (v: AttributeValue | undefined) => boolean;

/** A number from a number or a numeric string, else undefined. */
export function toNumber(v: AttributeValue | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Numbers compare numerically, strings by code units. */
export function compareValues<T extends number | string>(a: T, op: CmpOp, b: T): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}


/** The literal in the forms a scalar attribute may be compared with. */
interface Literal {
  readonly num: number | undefined;
  readonly bool: boolean | undefined;
  readonly str: string | undefined;
}

function literalOf(v: Value): Literal {
  switch (v.kind) {
    case 'number':
      return { num: v.value, bool: undefined, str: undefined };
    case 'duration':
      return { num: v.ns, bool: undefined, str: undefined };
    case 'bool':
      return { num: undefined, bool: v.value, str: undefined };
    case 'string':
      return {
        num: toNumber(v.value),
        bool: v.value === 'true' ? true : v.value === 'false' ? false : undefined,
        str: v.value,
      };
  }
}

/** true / false, or null when the two cannot be compared. */
function compareScalar(v: AttributeValue, op: CmpOp, lit: Literal): boolean | null {
  if (typeof v === 'number') return lit.num === undefined ? null : compareValues(v, op, lit.num);
  if (typeof v === 'boolean') {
    if (lit.bool === undefined || (op !== '==' && op !== '!=')) return null;
    return op === '==' ? v === lit.bool : v !== lit.bool;
  }
  if (typeof v === 'string') {
    if (lit.str !== undefined) return compareValues(v, op, lit.str);
    if (lit.num !== undefined) {
      const n = toNumber(v);
      return n === undefined ? null : compareValues(n, op, lit.num);
    }
    if (lit.bool !== undefined && (v === 'true' || v === 'false') && (op === '==' || op === '!=')) {
      return op === '==' ? (v === 'true') === lit.bool : (v === 'true') !== lit.bool;
    }
    return null;
  }
  return null;
}

/** `attr op literal` as a function of the attribute value. */
export function comparator(op: CmpOp, value: Value): Comparator {
  const lit = literalOf(value);
  if (op === '!=') {
    return (v) => {
      if (v === undefined) return false;
      if (Array.isArray(v)) return !v.some((el: AttributeValue) => compareScalar(el, '==', lit) === true);
      return compareScalar(v, '!=', lit) === true;
    };
  }
  return (v) => {
    if (v === undefined) return false;
    if (Array.isArray(v)) return v.some((el: AttributeValue) => compareScalar(el, op, lit) === true);
    return compareScalar(v, op, lit) === true;
  };
}

/** `attr in [..]` ≡ `attr == a or attr == b`; `attr not in [..]` ≡ `attr != a and attr != b`. */
export function inComparator(values: readonly Value[], negated: boolean): Comparator {
  const cmps = values.map((v) => comparator(negated ? '!=' : '==', v));
  return negated ? (v) => cmps.every((c) => c(v)) : (v) => cmps.some((c) => c(v));
}

/** `attr contains literal`: substring of a string, membership in an array. */
export function containsComparator(value: Value): Comparator {
  const eq = comparator('==', value);
  const needle = value.kind === 'string' ? value.value : value.kind === 'duration' ? `${value.amount}${value.unit}` : String(value.value);
  return (v) => {
    if (typeof v === 'string') return v.includes(needle);
    if (Array.isArray(v)) return v.some((el: AttributeValue) => eq(el));
    return false;
  };
}

/** `attr =~ re` (unanchored search); `!~` is "present and no match". Scalars are matched as text. */
export function regexComparator(re: RuleRegex, negated: boolean): Comparator {
  const test = (v: AttributeValue): boolean | null =>
    typeof v === 'string' ? re.test(v) : typeof v === 'number' || typeof v === 'boolean' ? re.test(String(v)) : null;
  return (v) => {
    if (v === undefined) return false;
    if (Array.isArray(v)) {
      const any = v.some((el: AttributeValue) => test(el) === true);
      return negated ? !any : any;
    }
    const r = test(v);
    return r === null ? false : negated ? !r : r;
  };
}

/**
 * A key under which equal values collide, for `.on(k)` joins and `.distinct(k)`:
 * 5 and "5", true and "true" are the same; "05" and "5" are not.
 */
export function joinKey(v: AttributeValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return 's' + v;
  if (typeof v === 'number' || typeof v === 'boolean') return 's' + String(v);
  return 'j' + JSON.stringify(v);
}
