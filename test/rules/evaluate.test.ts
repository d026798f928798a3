/** Evaluation on hand-built traces: chains, relations, aggregates, logic, forms. */
import assert from 'node:assert/strict';
import { describe, it } from './node-test.ts';
import { internalized } from '../../src/rules/compile.ts';
import { evaluateTrace } from '../../src/rules/index.ts';
import { holds, rule, span } from './trace.ts';

describe('trace.has and trace.every', () => {
  const t = [span('q', { attrs: { op: 'write', tx: true } }), span('q', { attrs: { op: 'read' } })];
  it('has: some span passes every step', () => {
    assert.equal(holds('trace.has(q).where(op == write).satisfies(tx == true)', t), true);
    assert.equal(holds('trace.has(q).where(op == read).satisfies(tx == true)', t), false);
    assert.equal(holds('trace.has(nothing)', t), false);
  });
  it('every: all spans passing the wheres pass the assertions', () => {
    assert.equal(holds('trace.every(q).where(op == write).satisfies(tx == true)', t), true);
    assert.equal(holds('trace.every(q).satisfies(tx == true)', t), false);
  });
  it('every is vacuously true without selected spans', () => {
    assert.equal(holds('trace.every(nothing).satisfies(tx == true)', t), true);
    assert.equal(holds('trace.every(q).where(op == delete).satisfies(tx == true)', t), true);
  });
  it('* selects every span', () => {
    assert.equal(holds('trace.every(*).satisfies(exists(op))', t), true);
    assert.equal(holds('not trace.has(*).where(op == read)', t), false);
  });
  it('selects by exact name, strings included', () => {
    assert.equal(holds('trace.has("GET /users")', [span('GET /users')]), true);
    assert.equal(holds('trace.has(GET)', [span('GET /users')]), false);
  });
  it('selects names that are property names of objects or array indices (rules keep their names internalized)', () => {
    for (const name of ['__proto__', 'constructor', 'toString', '0', '42', '-0', '4294967295', 'payment.charge', 'héllo ✓', 'x'.repeat(300)]) {
      assert.equal(internalized(name), name);
      const quoted = JSON.stringify(name);
      assert.equal(holds(`trace.has(${quoted})`, [span(name)]), true, name);
      assert.equal(holds(`trace.has(${quoted})`, [span(`${name}.`)]), false, name);
      assert.equal(holds(`trace.every(*).satisfies(span:name == ${quoted})`, [span(name)]), true, name);
      assert.equal(holds(`trace.every(${quoted}).has_parent(${quoted})`, [span(name, { id: '1' }), span(name, { id: '2', parent: '1' })]), false, name);
    }
  });
});

describe('logic', () => {
  const t = [span('a'), span('b')];
  it('and, or, not, implies, true, false', () => {
    assert.equal(holds('trace.has(a) and (trace.has(c) or trace.has(b))', t), true);
    assert.equal(holds('(trace.has(a)) and trace.has(c)', t), false);
    assert.equal(holds('not trace.has(a) or trace.has(c)', t), false);
    assert.equal(holds('trace.has(c) implies false', t), true);
    assert.equal(holds('trace.has(a) => false', t), false);
    assert.equal(holds('true', t), true);
    assert.equal(holds('false', t), false);
  });
  it('implies is right-associative', () => {
    // z is absent: z => (a => q) is true, (z => a) => q would be false.
    assert.equal(holds('trace.has(z) implies trace.has(a) implies trace.has(q)', t), true);
    assert.equal(holds('(trace.has(z) implies trace.has(a)) implies trace.has(q)', t), false);
  });
});

describe("the seed's leading-has idiom", () => {
  const cond = 'trace.has(shipment.initiate)\n  and trace.has(payment.confirm)';
  it('passes a trace without the leading span', () => assert.equal(holds(cond, [span('other')]), true));
  it('fails a trace with the leading span and without the rest', () => assert.equal(holds(cond, [span('shipment.initiate')]), false));
  it('passes a trace with both', () => assert.equal(holds(cond, [span('shipment.initiate'), span('payment.confirm')]), true));
  it('is not applied to a parenthesised first operand', () => assert.equal(holds('(trace.has(x)) and trace.has(y)', [span('other')]), false));
  it('reads the seed payment rule as: retries imply one intent id', () => {
    const c = 'trace.has(payment.charge).where(attempt > 1)\n  and trace.count(payment.charge).where(payment_intent_id == unique) == 1';
    const charge = (attempt: number, id: string) => span('payment.charge', { attrs: { attempt, payment_intent_id: id } });
    assert.equal(holds(c, [charge(1, 'pi_1')]), true);
    assert.equal(holds(c, [charge(1, 'pi_1'), charge(2, 'pi_1')]), true);
    assert.equal(holds(c, [charge(1, 'pi_1'), charge(2, 'pi_2')]), false);
    assert.equal(holds(c, [charge(1, 'pi_1'), charge(1, 'pi_2')]), true, 'no retry: the antecedent is false');
  });
});

