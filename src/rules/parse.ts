/**
 * Runs the nearley parser over the lexer's tokens. Returns the surface AST or one
 * located error; never throws on bad input. Zero parses is a syntax error with the
 * tokens that were expected; more than one parse is an internal error (the
 * grammar must be unambiguous).
 *
 * Cost is bounded by construction: input over MAX_CONDITION_BYTES and bracket
 * nesting over MAX_NESTING_DEPTH are refused before the parser runs, and the
 * grammar is unambiguous, so an Earley parse is linear-ish in the token count.
 */
import nearley from 'nearley';
import grammarModule from './grammar.generated.js';
import type { Condition } from './ast.ts';
import { MAX_CONDITION_BYTES, MAX_NESTING_DEPTH } from './diagnostics.ts';
import type { RuleDiagnostic } from './diagnostics.ts';
import { didYouMean } from '../expected.ts';
import { BLOCK_WORDS, FUNCTION_NAMES, STEP_WORDS, TOKEN_DISPLAY, TRACE_VALUES, tokenize, unknownStepMessage } from './lexer.ts';
import type { Position, Token } from './lexer.ts';

const compiled = grammarModule as unknown as nearley.CompiledRules;
const grammar = nearley.Grammar.fromCompiled(compiled);

/** nearley's lexer interface over a token array. */
class ArrayLexer implements nearley.Lexer {
  readonly #tokens: readonly Token[];
  #i = 0;
  constructor(tokens: readonly Token[]) {
    this.#tokens = tokens;
  }
  reset(): void {
    this.#i = 0;
  }
  next(): nearley.Token | undefined {
    return this.#tokens[this.#i++];
  }
  save(): nearley.LexerState {
    return {};
  }
  formatError(): string {
    return 'syntax error';
  }
  has(): boolean {
    return true;
  }
}

export type ParseResult = { ok: true; ast: Condition } | { ok: false; error: RuleDiagnostic };


function err(at: { line: number; col: number }, message: string, code: RuleDiagnostic['code'] = 'syntax'): ParseResult {
  return { ok: false, error: { line: at.line, column: at.col, message, code } };
}

/** Checks the size and bracket depth, then tokenizes. */
function lex(text: string): { ok: true; tokens: Token[]; end: Position } | { ok: false; result: ParseResult } {
  if (Buffer.byteLength(text, 'utf8') > MAX_CONDITION_BYTES) {
    return { ok: false, result: err({ line: 1, col: 1 }, `condition is larger than ${MAX_CONDITION_BYTES} bytes`, 'too-large') };
  }
  const lexed = tokenize(text);
  if (!lexed.ok) return { ok: false, result: err(lexed.error, lexed.error.message, lexed.error.code ?? 'syntax') };
  let depth = 0;
  for (const t of lexed.tokens) {
    if (t.type === 'lparen' || t.type === 'lbrace' || t.type === 'lbracket') {
      if (++depth > MAX_NESTING_DEPTH) {
        return { ok: false, result: err(t, `nesting deeper than ${MAX_NESTING_DEPTH} levels`, 'too-deep') };
      }
    } else if (t.type === 'rparen' || t.type === 'rbrace' || t.type === 'rbracket') {
      depth = Math.max(0, depth - 1);
    }
  }
  return { ok: true, tokens: lexed.tokens, end: lexed.end };
}

/** Runs nearley; returns all parses, or the index of the token that failed and what it expected there. */
function runParser(tokens: readonly Token[]): { results: unknown[] } | { failedAt: number; expected: string[] } {
  const parser = new nearley.Parser(grammar);
  parser.lexer = new ArrayLexer(tokens);
  try {
    parser.feed('');
  } catch (e) {
    const offset = (e as { offset?: unknown }).offset;
    return { failedAt: typeof offset === 'number' ? offset : tokens.length, expected: expectedIn(e) };
  }
  if (parser.results.length > 0) return { results: parser.results };
  // The condition ended early. What could have come next is what nearley reports about one
  // token more, of a type no rule of the grammar takes.
  const probe = new nearley.Parser(grammar);
  probe.lexer = new ArrayLexer([...tokens, { ...tokens[tokens.length - 1]!, type: END_OF_INPUT, text: '', value: '' }]);
  try {
    probe.feed('');
  } catch (e) {
    return { failedAt: tokens.length, expected: expectedIn(e) };
  }
  return { failedAt: tokens.length, expected: [] };
}

/** A token type no rule takes: what the parser expected at the end is reported about it. */
const END_OF_INPUT = '$end';

/**
 * The token types nearley's error says it expected, one line `A <type> token based on:`
 * each (its documented report; the grammar names token types only, never literals).
 */
function expectedIn(e: unknown): string[] {
  const message = e instanceof Error ? e.message : '';
  const out = new Set<string>();
  for (const m of message.matchAll(/^A (\S+) token based on:$/gm)) out.add(TOKEN_DISPLAY[m[1]!] ?? m[1]!);
  return [...out].sort();
}

