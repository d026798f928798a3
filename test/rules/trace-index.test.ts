/** The trace index: spans found by their ids' words, typed arrays from a reused Scratch. */
import assert from 'node:assert/strict';
import { describe, it } from './node-test.ts';
import { decodeSpans } from '../../src/otlp/index.ts';
import { Scratch, TraceIndex } from '../../src/rules/trace-index.ts';
import type { NumericIds, SpanRecord } from '../../src/rules/span.ts';
import { encodeSpans } from '../helpers/encode-spans.ts';
import { prng } from '../helpers/prng.ts';
import { rule, span } from './trace.ts';
import { createRuleSet } from '../../src/rules/index.ts';

/** Everything the index derives from a trace, as plain values. */
function shape(index: TraceIndex): { spans: string[]; parent: number[]; [field: string]: unknown } {
  return {
    spans: index.spans.map((s) => s.spanId),
    repeated: index.repeated,
    byName: [...index.byName],
    start: [...index.start],
    end: [...index.end],
    parent: [...index.parent],
    treeParent: [...index.treeParent],
    childStart: [...index.childStart],
    childList: [...index.childList],
    tin: [...index.tin],
    tout: [...index.tout],
    preorder: [...index.preorder],
    root: index.root(),
  };
}

/**
 * A trace of n spans with random 8-byte ids (high bits and zero bytes included) and random
 * parents, some absent; some parents are later spans (a cycle, at times) unless `acyclic`.
 */
function randomTrace(rnd: () => number, n: number, acyclic = false): SpanRecord[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const bytes = Buffer.alloc(8);
    for (let k = 0; k < 8; k++) bytes[k] = rnd() < 0.3 ? 0 : Math.floor(rnd() * 256);
    ids.push(bytes.toString('hex'));
  }
  return ids.map((id, i) => {
    const r = rnd();
    const parent = i === 0 ? '' : r < 0.1 ? 'f'.repeat(16) : r < 0.15 && !acyclic ? ids[Math.floor(rnd() * n)]! : ids[Math.floor(rnd() * i)]!;
    return { ...span(`op${Math.floor(rnd() * 5)}`, { start: rnd() * 100 }), spanId: id, parentSpanId: parent };
  });
}

