/**
 * Lexer for the rule language (src/rules/README.md "Lexing"). moo tries the rules in order
 * at each position, so the order below is part of the contract: reserved words and
 * intrinsics before names, durations before numbers, two-character operators
 * before one-character ones.
 *
 * tokenize() never throws: bad input becomes a located LexError value.
 */
import moo from 'moo';
import { didYouMean } from '../expected.ts';

/** Step and relation names that end a span name when followed by "(". */
export const STEP_WORDS = [
  'where',
  'satisfies',
  'distinct',
  'within',
  'on',
  'has_parent',
  'has_child',
  'has_ancestor',
  'has_descendant',
  'has_sibling',
  'preceded_by',
  'followed_by',
] as const;

export const RELATIONS = [
  'has_parent',
  'has_child',
  'has_ancestor',
  'has_descendant',
  'has_sibling',
  'preceded_by',
  'followed_by',
] as const;
export type RelationName = (typeof RELATIONS)[number];

const SEGMENT = '[A-Za-z_][A-Za-z0-9_-]*';
/** A name: dot-joined segments; a "." followed by a step word and "(" ends it. */
const NAME = new RegExp(`${SEGMENT}(?:\\.(?!(?:${STEP_WORDS.join('|')})\\s*\\()${SEGMENT})*`);

/** Keywords are whole name tokens only: `order.in.progress` stays a name. */
const KEYWORDS: Record<string, string> = {
  kw_and: 'and',
  kw_or: 'or',
  kw_not: 'not',
  kw_implies: 'implies',
  kw_when: 'when',
  kw_always: 'always',
  kw_never: 'never',
  kw_in: 'in',
  kw_contains: 'contains',
  kw_matches: 'matches',
  kw_exists: 'exists',
  kw_true: 'true',
  kw_false: 'false',
  has: 'trace.has',
  every: 'trace.every',
  count: 'trace.count',
  sum: 'trace.sum',
  min: 'trace.min',
  max: 'trace.max',
  avg: 'trace.avg',
  trace_duration: 'trace.duration',
  span_count: 'trace.span_count',
};

export const KEYWORD_TEXT: ReadonlySet<string> = new Set(Object.values(KEYWORDS));

/** The names written before "(": the trace functions, count(X) of when-blocks and exists(k) of predicates. */
export const FUNCTION_NAMES = ['trace.has', 'trace.every', 'trace.count', 'trace.sum', 'trace.min', 'trace.max', 'trace.avg', 'count', 'exists'] as const;
/** The trace values, written without "(". */
export const TRACE_VALUES = ['trace.duration', 'trace.span_count'] as const;
/** The words that open a block: when { … } always { … } never { … }. */
export const BLOCK_WORDS = ['when', 'always', 'never'] as const;

/** "unknown step .wher (did you mean .where?)": a "." and a word after a step or a selector's ")". */
function unknownStep(text: string): { message: string; code?: 'unknown-name' } | undefined {
  const m = /^\.([A-Za-z_][A-Za-z0-9_-]*)/.exec(text);
  if (m === null) return undefined;
  const word = m[1]!;
  if ((STEP_WORDS as readonly string[]).includes(word)) return { message: `.${word} needs its arguments: .${word}(…)` };
  return { message: unknownStepMessage(word), code: 'unknown-name' };
}

/** The message of a step name the language does not have. */
export function unknownStepMessage(word: string): string {
  const hint = didYouMean(word, STEP_WORDS, (w) => `.${w}`);
  return `unknown step .${word}${hint === '' ? ` (the steps are ${STEP_WORDS.map((w) => `.${w}`).join(', ')})` : hint}`;
}

