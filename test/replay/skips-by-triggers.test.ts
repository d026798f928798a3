/**
 * The replay engine on its own: skipping traces without triggers never changes
 * a verdict; the byte-level scan agrees with a full decode; memory is bounded
 * (traces evaluated early are marked partial); late records are counted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { decodeSpans, decodeSpans as decodeSpansFast, ExportTraceServiceRequest, mergeRequests } from '../../src/otlp/index.ts';
import { decodeSpansWithSchema } from '../helpers/otlp-oracle.ts';
import { createReplayEngine, scanPart, NameMatcher, type ReplayViolation } from '../../src/replay/index.ts';
import { compileRule, loadRuleFile, type CompiledRule } from '../../src/rules/index.ts';
import { BASE_MS, DAY_MS, noiseTrace, recordsOf, shopTrace, type Breaks, type SimRecord, type SimTrace } from './history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const BREAKS: Breaks[] = ['payment-idempotency', 'admin-audit-log', 'shipment-requires-payment', 'cross-tenant-isolation'];

function history(n: number): SimTrace[] {
  const traces: SimTrace[] = [];
  for (let i = 0; i < n; i++) {
    const at = BASE_MS - DAY_MS + i * 5000;
    if (i % 4 === 0) traces.push(noiseTrace(`n${i}`, at));
    else traces.push(shopTrace(`s${i}`, at, i % 7 === 0 ? BREAKS[i % BREAKS.length] : undefined, { admin: i % 5 === 0 }));
  }
  return traces;
}

function replay(rules: readonly CompiledRule[], records: readonly SimRecord[], options: { skip?: boolean; maxLiveSpans?: number; timestamps?: boolean } = {}) {
  const engine = createReplayEngine({
    rules,
    fromMs: BASE_MS - 2 * DAY_MS,
    toMs: BASE_MS,
    traceMaxDurationMs: 60_000,
    now: () => 0,
    ...(options.skip === undefined ? {} : { skipByTriggers: options.skip }),
    ...(options.maxLiveSpans === undefined ? {} : { maxLiveSpans: options.maxLiveSpans }),
  });
  const lane = engine.lane();
  for (const r of records) lane.addRecord(r.value, options.timestamps === false ? undefined : r.timestampMs);
  engine.finish();
  return { engine, violations: engine.violations() };
}

const rule = (id: string, condition: string): CompiledRule => {
  const r = compileRule({ id, name: id, description: '', severity: 'high', enabled: true, tags: [], condition });
  assert.ok(r.ok, JSON.stringify(r));
  return r.rule;
};

const key = (vs: readonly ReplayViolation[]) => vs.map((v) => JSON.stringify(v));

describe('replay engine', () => {
  const traces = history(400);
  const records = recordsOf(traces);

  it('trigger-skipping-never-changes-the-result', async () => {
    const { rules } = await loadRuleFile(RULES);
    const sets: CompiledRule[][] = [rules, ...rules.map((r) => [r]), [rule('health-ok', 'when { trace.has("GET /health") } never { trace.has(cache.get).where(miss == true) }')]];
    for (const set of sets) {
      const skipped = replay(set, records);
      const full = replay(set, records, { skip: false });
      assert.ok(skipped.engine.skipsByTriggers);
      assert.ok(skipped.engine.counters.tracesSkipped > 0, `${set.map((r) => r.definition.id).join(',')}: some traces skipped`);
      assert.equal(full.engine.counters.tracesSkipped, 0);
      assert.deepEqual(key(skipped.violations), key(full.violations));
      assert.equal(skipped.engine.counters.tracesScanned, full.engine.counters.tracesScanned);
    }
    const all = replay(rules, records);
    assert.equal(all.violations.length, traces.filter((t) => t.breaks !== undefined).length);
  });

  it('never-skips-when-a-rule-fails-without-its-triggers', () => {
    const mustHaveRoot = rule('has-request', 'trace.has(http.request)');
    const { engine, violations } = replay([mustHaveRoot], records);
    assert.equal(engine.skipsByTriggers, false);
    assert.equal(engine.counters.tracesSkipped, 0);
    assert.equal(violations.length, traces.filter((t) => t.spans[0]!.name !== 'http.request').length);
    const always = rule('small', 'trace.span_count < 100');
    assert.equal(replay([always], records).engine.skipsByTriggers, false);
  });

  it('scan-agrees-with-a-full-decode', () => {
    const matcher = new NameMatcher(['payment.charge', 'audit.log']);
    for (const r of records.slice(0, 200)) {
      const spans = decodeSpans(r.value);
      const scan = scanPart(r.value, matcher);
      assert.equal(scan.spanCount, spans.length);
      assert.equal(scan.traceId, spans[0]!.traceId);
      assert.equal(scan.multipleTraces, false);
      assert.equal(scan.earliestStartMs, Number(spans.reduce((m, s) => (s.startTimeUnixNano < m ? s.startTimeUnixNano : m), spans[0]!.startTimeUnixNano) / 1_000_000n));
      assert.equal(scan.triggered, spans.some((s) => s.name === 'payment.charge' || s.name === 'audit.log'));
    }
    const merged = mergeRequests(records.slice(0, 10).map((r) => r.value));
    assert.equal(scanPart(merged, null).multipleTraces, true);
    assert.throws(() => scanPart(Buffer.from([0x0a, 0x05, 0x12]), null));
  });

  it('decodes-spans-as-decodeSpans-does', () => {
    for (const r of records.slice(0, 300)) assert.deepStrictEqual(decodeSpansFast(r.value), decodeSpansWithSchema(r.value));
    const id = (n: number, len: number) => Buffer.alloc(len, n);
    const odd = Buffer.from(
      ExportTraceServiceRequest.encode(
        ExportTraceServiceRequest.fromObject({
          resourceSpans: [
            {
              resource: { attributes: [{ key: 'service.name', value: { stringValue: 'odd' } }, { key: 'k8s', value: { kvlistValue: { values: [{ key: 'ns', value: { stringValue: 'x' } }] } } }] },
              scopeSpans: [
                {
                  scope: { name: 's' },
                  spans: [
                    {
                      traceId: id(1, 16), spanId: id(2, 8), parentSpanId: id(3, 8), name: 'ünï', kind: 3,
                      startTimeUnixNano: '1748736000123456789', endTimeUnixNano: '18446744073709551615',
                      attributes: [
                        { key: 'neg', value: { intValue: -42 } },
                        { key: 'big', value: { intValue: '9007199254740993' } },
                        { key: 'min', value: { intValue: '-9223372036854775808' } },
                        { key: 'd', value: { doubleValue: -0.5 } },
                        { key: 'b', value: { boolValue: false } },
                        { key: 'empty', value: {} },
                        { key: 'none' },
                        { key: 'bytes', value: { bytesValue: Buffer.from([0xde, 0xad]) } },
                        { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'a' }, {}, { intValue: 7 }, { arrayValue: { values: [{ boolValue: true }] } }] } } },
                        { key: 'kv', value: { kvlistValue: { values: [{ key: 'x', value: { doubleValue: 1.5 } }, { key: 'x', value: { stringValue: 'later' } }] } } },
                        { key: 'neg', value: { stringValue: 'dup wins' } },
                        { key: '', value: { stringValue: 'no key' } },
                      ],
                      events: [{ name: 'ev', timeUnixNano: '1' }],
                      status: { code: 2, message: 'boom' },
                    },
                    { traceId: id(1, 16), spanId: id(4, 8), parentSpanId: id(5, 4), name: '' },
                    { traceId: id(1, 15), spanId: id(6, 8), name: 'bad trace id' },
                  ],
                },
              ],
            },
            { scopeSpans: [{ spans: [{ traceId: id(9, 16), spanId: id(9, 8), name: 'no resource' }] }] },
          ],
        }),
      ).finish(),
    );
    assert.deepStrictEqual(decodeSpansFast(odd), decodeSpansWithSchema(odd));
    assert.equal(decodeSpansFast(odd).length, 3);
    const noSpanId = Buffer.from(ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: id(1, 16), name: 'no span id' }] }] }] })).finish());
    assert.deepEqual(decodeSpansFast(noSpanId), []);
    assert.deepEqual(decodeSpansWithSchema(noSpanId), []);
    assert.throws(() => decodeSpansFast(Buffer.from([0x0a, 0x05, 0x12])));
  });

  it('assembles-traces-from-requests-holding-many-traces', async () => {
    const { rules } = await loadRuleFile(RULES);
    const merged: SimRecord[] = [];
    for (let i = 0; i < records.length; i += 16) {
      const chunk = records.slice(i, i + 16);
      merged.push({ key: '', value: mergeRequests(chunk.map((r) => r.value)) as Buffer, timestampMs: 0, arrivalMs: 0 });
    }
    const one = replay(rules, records);
    const many = replay(rules, merged, { timestamps: false });
    assert.deepEqual(key(many.violations), key(one.violations));
  });

  it('bounds-live-spans-and-marks-early-evaluations-partial', async () => {
    const { rules } = await loadRuleFile(RULES);
    // Records of all traces interleaved: the first half of every trace, then the rest.
    const first = records.filter((_r, i) => i % 2 === 0);
    const second = records.filter((_r, i) => i % 2 === 1);
    const { engine, violations } = replay(rules, [...first, ...second].map((r) => ({ ...r, timestampMs: BASE_MS - DAY_MS })), { maxLiveSpans: 200 });
    assert.ok(engine.counters.tracesPartial > 0);
    assert.ok(engine.counters.lateRecords > 0, 'records of traces evaluated early are counted, not evaluated alone');
    assert.ok(engine.liveSpans <= 200);
    assert.ok(violations.every((v) => v.partial === engine.counters.tracesPartial > 0 || !v.partial));
    assert.ok(violations.some((v) => v.partial));
  });
});
