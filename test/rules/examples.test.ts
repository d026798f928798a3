/** Table-driven tests from examples.yaml: valid, fails to parse, fails to validate. */
import assert from 'node:assert/strict';
import { describe, it } from './node-test.ts';
import { checkCondition, parseCondition } from '../../src/rules/index.ts';
import { countParses } from '../../src/rules/parse.ts';
import { examples } from './examples.ts';

describe('valid examples', () => {
  it('the examples file has every section', () => {
    assert.ok(examples.valid.length > 40);
    assert.ok(examples.parse_error.length > 15);
    assert.ok(examples.validation_error.length > 15);
  });
  for (const ex of examples.valid) {
    it(`accepts ${JSON.stringify(ex.condition)}`, () => {
      const r = checkCondition(ex.condition);
      assert.ok(r.ok, `expected success, got ${JSON.stringify(r)}`);
      if (ex.canonical !== undefined) assert.equal(r.canonical, ex.canonical);
      assert.deepEqual(r.warnings.map((w) => w.code), ex.warnings ?? [], JSON.stringify(r.warnings));
    });
  }
});

describe('the grammar is unambiguous', () => {
  it('yields exactly one parse for every valid example', () => {
    for (const ex of examples.valid) assert.equal(countParses(ex.condition), 1, ex.condition);
  });
  it('yields exactly one parse for every validation-error example', () => {
    for (const ex of examples.validation_error) assert.equal(countParses(ex.condition), 1, ex.condition);
  });
});

describe('parse errors', () => {
  for (const ex of examples.parse_error) {
    it(`rejects ${JSON.stringify(ex.condition)} at ${ex.at}${ex.code === undefined ? '' : ` with ${ex.code}`}`, () => {
      const r = parseCondition(ex.condition);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(`${r.error.line}:${r.error.column}`, ex.at, r.error.message);
      assert.equal(r.error.code, ex.code ?? 'syntax', r.error.message);
      if (ex.message !== undefined) assert.ok(r.error.message.includes(ex.message), `${JSON.stringify(r.error.message)} includes ${JSON.stringify(ex.message)}`);
    });
  }
});

describe('validation errors', () => {
  for (const ex of examples.validation_error) {
    it(`rejects ${JSON.stringify(ex.condition)} with ${ex.code} at ${ex.at}`, () => {
      assert.ok(parseCondition(ex.condition).ok, 'parses');
      const r = checkCondition(ex.condition);
      assert.equal(r.ok, false);
      if (r.ok) return;
      const e = r.errors.find((x) => x.code === ex.code);
      assert.ok(e, `expected ${ex.code}, got ${JSON.stringify(r.errors)}`);
      assert.equal(`${e.line}:${e.column}`, ex.at, e.message);
    });
  }
});