function unescapeString(text: string): string {
  return text.slice(1, -1).replace(/\\(["\\nt])/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

const lexer = moo.compile({
  ws: { match: /[ \t\r\n]+/, lineBreaks: true },
  comment: /\/\/[^\n]*/,
  string: { match: /"(?:[^"\\\n]|\\["\\nt])*"/, value: unescapeString },
  bad_string: /"(?:[^"\\\n]|\\.)*"?/,
  intrinsic: /span:[A-Za-z_][A-Za-z0-9_]*/,
  count_short: /count(?=\s*\()/,
  where: /\.where(?=\s*\()/,
  satisfies: /\.satisfies(?=\s*\()/,
  distinct: /\.distinct(?=\s*\()/,
  within: /\.within(?=\s*\()/,
  on: /\.on(?=\s*\()/,
  relation: { match: new RegExp(`\\.(?:${RELATIONS.join('|')})(?=\\s*\\()`), value: (s: string) => s.slice(1) },
  duration: /\d+(?:\.\d+)?(?:ns|us|ms|s|m|h)(?![A-Za-z0-9_.])/,
  number: /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.])/,
  bad_number: /-?\d[A-Za-z0-9_.]*/,
  name: { match: NAME, type: moo.keywords(Object.fromEntries(Object.entries(KEYWORDS).map(([k, v]) => [k, v]))) },
  arrow: '=>',
  eq: '==',
  re_match: '=~',
  ne: '!=',
  re_not_match: '!~',
  le: '<=',
  ge: '>=',
  lt: '<',
  gt: '>',
  lparen: '(',
  rparen: ')',
  lbrace: '{',
  rbrace: '}',
  lbracket: '[',
  rbracket: ']',
  comma: ',',
  star: '*',
  error: moo.error,
});

export interface Token {
  readonly type: string;
  /** Decoded value: strings unescaped, relation names without the dot. */
  readonly value: string;
  /** Source text. */
  readonly text: string;
  /** 0-based offset into the condition. */
  readonly offset: number;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
}

export interface LexError {
  readonly message: string;
  /** 'syntax' when absent. */
  readonly code?: 'unknown-name';
  readonly offset: number;
  readonly line: number;
  readonly col: number;
}

export type LexResult = { ok: true; tokens: Token[]; end: Position } | { ok: false; error: LexError };

export interface Position {
  readonly offset: number;
  readonly line: number;
  readonly col: number;
}

/** Human-readable form of a token type, for "expected …" messages. */
export const TOKEN_DISPLAY: Readonly<Record<string, string>> = {
  string: 'a string',
  intrinsic: 'an intrinsic (span:name, span:duration, …)',
  count_short: 'count',
  where: '.where(',
  satisfies: '.satisfies(',
  distinct: '.distinct(',
  within: '.within(',
  on: '.on(',
  relation: 'a relation (.has_parent(, .preceded_by(, …)',
  duration: 'a duration (5s, 200ms, …)',
  number: 'a number',
  name: 'a name',
  arrow: '"=>"',
  eq: '"=="',
  re_match: '"=~"',
  ne: '"!="',
  re_not_match: '"!~"',
  le: '"<="',
  ge: '">="',
  lt: '"<"',
  gt: '">"',
  lparen: '"("',
  rparen: '")"',
  lbrace: '"{"',
  rbrace: '"}"',
  lbracket: '"["',
  rbracket: '"]"',
  comma: '","',
  star: '"*"',
  ...Object.fromEntries(Object.entries(KEYWORDS).map(([k, v]) => [k, `"${v}"`])),
};

/** Splits a condition into tokens, dropping whitespace and comments. `end` is just
 * after the last token (where "unexpected end of condition" is reported). */
export function tokenize(text: string): LexResult {
  lexer.reset(text);
  const tokens: Token[] = [];
  let last: moo.Token | undefined;
  for (;;) {
    let t: moo.Token | undefined;
    try {
      t = lexer.next();
    } catch (e) {
      // moo only throws without an error rule; kept as a value for safety.
      return { ok: false, error: { message: String(e), offset: 0, line: 1, col: 1 } };
    }
    if (t === undefined) break;
    const type = t.type ?? 'error';
    if (type === 'ws' || type === 'comment') continue;
    last = t;
    const at = { offset: t.offset, line: t.line, col: t.col };
    if (type === 'error') {
      const step = unknownStep(t.text);
      if (step !== undefined) return { ok: false, error: { ...at, ...step } };
      const ch = t.text.codePointAt(0) ?? 0;
      return { ok: false, error: { ...at, message: `unexpected character ${JSON.stringify(String.fromCodePoint(ch))}` } };
    }
    if (type === 'bad_string') {
      const m = /\\(.)/.exec(t.text.replace(/\\["\\nt]/g, ''));
      const message = !t.text.endsWith('"') || t.text.length === 1
        ? 'unterminated string (strings are double-quoted and end on the same line)'
        : `invalid escape "\\${m?.[1] ?? ''}" in string (allowed: \\" \\\\ \\n \\t)`;
      return { ok: false, error: { ...at, message } };
    }
    if (type === 'bad_number') {
      return {
        ok: false,
        error: { ...at, message: `invalid number or duration ${JSON.stringify(t.text)} (a duration is a number followed by ns, us, ms, s, m or h)` },
      };
    }
    tokens.push({ type, value: t.value, text: t.text, ...at });
  }
  const end = last === undefined ? { offset: 0, line: 1, col: 1 } : endOf(last);
  return { ok: true, tokens, end };
}

function endOf(t: moo.Token): Position {
  if (t.lineBreaks === 0) return { offset: t.offset + t.text.length, line: t.line, col: t.col + t.text.length };
  const lastNl = t.text.lastIndexOf('\n');
  return { offset: t.offset + t.text.length, line: t.line + t.lineBreaks, col: t.text.length - lastNl };
}

/** True if `text` lexes as exactly one plain name token (so it may be printed unquoted). */
export function isPlainName(text: string): boolean {
  const r = tokenize(text);
  return r.ok && r.tokens.length === 1 && r.tokens[0]?.type === 'name' && r.tokens[0].text === text;
}
