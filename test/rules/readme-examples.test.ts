/**
 * The language reference's worked examples (src/rules/README.md, "this trace → this verdict")
 * hold as written: every row's trace is built from its spans, the rule evaluated on it, and
 * the verdict and the witnesses' names compared with the row.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRuleSet } from '../../src/rules/index.ts';
import type { AttributeValue, SpanRecord } from '../../src/rules/index.ts';
import { describe, it } from './node-test.ts';
import { rule, span } from './trace.ts';

const readme = readFileSync(new URL('../../src/rules/README.md', import.meta.url), 'utf8');

interface Example {
  condition: string;
  rows: Array<{ spans: string; verdict: string }>;
}

function examples(): Example[] {
  const m = /<!-- examples:start -->\n([\s\S]*?)<!-- examples:end -->/.exec(readme);
  assert.ok(m, 'the examples markers');
  const out: Example[] = [];
  for (const line of m[1]!.split('\n')) {
    const condition = /^`(.+)`$/.exec(line);
    if (condition) out.push({ condition: condition[1]!, rows: [] });
    const row = /^\| (`.+) \| (.+) \|$/.exec(line);
    if (row) out[out.length - 1]!.rows.push({ spans: row[1]!, verdict: row[2]! });
  }
  return out;
}

function value(text: string): AttributeValue {
  if (text === 'true' || text === 'false') return text === 'true';
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

/** `` `root`, `child(k=v; k=v)` `` → spans in start order, the first the root, the others its children. */
function trace(cell: string): SpanRecord[] {
  const specs = [...cell.matchAll(/`([^`(]+)(?:\(([^)]*)\))?`/g)];
  return specs.map((s, i) => {
    const attrs = Object.fromEntries(
      (s[2] ?? '')
        .split(';')
        .map((kv) => kv.trim())
        .filter((kv) => kv !== '')
        .map((kv) => [kv.slice(0, kv.indexOf('=')), value(kv.slice(kv.indexOf('=') + 1))]),
    );
    return span(s[1]!, { id: `e${i + 1}`, ...(i === 0 ? {} : { parent: 'e1' }), start: i * 10, end: i === 0 ? specs.length * 10 : i * 10 + 5, attrs });
  });
}

describe('the worked examples of the rule language reference', () => {
  const all = examples();
  it('has examples', () => assert.ok(all.length >= 5 && all.every((e) => e.rows.length >= 2)));
  for (const example of all) {
    for (const row of example.rows) {
      it(`${example.condition} on ${row.spans}: ${row.verdict}`, () => {
        const spans = trace(row.spans);
        const result = createRuleSet([rule(example.condition)]).evaluate(spans);
        if (row.verdict.startsWith('passes')) {
          assert.deepEqual(result.violations, [], 'no violation');
          return;
        }
        assert.match(row.verdict, /^violation: /);
        assert.equal(result.violations.length, 1, 'one violation');
        const expected = [...row.verdict.replace(/\(.*\)$/, '').matchAll(/`([^`]+)`/g)].map((w) => w[1]);
        const names = result.violations[0]!.witnessSpanIds.map((id) => spans.find((s) => s.spanId === id)?.name);
        assert.deepEqual(names.sort(), expected.sort(), 'the witnesses');
      });
    }
  }
});
