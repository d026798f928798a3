/**
 * The closed list of diagnostic codes of the rule language. Each is documented in
 * src/rules/README.md ("Error codes"); a test checks that the README covers the list.
 */

export const ERROR_CODES = {
  'syntax': 'the condition does not parse (unexpected token or character)',
  'unknown-name': 'a function, step or block keyword the language does not have (the message names the closest one)',
  'too-large': 'the condition is larger than the size limit',
  'too-deep': 'the condition nests deeper than the depth limit',
  'ambiguous': 'internal error: the grammar produced more than one parse',
  'every-without-assertion': 'trace.every(…) has no .satisfies or relation step',
  'misplaced-unique': '`k == unique` outside a top-level conjunct of trace.count(…).where(…)',
  'duplicate-distinct': 'trace.count(…) with more than one .distinct or `== unique`',
  'bad-regex': 'the regular expression is not valid RE2 syntax, or uses what RE2 refuses (back-references, lookaround)',
  'shorthand-outside-when': 'BeTrace shorthand (bare span name, count(X)) outside a when-block',
  'unknown-intrinsic': 'span:X where X is not name, duration, status, kind or service',
  'bad-enum-value': 'span:status or span:kind compared with a value it can never have',
  'bad-modifier': '.within on a relation other than preceded_by/followed_by, or given twice',
  'bad-value': 'a value that cannot be used where it is (empty attribute key, negative duration)',
  // rule files
  'yaml': 'the YAML itself is malformed',
  'bad-rule': 'a rule entry is not a mapping, misses a required key, or has a key of the wrong type',
  'unknown-key': 'a key that rule files do not have',
  'bad-id': 'an id that does not match [a-z0-9][a-z0-9._-]*',
  'bad-severity': 'a severity other than critical, high, medium, low, info',
  'bad-alert': 'an `alerts:` entry that is malformed: no rule of that id in the file, an unknown channel, an empty target (an unquoted `#channel` is a YAML comment)',
  'bad-text': 'a rule field holding text that is not valid Unicode (a lone surrogate)',
  'io': 'the file cannot be read',
} as const;

export const WARNING_CODES = {
  'bare-has': 'a lone trace.has(X) invariant: violated by every trace without X',
  'ordering-not-checked': 'the rule says "preceded by"/"before"/"after" but its condition does not check order',
  'same-span-not-checked': 'antecedent and consequent filter the same span name but may match different spans',
  'aggregate-may-be-missing': 'trace.min/max/avg is missing when no span is counted, making comparisons false',
  'number-vs-string': 'an aggregate compared with a non-numeric string: always false',
  'where-never-matches': 'a .where that can never match the selected span name',
  'duplicate-id': 'the same rule id defined twice: one definition is in force (the first in the file whose path sorts first), the other ignored',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
export type WarningCode = keyof typeof WARNING_CODES;
export type DiagnosticCode = ErrorCode | WarningCode;

/** A problem in a condition; line and column (1-based) are relative to the condition text. */
export interface RuleDiagnostic {
  readonly line: number;
  readonly column: number;
  readonly message: string;
  readonly code: DiagnosticCode;
}

/** A problem in a rule file; line and column (1-based) are inside the file. */
export interface FileDiagnostic {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
  readonly code: DiagnosticCode;
  /** The rule the problem belongs to, when known. */
  readonly ruleId?: string;
}

export function formatFileDiagnostic(d: FileDiagnostic, severity: 'error' | 'warning'): string {
  return `${d.file}:${d.line}:${d.column}: ${severity === 'warning' ? 'warning: ' : ''}${d.message} [${d.code}]`;
}

/** Limits that bound the cost of parsing and evaluating one condition. */
export const MAX_CONDITION_BYTES = 16 * 1024;
export const MAX_NESTING_DEPTH = 64;
/**
 * Time budget of one trace's evaluation, all its rules together, when the caller gives none.
 * The pipeline's worker.evaluation_budget defaults to it too (src/config/schema.ts): one value.
 */
export const DEFAULT_BUDGET_MS = 250;