describe('trace index', () => {
  it('finds spans by the words of their ids as by their hex, and by any other id text through a map', () => {
    const rnd = prng(7);
    for (let t = 0; t < 40; t++) {
      const plain = randomTrace(rnd, 1 + Math.floor(rnd() * 150));
      // The same trace through the wire decoder: ids as words.
      const request = encodeSpans(plain);
      const wire = decodeSpans(request, { lazyAttributes: true });
      for (const [i, s] of wire.entries()) {
        const w = s as SpanRecord & NumericIds;
        const bytes = Buffer.from(plain[i]!.spanId, 'hex');
        assert.deepEqual([w.idLo, w.idHi], [bytes.readInt32LE(0), bytes.readInt32LE(4)], 'the words are the id bytes, little-endian');
        if (s.parentSpanId !== '') {
          const p = Buffer.from(s.parentSpanId, 'hex');
          assert.deepEqual([w.parentLo, w.parentHi], [p.readInt32LE(0), p.readInt32LE(4)]);
        }
      }
      // Ids that are not 16 lowercase hex digits: the same links, through the map.
      const texts = plain.map((s) => ({ ...s, spanId: `id-${s.spanId}`, parentSpanId: s.parentSpanId === '' ? '' : `id-${s.parentSpanId}` }));
      const expected = shape(new TraceIndex(plain));
      assert.deepEqual(shape(new TraceIndex(wire)), expected);
      // betrace's own violation spans are left out, wherever they are.
      const k = Math.floor(rnd() * plain.length);
      const own = { ...span('betrace.violation'), spanId: 'ee'.repeat(8) };
      assert.deepEqual(shape(new TraceIndex([...plain.slice(0, k), own, ...plain.slice(k), own])), expected);
      // Wire spans and plain records in one trace: words from the decoder and from hex agree.
      assert.deepEqual(shape(new TraceIndex(wire.map((s, i) => (i % 2 === 0 ? s : plain[i]!)))), expected);
      const other = shape(new TraceIndex(texts));
      assert.deepEqual({ ...other, spans: other.spans.map((id) => id.slice(3)) }, expected);
      assert.ok(expected.parent.some((p) => p >= 0), 'the trace has links to check');
    }
  });

  it('uses the parent links as the tree when they have no cycle, and breaks each cycle once when they do', () => {
    const rnd = prng(5);
    let cyclic = 0;
    for (let t = 0; t < 60; t++) {
      const trace = randomTrace(rnd, 2 + Math.floor(rnd() * 80), true);
      if (t % 3 === 0) {
        // Point a span's parent at one of its descendants (or itself): a cycle.
        const i = Math.floor(rnd() * trace.length);
        const below = trace.filter((s) => s.parentSpanId === trace[i]!.spanId);
        trace[i] = { ...trace[i]!, parentSpanId: (below[0] ?? trace[i]!).spanId };
      }
      const index = new TraceIndex(trace);
      const { parent, treeParent } = index;
      const breaks = [...treeParent.keys()].filter((i) => treeParent[i] !== parent[i]);
      for (const i of breaks) assert.equal(treeParent[i], -1, 'the tree differs from the links only where a cycle is cut');
      // Every walk up the tree ends, within the trace's size.
      for (let i = 0; i < index.size; i++) {
        let steps = 0;
        for (let p = treeParent[i]!; p >= 0; p = treeParent[p]!) assert.ok(++steps <= index.size, 'a walk up the tree ends');
      }
      const hasCycle = trace.some((_, i) => {
        const seen = new Set<number>();
        for (let p = parent[i]!; p >= 0; p = parent[p]!) if (seen.has(p)) return true; else seen.add(p);
        return false;
      });
      assert.equal(breaks.length > 0, hasCycle);
      if (hasCycle) cyclic++;
    }
    assert.ok(cyclic >= 5, `some traces had cycles (${cyclic})`);
  });

  it('has_ancestor: the spans asked about in any order get the answer of a walk up their parents', () => {
    const rnd = prng(9);
    const set = createRuleSet(['op0', 'op1', 'op2'].flatMap((x) => ['op1', 'op3', '*'].map((y) => rule(`trace.every(${x}).has_ancestor(${y})`, { id: `${x}-${y}` }))));
    let violations = 0;
    for (let t = 0; t < 80; t++) {
      // Shuffled: a child is asked about before its parent as often as after.
      const trace = randomTrace(rnd, 1 + Math.floor(rnd() * 120), true)
        .map((s) => [rnd(), s] as const)
        .sort((a, b) => a[0] - b[0])
        .map(([, s]) => s);
      const byId = new Map(trace.map((s) => [s.spanId, s]));
      const result = set.evaluate(trace);
      for (const r of set.rules) {
        const [x, y] = r.definition.id.split('-') as [string, string];
        const expected = trace
          .filter((s) => s.name === x)
          .filter((s) => {
            for (let p = byId.get(s.parentSpanId); p !== undefined; p = byId.get(p.parentSpanId)) if (y === '*' || p.name === y) return false;
            return true;
          })
          .map((s) => s.spanId)
          .sort();
        const v = result.violations.find((w) => w.ruleId === r.definition.id);
        assert.deepEqual(v === undefined ? [] : [...v.witnessSpanIds].sort(), expected, `${r.definition.id} on trace ${t}`);
        if (v !== undefined) violations++;
      }
    }
    assert.ok(violations > 50, `the rules found violations to compare (${violations})`);
  });

  it('preceded_by and followed_by: the answers of a scan of every pair, small groups and large', () => {
    const rnd = prng(13);
    const rules = [
      rule('trace.every(a).preceded_by(b)', { id: 'p' }),
      rule('trace.every(a).preceded_by(b).within(5ms)', { id: 'pw' }),
      rule('trace.every(a).followed_by(b).within(3ms)', { id: 'fw' }),
      rule('trace.every(a).followed_by(b).on(k)', { id: 'fk' }),
    ];
    const set = createRuleSet(rules);
    let violations = 0;
    for (let t = 0; t < 60; t++) {
      // Up to 120 spans of b: groups past the insertion sort's 24 too; times on a coarse grid, so ties.
      const n = 2 + Math.floor(rnd() * 160);
      const trace = Array.from({ length: n }, () => {
        const start = Math.floor(rnd() * 40);
        return span(rnd() < 0.25 ? 'a' : 'b', { start, end: start + Math.floor(rnd() * 6), attrs: { k: Math.floor(rnd() * (t % 2 === 0 ? 2 : 8)) } });
      });
      const ms = (ns: bigint) => Number(ns) / 1e6;
      const expected: Record<string, string[]> = { p: [], pw: [], fw: [], fk: [] };
      for (const x of trace.filter((s) => s.name === 'a')) {
        const ys = trace.filter((y) => y.name === 'b');
        const before = ys.filter((y) => y.endTimeUnixNano <= x.startTimeUnixNano);
        const after = ys.filter((y) => y.startTimeUnixNano >= x.endTimeUnixNano);
        if (before.length === 0) expected.p!.push(x.spanId);
        if (!before.some((y) => ms(x.startTimeUnixNano - y.endTimeUnixNano) <= 5)) expected.pw!.push(x.spanId);
        if (!after.some((y) => ms(y.startTimeUnixNano - x.endTimeUnixNano) <= 3)) expected.fw!.push(x.spanId);
        if (!after.some((y) => y.attributes.k === x.attributes.k)) expected.fk!.push(x.spanId);
      }
      const result = set.evaluate(trace);
      for (const [id, ids] of Object.entries(expected)) {
        const v = result.violations.find((w) => w.ruleId === id);
        // At most 32 witness ids are listed; the count is of them all.
        assert.equal(v?.witnessCount ?? 0, ids.length, `${id} on trace ${t}`);
        for (const w of v?.witnessSpanIds ?? []) assert.ok(ids.includes(w), `${id} on trace ${t}: ${w}`);
        if (v !== undefined) violations++;
      }
    }
    assert.ok(violations > 40, `the rules found violations to compare (${violations})`);
  });

  it('takes ids as text: an upper-case id is another span than its lower-case spelling', () => {
    const spans = [
      { ...span('a'), spanId: 'abcdef0123456789', parentSpanId: '' },
      { ...span('b'), spanId: 'ABCDEF0123456789', parentSpanId: '' },
      { ...span('c'), spanId: '0000000000000003', parentSpanId: 'ABCDEF0123456789' },
      { ...span('d'), spanId: '0000000000000004', parentSpanId: 'abcdef0123456789' },
    ];
    const index = new TraceIndex(spans);
    assert.equal(index.size, 4);
    assert.equal(index.repeated, 0);
    assert.deepEqual([...index.parent], [-1, -1, 1, 0]);
  });

  it('keeps one record of a repeated id, whichever path found the repeat', () => {
    const first = { ...span('x', { start: 0, end: 1 }), spanId: '00000000000000aa' };
    const later = { ...first, endTimeUnixNano: first.endTimeUnixNano + 5n };
    const child = { ...span('y'), spanId: '00000000000000bb', parentSpanId: '00000000000000aa' };
    for (const trace of [
      [first, child, later],
      [later, child, first],
    ]) {
      const index = new TraceIndex(trace);
      assert.equal(index.size, 2);
      assert.equal(index.repeated, 1);
      assert.equal(index.spans.find((s) => s.spanId === first.spanId), later, 'the record with the later end');
      assert.equal(index.parent[index.spans.indexOf(child)], index.spans.indexOf(later));
    }
  });

  it('gives the same index from a reused Scratch as from new arrays, across resets and a growing buffer', () => {
    const rnd = prng(11);
    const scratch = new Scratch();
    // Sizes past the first buffer (64 KiB) make it grow while an index is in use.
    for (const n of [3, 120, 40, 2500, 7, 9000, 60]) {
      const trace = randomTrace(rnd, n);
      scratch.reset();
      const reused = new TraceIndex(trace, scratch);
      const mine = scratch.int32(4).fill(7); // taken after the index's arrays: must not overlap them
      assert.deepEqual(shape(reused), shape(new TraceIndex(trace)));
      assert.deepEqual([...mine], [7, 7, 7, 7]);
    }
  });

  it('hands out aligned arrays that do not overlap, and keeps those handed out before the buffer grows', () => {
    const scratch = new Scratch();
    const a = scratch.uint8(3).fill(1);
    const b = scratch.float64(2).fill(2.5);
    const c = scratch.int32(5).fill(-3);
    assert.equal(b.byteOffset % 8, 0);
    const big = scratch.int32(100_000).fill(9); // 400 KB: a new buffer
    assert.notEqual(big.buffer, a.buffer);
    assert.deepEqual([[...a], [...b], [...c]], [[1, 1, 1], [2.5, 2.5], [-3, -3, -3, -3, -3]]);
    scratch.reset();
    const again = scratch.int32(10);
    assert.equal(again.buffer, big.buffer, 'after a reset the larger buffer is reused');
    assert.equal(again.byteOffset, 0);
  });
});