describe('when / always / never', () => {
  const big = span('payment.charge', { attrs: { amount: 5000 } });
  const small = span('payment.charge', { attrs: { amount: 5 } });
  it('when {A} always {B} is A implies B', () => {
    const c = 'when { trace.has(payment.charge).where(amount > 1000) } always { trace.has(fraud.check) }';
    assert.equal(holds(c, [small]), true);
    assert.equal(holds(c, [big]), false);
    assert.equal(holds(c, [big, span('fraud.check')]), true);
  });
  it('when {A} never {C} is A implies not C', () => {
    const c = 'when { trace.has(medical.diagnosis) } never { trace.has(unverified.source) }';
    assert.equal(holds(c, [span('unverified.source')]), true);
    assert.equal(holds(c, [span('medical.diagnosis'), span('unverified.source')]), false);
    assert.equal(holds(c, [span('medical.diagnosis')]), true);
  });
  it('both blocks are A implies (B and not C)', () => {
    const c = 'when { a } always { b } never { c }';
    assert.equal(holds(c, [span('a'), span('b')]), true);
    assert.equal(holds(c, [span('a'), span('b'), span('c')]), false);
    assert.equal(holds(c, [span('a')]), false);
  });
  it('understands BeTrace shorthand inside the blocks', () => {
    const c = 'when { payment.charge.where(amount > 1000) } always { fraud.check and count(http.retry) <= 1 }';
    assert.equal(holds(c, [big, span('fraud.check')]), true);
    assert.equal(holds(c, [big, span('fraud.check'), span('http.retry'), span('http.retry')]), false);
    assert.equal(holds(c, [small, span('http.retry'), span('http.retry')]), true);
  });
});