/** " (did you mean and?)" when a name stands where a keyword is expected and is close to one. */
function keywordHint(name: string, expected: readonly string[]): string {
  const words = expected.filter((e) => /^"[a-z]+"$/.test(e)).map((e) => e.slice(1, -1));
  return didYouMean(name, words);
}

function describe(t: Token): string {
  if (t.type === 'string') return `string ${t.text}`;
  if (t.type === 'name') return `name "${t.text}"`;
  if (t.type === 'number' || t.type === 'duration') return `${t.type} ${t.text}`;
  return `"${t.text}"`;
}

/** Parses a condition into its surface AST (see ast.ts). */
export function parseCondition(text: string): ParseResult {
  const lexed = lex(text);
  if (!lexed.ok) return lexed.result;
  if (lexed.tokens.length === 0) return err({ line: 1, col: 1 }, 'empty condition');
  const run = runParser(lexed.tokens);
  if ('failedAt' in run) {
    const unknown = unknownName(lexed.tokens, run.failedAt);
    if (unknown !== undefined) return unknown;
    const bad = lexed.tokens[run.failedAt];
    const expected = run.expected.length > 0 ? `; expected ${oneOf(run.expected)}` : '';
    return bad === undefined
      ? err(lexed.end, `unexpected end of condition${expected}`)
      : err(bad, `unexpected ${describe(bad)}${expected}${bad.type === 'name' ? keywordHint(bad.text, run.expected) : ''}`);
  }
  if (run.results.length !== 1) {
    return err({ line: 1, col: 1 }, `internal error: ${run.results.length} parses (the grammar is ambiguous here); please report`, 'ambiguous');
  }
  return { ok: true, ast: run.results[0] as Condition };
}

const TRACE_FUNCTIONS = FUNCTION_NAMES.filter((f) => f.startsWith('trace.'));

/**
 * A parse that failed at tokens[failedAt] because of a name the language does not have:
 * a name before "(" is never valid (every function and step is a token of its own), so it
 * is an unknown function, or an unknown step when its last segment is close to one
 * (`payment.charge.wher(` in a when-block); a name before "{" is a misspelt block word; a
 * `trace.` name the parse stopped after is a misspelt trace value or function. Reported at
 * the name, with the closest name the language has.
 */
function unknownName(tokens: readonly Token[], failedAt: number): ParseResult | undefined {
  const bad = tokens[failedAt];
  const before = tokens[failedAt - 1];
  if (before === undefined) return undefined;
  if (bad?.type === 'lparen' && (before.type === 'trace_duration' || before.type === 'span_count')) {
    return err(before, `${before.text} takes no arguments: write ${before.text} without "( )"`);
  }
  if (before.type !== 'name') return undefined;
  const name = before.text;
  const segments = name.split('.');
  if (bad?.type === 'lparen') {
    const last = segments[segments.length - 1]!;
    if (segments[0] !== 'trace' && segments.length > 1 && didYouMean(last, STEP_WORDS) !== '') {
      const dot = name.lastIndexOf('.');
      return err({ line: before.line, col: before.col + dot }, unknownStepMessage(last), 'unknown-name');
    }
    const hint = segments[0] === 'trace' && segments.length === 2 ? traceHint(segments[1]!, TRACE_FUNCTIONS) : didYouMean(name, FUNCTION_NAMES);
    return err(
      before,
      `unknown function ${name}${hint === '' ? ` (the functions are ${FUNCTION_NAMES.join(', ')}; trace.duration and trace.span_count take no arguments)` : hint}`,
      'unknown-name',
    );
  }
  if (bad?.type === 'lbrace') {
    const hint = didYouMean(name, BLOCK_WORDS);
    if (hint !== '') return err(before, `unknown keyword ${name}${hint}`, 'unknown-name');
  }
  if (segments[0] === 'trace' && segments.length === 2) {
    const hint = traceHint(segments[1]!, [...TRACE_VALUES, ...TRACE_FUNCTIONS]);
    if (hint !== '') return err(before, `unknown function ${name}${hint}`, 'unknown-name');
  }
  return undefined;
}

/** The closest trace.X of `names`, judged on the part after "trace." (so "trace.foo" is not "trace.has"). */
function traceHint(word: string, names: readonly string[]): string {
  return didYouMean(word, names.map((n) => n.slice('trace.'.length)), (w) => `trace.${w}`);
}

function oneOf(items: readonly string[]): string {
  if (items.length === 1) return items[0] ?? '';
  return `one of ${items.join(', ')}`;
}

/** For tests: how many parses nearley finds (exactly 1 for every valid condition). */
export function countParses(text: string): number {
  const lexed = lex(text);
  if (!lexed.ok) return 0;
  const run = runParser(lexed.tokens);
  return 'results' in run ? run.results.length : 0;
}
