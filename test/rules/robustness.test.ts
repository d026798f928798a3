/** Bad input is answered, never thrown: fuzzing, limits, regexes RE2 cannot run. */
import assert from 'node:assert/strict';
import { describe, it } from './node-test.ts';
import { MAX_CONDITION_BYTES, MAX_NESTING_DEPTH, checkCondition, compileRule, evaluateTrace } from '../../src/rules/index.ts';
import { compileRegex } from '../../src/rules/regex.ts';
import { examples } from './examples.ts';
import { def, span } from './trace.ts';
import { prng } from '../helpers/prng.ts';


const SOUP = [
  'trace.has', 'trace.every', 'trace.count', 'trace.sum', 'trace.min', 'trace.duration', 'trace.span_count', '(', ')', '{', '}', '[', ']',
  ',', '*', '.where', '.satisfies', '.distinct', '.within', '.on', '.has_parent', '.preceded_by', 'and', 'or', 'not', 'implies', '=>',
  'when', 'always', 'never', 'in', 'contains', 'matches', 'exists', 'true', 'false', '==', '!=', '<', '<=', '>', '>=', '=~', '!~',
  'a', 'b.c', 'unique', 'count', 'span:name', 'span:duration', 'span:bogus', '1', '-2.5', '5s', '5min', '"x"', '"(a+)+"', '"unterminated',
  '// c\n', '\n', '@', 'payment.charge', 'span.k', 'resource.k',
];

function check(text: string): void {
  const r = checkCondition(text);
  if (r.ok) {
    // a condition that validates also compiles and evaluates
    const c = compileRule(def(text));
    assert.ok(c.ok);
    evaluateTrace([c.rule], [span('a', { attrs: { k: 1 } }), span('b.c')]);
    return;
  }
  assert.ok(r.errors.length > 0);
  for (const e of r.errors) {
    assert.ok(Number.isInteger(e.line) && e.line >= 1, JSON.stringify(e));
    assert.ok(Number.isInteger(e.column) && e.column >= 1, JSON.stringify(e));
    assert.ok(e.message.length > 0);
    assert.notEqual(e.code, 'ambiguous', `ambiguous parse for ${JSON.stringify(text)}`);
  }
}

describe('fuzzing', () => {
  it('random token soup gets a located error or success, never a throw', () => {
    const rnd = prng(42);
    for (let k = 0; k < 2000; k++) {
      const n = 1 + Math.floor(rnd() * 25);
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(SOUP[Math.floor(rnd() * SOUP.length)] as string);
      check(parts.join(rnd() < 0.5 ? ' ' : ''));
    }
  });

  it('random mutations of valid rules get a located error or success, never a throw', () => {
    const rnd = prng(7);
    const valid = examples.valid.map((e) => e.condition);
    const alphabet = '()[]{}.,"*=!<>~ \nabc0123456789_:-/\\';
    for (let k = 0; k < 2000; k++) {
      let text = valid[Math.floor(rnd() * valid.length)] as string;
      const edits = 1 + Math.floor(rnd() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rnd() * (text.length + 1));
        const op = rnd();
        if (op < 0.4) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rnd() * 4));
        else if (op < 0.8) text = text.slice(0, at) + (alphabet[Math.floor(rnd() * alphabet.length)] as string) + text.slice(at);
        else text = text.slice(0, at) + text.slice(Math.floor(rnd() * text.length));
      }
      check(text);
    }
  });
});

describe('limits', () => {
  it('rejects nesting deeper than the limit before parsing', () => {
    const deep = '('.repeat(MAX_NESTING_DEPTH + 1) + 'true' + ')'.repeat(MAX_NESTING_DEPTH + 1);
    const r = checkCondition(deep);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.errors[0]?.code, 'too-deep');
    const ok = '('.repeat(MAX_NESTING_DEPTH) + 'true' + ')'.repeat(MAX_NESTING_DEPTH);
    assert.equal(checkCondition(ok).ok, true);
  });
  it('rejects deep chains of not', () => {
    const r = checkCondition('not '.repeat(MAX_NESTING_DEPTH + 1) + 'true');
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.errors[0]?.code, 'too-deep');
  });
  it('rejects conditions over the size limit', () => {
    const big = 'trace.has(a) or '.repeat(Math.ceil(MAX_CONDITION_BYTES / 16)) + 'true';
    const r = checkCondition(big);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.errors[0]?.code, 'too-large');
  });
  it('accepts a long flat condition just under the limit', () => {
    const text = 'not trace.has(a) or '.repeat(Math.floor((MAX_CONDITION_BYTES - 10) / 20)) + 'true';
    assert.ok(text.length <= MAX_CONDITION_BYTES);
    assert.equal(checkCondition(text).ok, true);
  });
});

