/** LiveTraces: each cut, on an explicit event-time clock (and the worker's pausable clock). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LiveTraces, isPartialCut, type CutLimits, type CutReason } from '../../src/worker/live-traces.ts';
import { EventClock, PausableClock, type TraceClock } from '../../src/worker/trace-clock.ts';

const LIMITS: CutLimits = { idleMs: 5000, maxDurationMs: 60_000, rootIdleMs: 0, maxSpans: 100, maxBytes: Infinity };

function events(limits: Partial<CutLimits> = {}) {
  const clock = new EventClock();
  const live = new LiveTraces<string[]>({ ...LIMITS, ...limits }, clock);
  /** One record of `id` at event time `at` (the clock moves to it); the cut its bounds made, if any. */
  const add = (id: string, at: number, o: { spans?: number; bytes?: number; root?: boolean } = {}): CutReason | undefined => {
    clock.observe(at);
    const t = live.get(id) ?? live.open(id, [], 0, 0, at);
    t.value.push(`${id}@${at}`);
    return live.append(t, o.spans ?? 1, o.bytes ?? 10, o.root ?? false, at);
  };
  /** The traces cut once the clock reads `at`, as [id, reason]. */
  const cutAt = (at: number) => {
    clock.observe(at);
    return live.cut().map((t) => [t.id, t.cut]);
  };
  return { clock, live, add, cutAt };
}

