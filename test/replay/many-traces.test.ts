/**
 * A replay past the engine's memory of evaluated traces (DEFAULT_COMPLETED_MEMORY,
 * 250,000 ids): 400,000 traces through one lane, 1% of them breaking a rule. Every
 * trace is counted once, every violation found with its trace id, and a record arriving
 * again for any of the latest 250,000 traces is counted late, not evaluated as a new
 * trace. (Before the two-generation memory, the set of evaluated ids dropped its oldest
 * entry by walking its deleted slots: past 250,000 traces each trace cost more than the
 * last. Speed is measured by the bench; this test holds the answer at that size.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReplayEngine, DEFAULT_MAX_LIVE_SPANS } from '../../src/replay/index.ts';
import { compileRule } from '../../src/rules/index.ts';
import { patchedRecords } from './history.ts';

const TRACES = 400_000;
const START_MS = Date.UTC(2026, 0, 1);
const COMPLETED_MEMORY = 250_000;

const hex = (n: number, bytes: number) => n.toString(16).padStart(bytes * 2, '0');

/** One-span records (encoding 400,000 requests through protobufjs would take most of the test's time). */
function recordMaker(name: string): (i: number, startMs: number) => Buffer {
  const patched = patchedRecords([{ service: 'svc', spanId: 'e'.repeat(16), parentSpanId: '', name, startMs: START_MS, durationMs: 1, attributes: {} }]);
  return (i, startMs) => patched(hex(i, 16), startMs - START_MS);
}

describe('a replay of more traces than the engine remembers', () => {
  it('counts each trace once, finds every violation, and counts late records of the latest 250,000 traces', () => {
    const compiled = compileRule({ id: 'no-refund', name: 'no refund', description: '', severity: 'high', enabled: true, tags: [], condition: 'not trace.has(refund)' });
    assert.ok(compiled.ok, JSON.stringify(compiled));
    const engine = createReplayEngine({ rules: [compiled.rule], fromMs: START_MS, toMs: START_MS + TRACES, traceMaxDurationMs: 100, now: () => 0 });
    assert.ok(engine.skipsByTriggers);
    const ok = recordMaker('checkout');
    const bad = recordMaker('refund');
    const lane = engine.lane();
    const expected: string[] = [];
    for (let i = 0; i < TRACES; i++) {
      const breaks = i % 100 === 37;
      if (breaks) expected.push(hex(i, 16));
      lane.addRecord((breaks ? bad : ok)(i, START_MS + i), START_MS + i);
    }
    // Late: a record of each of the latest 250,000 traces (evaluated long ago, by event time).
    for (let i = TRACES - COMPLETED_MEMORY; i < TRACES; i++) lane.addRecord(bad(i, START_MS + i), START_MS + TRACES + 1000);
    engine.finish();
    const c = engine.counters;
    assert.equal(c.tracesScanned, TRACES);
    assert.equal(c.tracesSkipped, TRACES - expected.length);
    assert.equal(c.lateRecords, COMPLETED_MEMORY);
    assert.equal(c.tracesPartial, 0);
    assert.ok(engine.liveSpans < DEFAULT_MAX_LIVE_SPANS);
    assert.deepEqual(
      engine.violations().map((v) => v.trace_id),
      expected,
    );
  });
});
