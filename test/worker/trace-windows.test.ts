/** Trace assembly rules, on an injected clock. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TraceWindows, type WindowOptions } from '../../src/worker/trace-windows.ts';
import type { ConsumedRecord } from '../../src/transport/transport.ts';

function setup(overrides: Partial<WindowOptions> = {}) {
  let now = 1_000_000;
  const released: Array<[number, number]> = [];
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
  w.onRelease = (o) => {
    for (let i = 0; i < o.length; i += 2) released.push([o[i]!, o[i + 1]!]);
  };
  const discarded: Uint8Array[] = [];
  w.onDiscard = (p) => discarded.push(...p);
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
    discarded,
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

  it('is quiet (nothing for the worker\'s tick to do) only with nothing live, evaluating or in its grace period', () => {
    const t = setup();
    assert.equal(t.w.quiet, true, 'empty');
    t.w.add(t.rec(A));
    assert.equal(t.w.quiet, false, 'live');
    const [done] = t.advance(5100);
    assert.equal(t.w.quiet, false, 'being evaluated');
    t.w.settle(done!, new Set());
    assert.equal(t.w.quiet, false, 'in its grace period');
    t.advance(29_000);
    assert.equal(t.w.quiet, false, 'still in its grace period');
    t.advance(1100);
    assert.equal(t.w.quiet, true, 'grace period over');
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
    assert.deepEqual(t.released, [[0, 0], [0, 1]]);
  });

  it('discards a trace\'s payloads once, when its grace period ends, not while it waits for its exports', () => {
    const t = setup({ graceMs: 1000 });
    const records = [t.rec(A), t.rec(A)];
    for (const r of records) t.w.add(r);
    const [done] = t.advance(5100);
    const { entry } = t.w.settle(done!, new Set(['v']));
    t.w.exportStarted(entry);
    t.advance(500);
    assert.deepEqual(t.discarded, [], 'within the grace period');
    t.advance(600);
    assert.deepEqual(t.discarded, records.map((r) => r.payload), 'the payloads are not needed for the export');
    t.w.exportDone(entry);
    t.advance(60_000);
    assert.equal(t.discarded.length, 2, 'once each');
  });

  it('keeps the payloads of a reopened trace, and discards them all after its second grace period', () => {
    const t = setup({ graceMs: 1000 });
    const first = t.rec(A);
    t.w.add(first);
    const [done] = t.advance(5100);
    t.w.settle(done!, new Set());
    const late = t.rec(A);
    assert.equal(t.w.add(late).kind, 'reopened');
    assert.deepEqual(t.discarded, [], 'reopened: the earlier payloads belong to the live trace');
    const [again] = t.advance(5100);
    assert.deepEqual(again!.payloads, [first.payload, late.payload]);
    t.w.settle(again!, new Set());
    t.advance(1100);
    assert.deepEqual(t.discarded, [first.payload, late.payload]);
  });

  it('discards evicted traces and the traces of lost partitions; not the payloads of records it did not keep', () => {
    const t = setup({ graceMs: 1000, maxDecidedBytes: 250 });
    const a = t.rec(A);
    t.w.add(a);
    const [doneA] = t.advance(5100);
    t.w.settle(doneA!, new Set());
    const b = t.rec(B);
    t.w.add(b);
    const [doneB] = t.advance(5100);
    t.w.settle(doneB!, new Set()); // two decided traces exceed maxDecidedBytes: A is evicted
    assert.deepEqual(t.discarded, [a.payload]);
    const late = t.rec(A);
    assert.deepEqual(t.w.add(late), { kind: 'late_ignored', reason: 'after_grace' });
    assert.deepEqual(t.discarded, [a.payload], 'a record not kept is the caller\'s to discard');
    const live = { ...t.rec('c'.repeat(32)), partition: 1 };
    t.w.add(live);
    t.w.dropPartitions((p) => p === 0);
    assert.deepEqual(t.discarded, [a.payload, live.payload], 'the live trace of partition 1');
    t.w.dropPartitions(() => false);
    assert.deepEqual(t.discarded, [a.payload, live.payload, b.payload], 'the decided trace of partition 0');
  });
});
