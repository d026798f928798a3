/** Trace assembly rules, on an injected clock. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TraceWindows, type WindowOptions } from '../../src/worker/trace-windows.ts';
import type { ConsumedRecord } from '../../src/transport/transport.ts';

function setup(overrides: Partial<WindowOptions> = {}) {
  let now = 1_000_000;
  const released: Array<[number, bigint]> = [];
  const w = new TraceWindows({
    idleMs: 5000,
    maxDurationMs: 60_000,
    rootIdleMs: 0,
    maxSpans: 100,
    graceMs: 30_000,
    tickMs: 100,
    now: () => now,
    ...overrides,
  });
  w.onRelease = (o) => released.push(...o);
  let offset = 0n;
  const rec = (traceId: string, spanCount = 1): ConsumedRecord => ({
    traceId,
    payload: new Uint8Array(10),
    spanCount,
    timestampMs: now,
    partition: 0,
    offset: offset++,
  });
  return {
    w,
    rec,
    released,
    advance(ms: number) {
      now += ms;
      return w.advance();
    },
  };
}

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

describe('trace windows', () => {
  it('completes a trace once no span arrived for the idle timeout', () => {
    const t = setup();
    t.w.add(t.rec(A));
    assert.equal(t.advance(3000).length, 0);
    t.w.add(t.rec(A));
    assert.equal(t.advance(4000).length, 0, 'the second span restarted the idle clock');
    const done = t.advance(1100);
    assert.equal(done.length, 1);
    assert.equal(done[0]!.traceId, A);
    assert.equal(done[0]!.spanCount, 2);
    assert.equal(done[0]!.reason, 'idle');
    assert.equal(done[0]!.partial, false);
    assert.equal(t.w.liveTraces, 0);
  });

  it('cuts a trace at trace_max_duration even while spans keep coming, marked partial', () => {
    const t = setup({ maxDurationMs: 10_000 });
    const done = [];
    for (let i = 0; i < 12; i++) {
      t.w.add(t.rec(A));
      done.push(...t.advance(1000));
    }
    assert.equal(done.length, 1);
    assert.equal(done[0]!.reason, 'max_duration');
    assert.equal(done[0]!.partial, true);
  });

  it('cuts a trace at max_spans_per_trace at once, and counts later spans instead of re-evaluating', () => {
    const t = setup({ maxSpans: 5 });
    t.w.add(t.rec(A, 3));
    const cut = t.w.add(t.rec(A, 2));
    assert.equal(cut.kind, 'cut');
    assert.ok(cut.kind === 'cut' && cut.trace.partial && cut.trace.reason === 'max_spans');
    if (cut.kind === 'cut') t.w.settle(cut.trace, new Set());
    const late = t.w.add(t.rec(A));
    assert.deepEqual(late, { kind: 'late_ignored', reason: 'over_limit' });
  });

  it('completes early once the root span arrived and root_idle_timeout passed', () => {
    const t = setup({ rootIdleMs: 500 });
    t.w.add(t.rec(A), true);
    t.w.add(t.rec(B), false);
    const done = t.advance(700);
    assert.deepEqual(done.map((d) => [d.traceId, d.reason]), [[A, 'root_idle']]);
    assert.equal(done[0]!.partial, false);
  });

  it('stops idle clocks while paused', () => {
    const t = setup();
    t.w.add(t.rec(A));
    t.w.pause();
    assert.equal(t.advance(20_000).length, 0, 'no idle completion while paused');
    t.w.resume();
    assert.equal(t.advance(4000).length, 0, 'the paused time does not count');
    assert.equal(t.advance(1200).length, 1);
  });

  it('re-opens a trace for a late span within the grace period, carrying emitted violation ids', () => {
    const t = setup();
    t.w.add(t.rec(A));
    const [first] = t.advance(5100);
    t.w.settle(first!, new Set(['v1']));
    const late = t.w.add(t.rec(A));
    assert.equal(late.kind, 'reopened');
    const [again] = t.advance(5100);
    assert.equal(again!.spanCount, 2, 'the whole trace is re-evaluated');
    assert.ok(again!.reevaluation);
    assert.deepEqual([...again!.emitted], ['v1']);
  });

  it('counts a span that arrives after the grace period instead of evaluating it alone', () => {
    const t = setup({ graceMs: 1000 });
    t.w.add(t.rec(A));
    const [first] = t.advance(5100);
    t.w.settle(first!, new Set());
    t.advance(1200);
    assert.deepEqual(t.w.add(t.rec(A)), { kind: 'late_ignored', reason: 'after_grace' });
  });

  it('holds spans that arrive during evaluation and hands them back at settle', () => {
    const t = setup();
    t.w.add(t.rec(A));
    const [first] = t.advance(5100);
    assert.deepEqual(t.w.add(t.rec(A)), { kind: 'held' });
    const { arrived } = t.w.settle(first!, new Set());
    assert.equal(arrived.length, 1);
  });

  it('releases a trace\'s records only after its grace period and its violation exports', () => {
    const t = setup({ graceMs: 1000 });
    t.w.add(t.rec(A));
    t.w.add(t.rec(A));
    const [done] = t.advance(5100);
    const { entry } = t.w.settle(done!, new Set(['v']));
    t.w.exportStarted(entry);
    t.advance(1100);
    assert.deepEqual(t.released, [], 'export not acknowledged yet');
    t.w.exportDone(entry);
    assert.deepEqual(t.released, [[0, 0n], [0, 1n]]);
  });
});