describe('relations', () => {
  // root(1) → tx(2) → q(3) → leaf(4); q(5) is a sibling of q(3)
  const tree = [
    span('root', { id: '1', start: 0, end: 100 }),
    span('transaction.begin', { id: '2', parent: '1', start: 1, end: 90 }),
    span('database.query', { id: '3', parent: '2', start: 2, end: 10, attrs: { op: 'write' } }),
    span('leaf', { id: '4', parent: '3', start: 3, end: 4, attrs: { k: 1 } }),
    span('database.query', { id: '5', parent: '2', start: 20, end: 30, attrs: { op: 'read' } }),
  ];
  it('has_parent', () => {
    assert.equal(holds('trace.every(database.query).has_parent(transaction.begin)', tree), true);
    assert.equal(holds('trace.every(leaf).has_parent(transaction.begin)', tree), false);
  });
  it('has_child', () => {
    assert.equal(holds('trace.every(transaction.begin).has_child(database.query, op == read)', tree), true);
    assert.equal(holds('trace.has(database.query).where(op == read).has_child(leaf)', tree), false);
  });
  it('has_ancestor is transitive', () => {
    assert.equal(holds('trace.every(leaf).has_ancestor(root)', tree), true);
    assert.equal(holds('trace.every(database.query).where(op == write).has_ancestor(transaction.begin)', tree), true);
    assert.equal(holds('trace.every(root).has_ancestor(*)', tree), false);
  });
  it('has_descendant is transitive', () => {
    assert.equal(holds('trace.every(root).has_descendant(leaf, k == 1)', tree), true);
    assert.equal(holds('trace.every(database.query).has_descendant(leaf)', tree), false);
  });
  it('has_sibling excludes the span itself', () => {
    assert.equal(holds('trace.every(database.query).has_sibling(database.query)', tree), true);
    assert.equal(holds('trace.every(leaf).has_sibling(*)', tree), false);
    assert.equal(holds('trace.every(root).has_sibling(*)', tree), false);
  });
  it('preceded_by: y.end <= x.start', () => {
    const t = [span('pay', { start: 0, end: 10 }), span('ship', { start: 10, end: 20 })];
    assert.equal(holds('trace.every(ship).preceded_by(pay)', t), true);
    const overlap = [span('pay', { start: 0, end: 11 }), span('ship', { start: 10, end: 20 })];
    assert.equal(holds('trace.every(ship).preceded_by(pay)', overlap), false);
    assert.equal(holds('trace.every(ship).preceded_by(pay)', [span('ship')]), false);
  });
  it('followed_by: y.start >= x.end', () => {
    const t = [span('order', { start: 0, end: 10 }), span('email', { start: 10, end: 20 })];
    assert.equal(holds('trace.every(order).followed_by(email)', t), true);
    assert.equal(holds('trace.every(email).followed_by(order)', t), false);
  });
  it('within bounds the gap', () => {
    const t = [span('order', { start: 0, end: 10 }), span('email', { start: 15, end: 20 })];
    assert.equal(holds('trace.every(order).followed_by(email).within(5ms)', t), true);
    assert.equal(holds('trace.every(order).followed_by(email).within(4ms)', t), false);
    assert.equal(holds('trace.every(email).preceded_by(order).within(5ms)', t), true);
    assert.equal(holds('trace.every(email).preceded_by(order).within(4999us)', t), false);
  });
  it('within keeps looking past a too-early candidate for a closer one', () => {
    const t = [span('pay', { start: 0, end: 1 }), span('pay', { start: 0, end: 9 }), span('ship', { start: 10, end: 20 })];
    assert.equal(holds('trace.every(ship).preceded_by(pay).within(1ms)', t), true);
  });
  it('a span does not precede itself', () => {
    const t = [span('x', { start: 5, end: 5 })];
    assert.equal(holds('trace.every(x).preceded_by(x)', t), false);
    assert.equal(holds('trace.every(x).followed_by(x)', t), false);
  });
  it('on(k) joins on equal attribute values', () => {
    const t = [
      span('payment.charge', { start: 0, end: 1, attrs: { pi: 'a' } }),
      span('payment.refund', { start: 5, end: 6, attrs: { pi: 'a' } }),
      span('payment.refund', { start: 5, end: 6, attrs: { pi: 'b' } }),
    ];
    assert.equal(holds('trace.every(payment.refund).preceded_by(payment.charge).on(pi)', t), false);
    assert.equal(holds('trace.every(payment.refund).where(pi == a).preceded_by(payment.charge).on(pi)', t), true);
    assert.equal(holds('trace.every(payment.refund).preceded_by(payment.charge)', t), true);
  });
  it('on(k) treats 5 and "5" as equal and a missing key as no match', () => {
    const t = [span('p', { id: '1', attrs: { k: 5 } }), span('c', { id: '2', parent: '1', attrs: { k: '5' } }), span('c', { id: '3', parent: '1' })];
    assert.equal(holds('trace.has(c).has_parent(p).on(k)', t), true);
    assert.equal(holds('trace.every(c).has_parent(p).on(k)', t), false);
  });
  it('on works with every relation', () => {
    const t = [
      span('r', { id: '1', attrs: { t: 1 } }),
      span('m', { id: '2', parent: '1', attrs: { t: 1 } }),
      span('l', { id: '3', parent: '2', attrs: { t: 1 } }),
      span('l', { id: '4', parent: '2', attrs: { t: 2 } }),
    ];
    assert.equal(holds('trace.every(l).has_ancestor(r).on(t)', t), false);
    assert.equal(holds('trace.every(l).where(t == 1).has_ancestor(r).on(t)', t), true);
    assert.equal(holds('trace.every(r).has_descendant(l).on(t)', t), true);
    assert.equal(holds('trace.every(r).has_descendant(l, t == 2).on(t)', t), false);
    assert.equal(holds('trace.every(m).has_child(l).on(t)', t), true);
    assert.equal(holds('trace.every(l).has_sibling(l).on(t)', t), false);
    assert.equal(holds('trace.every(l).has_sibling(l)', t), true);
  });
  it('survives parent cycles', () => {
    const t = [span('a', { id: '1', parent: '2' }), span('b', { id: '2', parent: '1' }), span('c', { id: '3', parent: '3' })];
    assert.equal(holds('trace.every(a).has_ancestor(a)', t), false);
    assert.equal(holds('trace.has(*).has_descendant(*)', t), true);
    assert.equal(holds('trace.every(c).has_parent(*)', t), false);
  });
  it('relations over a missing parent: siblings share the parent id', () => {
    const t = [span('a', { id: '1', parent: 'f' }), span('b', { id: '2', parent: 'f' })];
    assert.equal(holds('trace.every(a).has_sibling(b)', t), true);
    assert.equal(holds('trace.every(a).has_parent(*)', t), false);
  });
});

