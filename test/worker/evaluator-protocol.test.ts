/** Violations travel from an evaluation thread packed: the same violations come out. */
import assert from 'node:assert/strict';
import { serialize, deserialize } from 'node:v8';
import { test } from 'node:test';
import { evaluateTrace } from '../../src/rules/index.ts';
import { RuleTable, packViolations, unpackViolations, type RuleFieldsWire } from '../../src/worker/evaluator-protocol.ts';
import { rule, span } from '../rules/trace.ts';

test('packed violations unpack to the same violations, rule fields once per batch', () => {
  const rules = [
    rule('trace.has(audit.log)', { id: 'audit', name: 'Audit', severity: 'critical', tags: ['SOC2:CC7.2', 'admin'], message: 'no audit log' }),
    rule('not trace.has(*).where(span:status == error)', { id: 'errors', name: 'No errors', description: 'errors are violations', severity: 'low' }),
    rule('trace.count(q) <= 1', { id: 'few-q', name: 'Few q' }),
  ];
  const trace = [span('root', { id: '1', start: 0, end: 10 }), span('q', { id: '2', parent: '1', start: 1, end: 2, status: 'error' }), span('q', { id: '3', parent: '1', start: 3, end: 9 })];
  const other = [span('q', { id: '7', parent: '6', start: 5, end: 6, status: 'error' })];
  const first = evaluateTrace(rules, trace).violations;
  const second = evaluateTrace(rules, other).violations;
  assert.equal(first.length, 3);
  assert.equal(second.length, 2);
  const table = new RuleTable();
  const slot = (v: (typeof first)[number]) => table.slot(v);
  const wire = [packViolations(first, slot), packViolations(second, slot), packViolations([], slot)];
  assert.equal(table.rules.length, 3, 'each rule once in the batch');
  const back = deserialize(serialize({ wire, table: table.rules })) as { wire: typeof wire; table: RuleFieldsWire[] }; // as a structured clone carries them
  assert.deepEqual(unpackViolations(back.wire[0]!, back.table), first);
  assert.deepEqual(unpackViolations(back.wire[1]!, back.table), second);
  assert.deepEqual(unpackViolations(back.wire[2]!, back.table), []);
});