describe('live traces', () => {
  it('cuts a trace idle for more than idleMs of event time; an append moves the deadline', () => {
    const e = events();
    e.add('a', 1000);
    e.add('b', 2000);
    e.add('a', 3000);
    assert.deepEqual(e.cutAt(7000), [], 'b idle for exactly idleMs: not yet');
    assert.deepEqual(e.cutAt(7001), [['b', 'idle']]);
    assert.deepEqual(e.cutAt(8000), [], 'a was appended to at 3000');
    assert.deepEqual(e.cutAt(8001), [['a', 'idle']]);
    assert.equal(e.live.size, 0);
    assert.equal(e.live.spans, 0);
  });

  it('measures idle time from the latest event time appended, and cuts in the order records were read', () => {
    const e = events();
    e.add('a', 10_000);
    e.add('a', 9000); // an older record of the same trace: its last event time stays 10 000
    e.add('b', 8000); // read after a, earlier in event time: waits behind it
    assert.equal(e.clock.now(), 10_000);
    assert.deepEqual(e.cutAt(14_001), []);
    assert.deepEqual(e.cutAt(15_001), [['a', 'idle'], ['b', 'idle']]);
  });

  it('cuts at root_idle once the root span arrived, leaving traces without one', () => {
    const e = events({ rootIdleMs: 500 });
    e.add('a', 0, { root: true });
    e.add('b', 0);
    e.add('a', 400);
    assert.deepEqual(e.cutAt(500), []);
    assert.deepEqual(e.cutAt(501), [['a', 'root_idle']]);
    assert.equal(e.live.get('b')?.cut, undefined);
  });

  it('cuts at max_duration after the first append even while appends keep coming', () => {
    const e = events({ maxDurationMs: 10_000 });
    const cuts = [];
    for (let at = 0; at <= 10_000; at += 1000) {
      e.add('a', at);
      cuts.push(...e.cutAt(at + 1));
    }
    assert.deepEqual(cuts, [['a', 'max_duration']]);
    assert.equal(e.live.get('a'), undefined);
  });

  it('cuts at max_spans and max_bytes at the append that reaches the bound', () => {
    const e = events({ maxSpans: 5, maxBytes: 100 });
    assert.equal(e.add('a', 0, { spans: 3 }), undefined);
    assert.equal(e.add('a', 1, { spans: 2 }), 'max_spans');
    assert.equal(e.live.get('a'), undefined, 'no longer live');
    assert.equal(e.add('b', 2, { bytes: 60 }), undefined);
    assert.equal(e.add('b', 3, { bytes: 40 }), 'max_bytes');
    assert.equal(e.live.size, 0);
    assert.equal(e.live.spans, 0);
  });

  it('names a cut by the deadline that passed first when several passed before it looked', () => {
    const e = events({ maxDurationMs: 60_000 });
    e.add('a', 0);
    e.add('a', 58_000); // idle deadline 63 000, maximum duration 60 000
    assert.deepEqual(e.cutAt(70_000), [['a', 'max_duration']]);
    e.add('b', 100_000);
    e.add('b', 150_000); // idle deadline 155 000, maximum duration 160 000
    assert.deepEqual(e.cutAt(170_000), [['b', 'idle']]);
  });

  it('cuts the trace appended to longest ago for max_live_spans, and all of them at the end', () => {
    const e = events();
    e.add('a', 0);
    e.add('b', 1);
    e.add('c', 2);
    e.add('a', 3);
    assert.equal(e.live.cutOldest('max_live_spans')?.id, 'b');
    const rest = e.live.cutAll('end_of_input');
    assert.deepEqual(rest.map((t) => [t.id, t.cut, t.value]), [
      ['a', 'end_of_input', ['a@0', 'a@3']],
      ['c', 'end_of_input', ['c@2']],
    ]);
    assert.equal(e.live.cutOldest('max_live_spans'), undefined);
    assert.deepEqual(e.cutAt(1_000_000), [], 'cut traces are not cut again');
  });

  it('marks as partial every cut but idle, root idle and the end of the input', () => {
    const partial = (['idle', 'root_idle', 'max_duration', 'max_spans', 'max_bytes', 'max_live_spans', 'shutdown', 'end_of_input'] as const).filter(isPartialCut);
    assert.deepEqual(partial, ['max_duration', 'max_spans', 'max_bytes', 'max_live_spans', 'shutdown']);
  });

  it('stops the idle clock while the worker is paused, not the maximum duration', () => {
    let wall = 1_000_000;
    const clock = new PausableClock(() => wall);
    const live = new LiveTraces<null>({ ...LIMITS, maxDurationMs: 30_000 }, clock);
    live.append(live.open('a', null), 1, 10);
    live.append(live.open('b', null), 1, 10);
    wall += 1000;
    live.append(live.get('b')!, 1, 10);
    clock.pause();
    wall += 20_000;
    assert.deepEqual(live.cut(), [], 'no idle cut while paused');
    clock.resume();
    wall += 4001;
    assert.deepEqual(live.cut().map((t) => [t.id, t.cut]), [['a', 'idle']], 'the paused time did not count');
    live.append(live.get('b')!, 1, 10);
    wall += 5000;
    assert.deepEqual(live.cut().map((t) => [t.id, t.cut]), [['b', 'max_duration']], 'maximum duration counts wall time, paused or not');
  });

  it('cuts the same traces for the same reasons on wall time as on event time', () => {
    const limits: CutLimits = { idleMs: 5000, maxDurationMs: 20_000, rootIdleMs: 2000, maxSpans: 10, maxBytes: Infinity };
    // [trace, time, spans, root]; cuts are looked for after each.
    const script: Array<[string, number, number, boolean]> = [
      ['a', 0, 1, false], ['b', 500, 1, true], ['a', 1000, 1, false], ['c', 1500, 1, false],
      ['d', 2000, 3, false], ['d', 4000, 3, false], ['d', 6000, 3, false], ['d', 8000, 1, false],
      ['c', 9000, 1, false], ['e', 9500, 1, true], ['f', 10_000, 3, false], ['f', 13_000, 3, false],
      ['f', 16_000, 3, false], ['g', 19_000, 1, false], ['f', 19_500, 1, false], ['f', 21_000, 1, false],
      ['h', 30_000, 1, false], ['k', 31_000, 1, false], ['k', 35_000, 1, false], ['k', 39_000, 1, false],
      ['k', 43_000, 1, false], ['k', 47_000, 1, false], ['k', 51_500, 1, false],
    ];
    const run = (clock: TraceClock, setTime: (ms: number) => void, at: (ms: number) => number | undefined) => {
      const live = new LiveTraces<null>(limits, clock);
      const cuts: string[] = [];
      for (const [id, ms, spans, root] of script) {
        setTime(ms);
        const t = live.get(id) ?? live.open(id, null, 0, 0, at(ms));
        const bound = live.append(t, spans, 10, root, at(ms));
        if (bound !== undefined) cuts.push(`${ms} ${id} ${bound}`);
        for (const c of live.cut()) cuts.push(`${ms} ${c.id} ${c.cut}`);
      }
      return cuts;
    };
    let wall = 0;
    const onWall = run(new PausableClock(() => wall), (ms) => (wall = ms), () => undefined);
    const events = new EventClock();
    const onEvents = run(events, (ms) => events.observe(ms), (ms) => ms);
    assert.deepEqual(onWall, [
      '4000 b root_idle', '8000 d max_spans', '8000 a idle', '8000 c idle', '13000 e root_idle', '16000 c idle',
      '19500 f max_spans', '30000 g idle', '30000 f idle', '39000 h idle', '51500 k max_duration',
    ]);
    assert.deepEqual(onEvents, onWall);
  });
});