describe('aggregates', () => {
  const t = [
    span('c', { attrs: { amount: 10, id: 'x' } }),
    span('c', { attrs: { amount: '30', id: 'x' } }),
    span('c', { attrs: { amount: 'n/a', id: 'y' } }),
    span('d', { start: 0, end: 50 }),
  ];
  it('count, with where and distinct', () => {
    assert.equal(holds('trace.count(c) == 3', t), true);
    assert.equal(holds('trace.count(c).where(id == x) == 2', t), true);
    assert.equal(holds('trace.count(c).distinct(id) == 2', t), true);
    assert.equal(holds('trace.count(c).where(id == unique) == 2', t), true);
    assert.equal(holds('trace.count(*) == 4', t), true);
  });
  it('sum, min, max, avg over the numeric values', () => {
    assert.equal(holds('trace.sum(c, amount) == 40', t), true);
    assert.equal(holds('trace.min(c, amount) == 10', t), true);
    assert.equal(holds('trace.max(c, amount) == 30', t), true);
    assert.equal(holds('trace.avg(c, amount) == 20', t), true);
    assert.equal(holds('trace.sum(c, amount).where(id == y) == 0', t), true);
  });
  it('over no spans: count and sum are 0, min/max/avg missing', () => {
    assert.equal(holds('trace.count(none) == 0 and trace.sum(none, x) == 0', t), true);
    assert.equal(holds('trace.min(none, x) < 1 or trace.min(none, x) >= 1', t), false);
    assert.equal(holds('trace.max(none, x) != 0', t), false);
    assert.equal(holds('not (trace.avg(none, x) == 0)', t), true);
  });
  it('trace.duration and trace.span_count', () => {
    assert.equal(holds('trace.duration == 50ms', t), true);
    assert.equal(holds('trace.duration < 50ms', t), false);
    assert.equal(holds('trace.span_count == 4', t), true);
  });
  it('aggregates compare with each other', () => {
    assert.equal(holds('trace.count(http.request) == trace.count(http.response)', [span('http.request'), span('http.response')]), true);
    assert.equal(holds('trace.count(http.request) == trace.count(http.response)', [span('http.request')]), false);
    assert.equal(holds('trace.max(c, amount) > trace.count(c)', t), true);
  });
  it('an aggregate never equals a non-numeric string', () => assert.equal(holds('trace.count(X) <= N', t), false));
});

describe('de-duplication and determinism', () => {
  it('counts a re-sent span once', () => {
    const s = span('a', { id: '7' });
    assert.equal(holds('trace.count(a) == 1', [s, s, { ...s }]), true);
  });
  it('keeps, of a re-sent span, the record that ended later, whatever the order and wherever it repeats', () => {
    const early = span('a', { id: '7', start: 0, end: 3 });
    const late = span('a', { id: '7', start: 0, end: 10 });
    const others = [span('b', { id: '8' }), span('betrace.violation', { id: '9' })];
    for (const spans of [[early, late], [late, early], [...others, early, late], [late, ...others, early], [early, ...others, late, early]]) {
      assert.equal(holds('trace.count(a) == 1 and trace.every(a).satisfies(span:duration >= 10ms)', spans), true);
      assert.equal(holds('trace.span_count == ' + String(1 + spans.filter((s) => s.name === 'b').length), spans), true);
    }
  });
  it("ignores betrace's own violation spans", () => {
    assert.equal(holds('trace.span_count == 1 and not trace.has(betrace.violation)', [span('a'), span('betrace.violation')]), true);
  });
  it('gives the same result whatever the arrival order', () => {
    const spans = [
      span('root', { id: '1', start: 0, end: 100 }),
      span('pay', { id: '2', parent: '1', start: 5, end: 6, attrs: { o: 1 } }),
      span('ship', { id: '3', parent: '1', start: 1, end: 2, attrs: { o: 1 } }),
      span('ship', { id: '4', parent: '1', start: 7, end: 8, attrs: { o: 2 } }),
      span('ship', { id: '3', parent: '1', start: 1, end: 2, attrs: { o: 1 } }),
    ];
    const rules = [rule('trace.every(ship).preceded_by(pay).on(o)'), rule('trace.count(ship) > 5', { id: 'other' })];
    const expected = evaluateTrace(rules, spans);
    assert.equal(expected.violations.length, 2);
    let seed = 7;
    for (let k = 0; k < 20; k++) {
      const shuffled = [...spans].sort(() => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 3) - 1);
      assert.deepEqual(evaluateTrace(rules, shuffled), expected);
    }
  });
});