describe('rule regexes run on RE2', () => {
  // Patterns that backtrack catastrophically in JavaScript: linear on RE2, so accepted.
  for (const big of ['.{1000}', '\\p{L}{1000}', 'x{1,1000}', '[a-z0-9._%+-]{1,64}@[a-z0-9.-]{1,255}\\.[a-z]{2,24}']) {
    it(`accepts ${big} (a program under the size bound)`, () => assert.equal(compileRegex(big).ok, true));
  }
  for (const nested of ['(a+)+', '(a*)*', '(a|a)*', '(a|ab)+', '(\\w+\\s?)*$', '(.*a){10}', '(x+x+)+y', '((ab)*c)+', '([a-z]|\\d|x)+']) {
    it(`accepts ${nested}`, () => assert.equal(compileRegex(nested).ok, true));
  }
  const refused: [string, number, string][] = [
    ['(a)\\1', 3, 'back-reference \\1'],
    ['(?<n>a)\\k<n>', 7, 'named back-reference'],
    ['x(?=y)', 1, 'lookahead (?='],
    ['x(?!y)', 1, 'lookahead (?!'],
    ['(?<=y)x', 0, 'lookbehind (?<='],
    ['(?<!y)x', 0, 'lookbehind (?<!'],
    ['(?>ab)', 0, 'atomic group'],
    ['ba*+', 2, 'possessive quantifier *+'],
    ['b\\\\a{2}+', 4, 'possessive quantifier {2}+'],
    ['a{1001}', 1, 'up to 1000'],
    ['x\\ud800', 1, 'half of a surrogate pair'],
    ['a[]', 1, 'empty class'],
    ['ab\\q', 2, 'invalid escape sequence \\q'],
    ['ab(c', 0, 'missing closing )'],
    ['x.{1000}y.{1000}z.{1000}w.{1000}v.{1000}u', 0, 'too large'],
  ];
  for (const [pattern, index, what] of refused) {
    it(`refuses ${pattern} at ${index} (${what})`, () => {
      const r = compileRegex(pattern);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.index, index, r.message);
      assert.ok(r.message.includes(what), r.message);
    });
  }
  it('says why at the position inside the string literal', () => {
    const r = checkCondition('trace.every(a).satisfies(x =~ "\\"q\\"\\\\d(?=a)")');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.errors[0]?.code, 'bad-regex');
    assert.equal(r.errors[0]?.column, 40, r.errors[0]?.message);
    assert.match(r.errors[0]?.message ?? '', /lookahead .* not supported: rule regexes run on RE2, which never backtracks/);
  });
  it('keeps the meaning of JavaScript spellings and searches anywhere, as RegExp.test did', () => {
    const cases: [string, string[]][] = [
      ['\\u00e9t\\u00E9', ['été', 'un été', 'ete']],
      ['^\\ud83d\\ude00$', ['😀', '😃']],
      ['\\u{1F600}', ['x😀', 'x']],
      ['a\\cJb', ['a\nb', 'ab']],
      ['x[^]y', ['x\ny', 'xy', 'x-y']],
      ['(?i:get) /', ['GET /', 'get /', 'got /']],
      ['^\\d{3}-\\d{2,4}$', ['123-45', '123-4', '123-45678']],
      ['[a-c]+\\b', ['abc def', '---']],
      ['api', ['/v1/api/x', '/v1/ap/x']],
      ['^/api/', ['/api/x', '/v1/api/x']],
      ['end$', ['the end', 'end\n', 'ending']],
      ['\\.', ['a.b', 'ab']],
      ['(?<year>\\d{4})-\\d\\d', ['2026-12', '26-12']],
      ['a.b', ['axb', 'a\rb', 'a\nb', 'a\u2028b', 'a\u2029b', 'a\tb']],
      ['x(?s:a.b)y.', ['xa\rby-', 'xa\nby\n', 'xa\nby!']],
      ['x(?s:a(?-s:.)b)', ['xa\nb', 'xa-b']],
      ['^\\s+$', [' \t\n', '\u00a0', '\ufeff', '\u3000\u2029', '\v', 'x ']],
      ['^\\S+$', ['abc', '\u00a0', 'a\u1680', '\u00a1\u2030']],
      ['^[\\s\\d]+$', ['1\u00a02', '1 x']],
      ['^[^\\S]+$', ['\u2000\u200a', '\u200b']],
      ['^[\\S]+$', ['\u2000', 'x\u200b\u{10FFFF}']],
    ];
    for (const [pattern, inputs] of cases) {
      const r = compileRegex(pattern);
      assert.ok(r.ok, pattern);
      for (const s of inputs) assert.equal(r.regex.test(s), new RegExp(pattern, /\\u\{/.test(pattern) ? 'u' : '').test(s), `${pattern} on ${JSON.stringify(s)}`);
    }
  });
  it('takes RE2 POSIX classes inside a class whole', () => {
    const r = compileRegex('^[[:alpha:].]+$');
    assert.ok(r.ok);
    assert.equal(r.regex.test('a.b'), true);
    assert.equal(r.regex.test('a-b'), false);
  });
  it('accepts RE2 flags for the whole pattern', () => {
    const r = compileRegex('(?i)^select ');
    assert.ok(r.ok);
    assert.equal(r.regex.test('SELECT * FROM t'), true);
  });
});
