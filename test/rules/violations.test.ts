/** Evaluation (src/rules/README.md) and violations (docs/contract.md): witnesses, root, times, ids, triggers, budget. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from './node-test.ts';
import { BUDGET } from '../../src/rules/compile.ts';
import { RuleViolationIds } from '../../src/rules/rule.ts';
import { TraceIndex, createRuleSet, evaluateTrace, violationId } from '../../src/rules/index.ts';
import { BASE_NS, TRACE_ID, hexId, rule, span, violation, witnesses } from './trace.ts';

describe('witness spans', () => {
  it('implication: the antecedent spans plus the consequent witnesses', () => {
    const t = [span('admin.action', { id: '1' }), span('other', { id: '2' })];
    assert.deepEqual(witnesses('trace.has(admin.action) implies trace.has(audit.log)', t), ['1']);
  });
  it('every: the spans that failed an assertion', () => {
    const t = [span('q', { id: '1', attrs: { f: true } }), span('q', { id: '2', attrs: { f: false } }), span('q', { id: '3' })];
    assert.deepEqual(witnesses('trace.every(q).satisfies(f == true)', t), ['2', '3']);
  });
  it('not trace.has: the spans found', () => {
    const t = [span('x', { id: '1', status: 'error' }), span('x', { id: '2' }), span('y', { id: '3', status: 'error' })];
    assert.deepEqual(witnesses('not trace.has(*).where(span:status == error)', t), ['1', '3']);
  });
  it("false and: the first false conjunct's", () => {
    const t = [span('a', { id: '1' }), span('b', { id: '2' })];
    assert.deepEqual(witnesses('(trace.count(a) == 0) and not trace.has(b)', t), ['1']);
  });
  it("false or: the union of its operands'", () => {
    const t = [span('a', { id: '1' }), span('b', { id: '2' })];
    assert.deepEqual(witnesses('not trace.has(a) or not trace.has(b)', t), ['1', '2']);
  });
  it('aggregate comparison: the spans counted on each side', () => {
    const t = [span('req', { id: '1' }), span('req', { id: '2' }), span('res', { id: '3' })];
    assert.deepEqual(witnesses('trace.count(req) == trace.count(res)', t), ['1', '2', '3']);
  });
  it("never {C}: C's matching spans, with the antecedent's", () => {
    const t = [span('diag', { id: '1' }), span('unverified', { id: '2' }), span('unverified', { id: '3' })];
    assert.deepEqual(witnesses('when { trace.has(diag) } never { trace.has(unverified) }', t), ['1', '2', '3']);
  });
  it('a failing bare trace.has has no witnesses and spans the whole trace', () => {
    const t = [span('a', { id: '1', start: 5, end: 6 }), span('b', { id: '2', start: 1, end: 9 })];
    const v = violation('trace.has(x)', t);
    assert.deepEqual(v.witnessSpanIds, []);
    assert.equal(v.witnessCount, 0);
    assert.equal(v.startTimeUnixNano, BASE_NS + 1_000_000n);
    assert.equal(v.endTimeUnixNano, BASE_NS + 9_000_000n);
  });
  it('are sorted by start then span id, at most 32, with the full count', () => {
    const t = Array.from({ length: 40 }, (_, i) => span('e', { id: (100 - i).toString(16), start: i % 2, end: 50 + i }));
    const v = violation('not trace.has(e)', t);
    assert.equal(v.witnessCount, 40);
    assert.equal(v.witnessSpanIds.length, 32);
    const sorted = [...t].sort((a, b) => (a.startTimeUnixNano === b.startTimeUnixNano ? (a.spanId < b.spanId ? -1 : 1) : a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
    assert.deepEqual(v.witnessSpanIds, sorted.slice(0, 32).map((s) => s.spanId));
    assert.equal(v.startTimeUnixNano, BASE_NS);
    assert.equal(v.endTimeUnixNano, BASE_NS + 89_000_000n, 'latest end of all witnesses, not only the first 32');
  });
  it('are sorted, without repeats, alike in a few (insertion sort) and in many (Array#sort)', () => {
    // Shuffled starts with many ties; the implication lists the antecedent spans and then
    // the failing consequent's, so spans named both ways are listed twice.
    for (const n of [2, 3, 7, 24, 25, 60]) {
      const t = Array.from({ length: n }, (_, i) => span(i % 3 === 0 ? 'e' : 'f', { id: ((i * 7919) % 997).toString(16), start: (i * 37) % 5, end: 9 }));
      const v = violation('not trace.has(*).where(span:status == unset)', t);
      const sorted = [...t].sort((a, b) => (a.startTimeUnixNano === b.startTimeUnixNano ? (a.spanId < b.spanId ? -1 : 1) : a.startTimeUnixNano < b.startTimeUnixNano ? -1 : 1));
      assert.deepEqual(v.witnessSpanIds, sorted.slice(0, 32).map((s) => s.spanId), `${n} witnesses`);
      assert.equal(v.witnessCount, n);
      const twice = violation('trace.has(*) implies trace.every(*).satisfies(span:status == error)', t);
      assert.deepEqual(twice.witnessSpanIds, v.witnessSpanIds, `${n} witnesses listed twice`);
      assert.equal(twice.witnessCount, n);
    }
  });
  it('are ordered and timed on exact times where relative times round (over 2^53 ns apart)', () => {
    // 2^60 and 2^60 + 1 ns after the earliest start are one number (2^60): the order, the
    // earliest start and the latest end still follow the exact times.
    const far = 1n << 60n;
    const at = (id: string, startNs: bigint, endNs: bigint): ReturnType<typeof span> => ({
      ...span('e', { id }),
      startTimeUnixNano: BASE_NS + startNs,
      endTimeUnixNano: BASE_NS + endNs,
    });
    const t = [span('first', { id: 'f', start: 0, end: 0 }), at('a', far + 1n, far + 3n), at('b', far, far + 2n)];
    const v = violation('not trace.has(e)', t);
    assert.deepEqual(v.witnessSpanIds, [hexId('b'), hexId('a')], 'b starts 1 ns before a (a has the smaller span id)');
    assert.equal(v.startTimeUnixNano, BASE_NS + far);
    assert.equal(v.endTimeUnixNano, BASE_NS + far + 3n);
    const ties = [span('first', { id: 'f', start: 0, end: 0 }), at('c', far + 1n, far + 2n), at('d', far + 1n, far + 3n)];
    assert.deepEqual(violation('not trace.has(e)', ties).witnessSpanIds, [hexId('c'), hexId('d')], 'equal exact starts: by span id');
    const whole = violation('trace.has(x)', [at('h', 0n, far + 4n), at('i', far + 2n, far + 3n), at('g', far + 1n, far + 5n)]);
    assert.equal(whole.startTimeUnixNano, BASE_NS, 'no witnesses: the whole trace');
    assert.equal(whole.endTimeUnixNano, BASE_NS + far + 5n);
  });
});

describe('violation fields', () => {
  it('carry rule fields, message default and span count', () => {
    const r = rule('trace.has(a)', { id: 'r1', name: 'N', description: 'D', severity: 'low', tags: ['SOC2:CC7.2'] });
    const v = evaluateTrace([r], [span('b'), span('c')]).violations[0];
    assert.ok(v);
    assert.equal(v.ruleId, 'r1');
    assert.equal(v.ruleName, 'N');
    assert.equal(v.severity, 'low');
    assert.deepEqual(v.tags, ['SOC2:CC7.2']);
    assert.equal(v.message, 'D');
    assert.equal(v.spanCount, 2);
    assert.equal(v.traceId, TRACE_ID);
    const named = evaluateTrace([rule('trace.has(a)', { name: 'Only a name' })], [span('b')]).violations[0];
    assert.equal(named?.message, 'Only a name');
    const own = evaluateTrace([rule('trace.has(a)', { description: 'D', message: 'M' })], [span('b')]).violations[0];
    assert.equal(own?.message, 'M');
  });

  it('have the contract violation id', () => {
    const expected = createHash('sha256').update('r1\ntrace.has(a) implies trace.has(b)\n' + TRACE_ID).digest().subarray(0, 16).toString('hex');
    assert.equal(violationId('r1', 'trace.has(a) implies trace.has(b)', TRACE_ID), expected);
    assert.equal(expected.length, 32);
    const v = evaluateTrace([rule('trace.has(a) and trace.has(b)', { id: 'r1' })], [span('a')]).violations[0];
    assert.equal(v?.violationId, expected);
  });

  it('have the contract violation id for any trace id and rule text (a rule set hashes its rules\' part once)', () => {
    const contract = (ruleId: string, canonical: string, traceId: string): string => createHash('sha256').update(`${ruleId}\n${canonical}\n${traceId}`).digest().subarray(0, 16).toString('hex');
    const texts = ['trace.has(a)', 'trace.has(a).where(msg == "héllo ✓")', `trace.has(${'x'.repeat(200)})`];
    const traceIds = [TRACE_ID, 'F'.repeat(32), '', 'abc', TRACE_ID + '00', 'é'.repeat(32), '✓'.repeat(32), `${'0'.repeat(31)}\u0080`];
    for (const canonical of texts) {
      const ids = new RuleViolationIds('r.1', canonical);
      for (const traceId of traceIds) {
        assert.equal(ids.of(traceId), contract('r.1', canonical, traceId), `${canonical} / ${traceId}`);
        assert.equal(ids.of(traceId), violationId('r.1', canonical, traceId));
      }
      assert.equal(ids.of(TRACE_ID), contract('r.1', canonical, TRACE_ID), 'the buffer is written again for each id');
    }
  });

  it('name the earliest parentless span as root (ties: lowest span id)', () => {
    const t = [span('x', { id: '9', start: 5 }), span('y', { id: '3', start: 1 }), span('z', { id: '2', start: 1 }), span('c', { id: '4', parent: '2', start: 0 })];
    const v = violation('trace.has(q)', t);
    assert.equal(v.rootSpanId, hexId('2'));
    assert.equal(v.rootMissing, false);
  });

  it('name the earliest span with a parent outside the trace when there is no parentless span', () => {
    const t = [span('x', { id: '5', parent: 'ff', start: 3 }), span('y', { id: '6', parent: 'ee', start: 2 }), span('z', { id: '7', parent: '6', start: 1 })];
    const v = violation('trace.has(q)', t);
    assert.equal(v.rootSpanId, hexId('6'));
    assert.equal(v.rootMissing, true);
  });
});

describe('triggers', () => {
  it('are the selected span names', () => {
    assert.deepEqual([...rule('trace.has(a).has_child(z) implies trace.count(b) > 1').triggers ?? []].sort(), ['a', 'b']);
  });
  it('are null for *, trace.duration and trace.span_count', () => {
    assert.equal(rule('not trace.has(*).where(x == 1)').triggers, null);
    assert.equal(rule('trace.duration < 5s').triggers, null);
    assert.equal(rule('trace.span_count < 5').triggers, null);
  });
  it('come with the verdict without them', () => {
    assert.equal(rule('when { trace.has(x) } always { trace.has(y) }').passesWithoutTriggers, true);
    assert.equal(rule('not trace.has(x)').passesWithoutTriggers, true);
    assert.equal(rule('trace.has(x)').passesWithoutTriggers, false);
    assert.equal(rule('trace.count(x) >= 1').passesWithoutTriggers, false);
    assert.equal(rule('trace.every(x).satisfies(a == 1)').passesWithoutTriggers, true);
  });
  it('skip a rule only when the trace holds none of them and the verdict is a pass', () => {
    const rules = [rule('trace.has(a) implies trace.has(b)', { id: 'p' }), rule('trace.has(a)', { id: 'f' }), rule('trace.duration < 1h', { id: 'd' })];
    const none = evaluateTrace(rules, [span('zzz')]);
    assert.equal(none.skipped, 1);
    assert.equal(none.evaluated, 2);
    assert.deepEqual(none.violations.map((v) => v.ruleId), ['f']);
    const some = evaluateTrace(rules, [span('a')]);
    assert.equal(some.skipped, 0);
    assert.deepEqual(some.violations.map((v) => v.ruleId), ['p']);
  });
  it('a rule set ignores disabled rules', () => {
    const set = createRuleSet([rule('trace.has(a)', { enabled: false })]);
    assert.equal(set.rules.length, 0);
    assert.deepEqual(set.evaluate([span('b')]).violations, []);
  });
});

describe('evaluation budget', () => {
  it('aborts a rule with a recorded outcome instead of running on', () => {
    const big = Array.from({ length: 5000 }, (_, i) => span('s', { id: (i + 1).toString(16), attrs: { x: i } }));
    const r = rule('trace.every(s).satisfies(x >= 0)');
    assert.throws(() => r.program.test({ index: new TraceIndex(big), steps: 0, deadline: 0 }), (e) => e === BUDGET);
    const out = evaluateTrace([r, rule('trace.has(zzz)', { id: 'second' })], big, { budgetMs: -1 });
    assert.equal(out.budgetExceeded, true);
    assert.deepEqual(out.budgetExceededRuleIds, ['test-rule', 'second']);
    assert.deepEqual(out.violations, []);
  });
  it('is not reached by ordinary traces', () => {
    const out = evaluateTrace([rule('trace.every(s).satisfies(x >= 0)')], [span('s', { attrs: { x: 1 } })]);
    assert.equal(out.budgetExceeded, undefined);
  });
});
