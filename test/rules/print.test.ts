/** The canonical printer: its output parses back to the same resolved AST. */
import assert from 'node:assert/strict';
import { describe, it } from './node-test.ts';
import { checkCondition, printCondition } from '../../src/rules/index.ts';
import { stripLocations } from '../../src/rules/ast.ts';
import { examples } from './examples.ts';

function resolved(text: string) {
  const r = checkCondition(text);
  if (!r.ok) assert.fail(`${text}: ${JSON.stringify(r.errors)}`);
  return r;
}

describe('printer round trip', () => {
  for (const ex of examples.valid) {
    it(`print(parse(x)) parses to the same AST: ${JSON.stringify(ex.condition)}`, () => {
      const first = resolved(ex.condition);
      const printed = printCondition(first.condition);
      const second = resolved(printed);
      assert.deepEqual(stripLocations(second.condition), stripLocations(first.condition));
      assert.equal(printCondition(second.condition), printed, 'printing is idempotent');
    });
  }

  it('prints a leading-has conjunction as implies', () => {
    assert.equal(resolved('trace.has(a) and trace.has(b)').canonical, 'trace.has(a) implies trace.has(b)');
  });

  it('keeps a plain conjunction starting with has in parentheses', () => {
    const r = resolved('(trace.has(a)) and trace.has(b)');
    assert.equal(r.canonical, '(trace.has(a)) and trace.has(b)');
    assert.equal(r.condition.kind, 'and');
    assert.equal(r.leadingHas, false);
  });

  it('quotes names that do not lex as a plain name and keywords', () => {
    assert.equal(resolved('trace.has("GET /users") implies trace.has("in")').canonical, 'trace.has("GET /users") implies trace.has("in")');
    assert.equal(resolved('trace.every(a).satisfies("span.x" == 1)').canonical, 'trace.every(a).satisfies("span.x" == 1)');
  });

  it('writes string values quoted, bare words included', () => {
    assert.equal(resolved('trace.every(a).satisfies(op == write)').canonical, 'trace.every(a).satisfies(op == "write")');
  });
});
