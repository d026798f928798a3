import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExportTraceServiceRequest, TraceSplitter, decodeSpans, scanPart, splitByTrace, mergeRequests, type TracePart } from '../../src/otlp/index.ts';
import { scanRequest } from '../helpers/otlp-oracle.ts';
import { WireError } from '../../src/otlp/wire.ts';
import { varintBytes } from '../../src/otlp/wire.ts';
import { prng } from '../helpers/prng.ts';
import { buildWorkload } from '../bench/workload.ts';

const traceA = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const traceB = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

/** Span times: `start` ns after T0 (2023-11-14), a plausible time (an earliest start only counts those). */
const T0 = 1_700_000_000_000_000_000n;
function spanObj(trace: string, span: string, name: string, start: string) {
  const at = String(T0 + BigInt(start));
  return { traceId: Buffer.from(trace, 'hex'), spanId: Buffer.from(span, 'hex'), name, startTimeUnixNano: at, endTimeUnixNano: at };
}

function encode(obj: object): Uint8Array {
  return ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject(obj)).finish();
}

describe('splitting a request by trace id', () => {
  const request = encode({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'one' } }] },
        schemaUrl: 'https://opentelemetry.io/schemas/1.21.0',
        scopeSpans: [
          { scope: { name: 's1', version: '1' }, spans: [spanObj(traceA, '0000000000000001', 'a1', '300'), spanObj(traceB, '0000000000000002', 'b1', '100')] },
          { scope: { name: 's2' }, spans: [spanObj(traceA, '0000000000000003', 'a2', '200')] },
        ],
      },
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'two' } }] },
        scopeSpans: [{ scope: { name: 's3' }, spans: [spanObj(traceB, '0000000000000004', 'b2', '50')] }],
      },
    ],
  });

  it('takes a part\'s earliest start from its plausible span times only (not 0, not 1970)', () => {
    const at = (ns: bigint) => String(ns - T0); // spanObj adds T0
    const r = splitByTrace(
      encode({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  spanObj(traceA, '0000000000000001', 'skewed', at(5_000_000n)),
                  spanObj(traceA, '0000000000000002', 'fine', '10'),
                  spanObj(traceB, '0000000000000003', 'zero', at(0n)),
                ],
              },
            ],
          },
        ],
      }),
    );
    assert.ok(r.ok);
    assert.deepEqual(r.traces.map((t) => [t.traceId, t.earliestStartNs]), [[traceA, T0 + 10n], [traceB, 0n]]);
    assert.deepEqual(r.traces.map((t) => scanPart(t.payload, null).untimedSpans), [1, 1]);
  });

  it('counts each part\'s root spans as a scan of the part does, one splitter over many requests', () => {
    const splitter = new TraceSplitter();
    let parts = 0;
    let withRoot = 0;
    let withoutRoot = 0;
    for (const req of buildWorkload(200, { seed: 9, batchSpans: 64 }).requests) {
      const r = splitter.split(req, { maxPartBytes: 4096 });
      assert.ok(r.ok);
      for (const part of r.traces) {
        const roots = scanPart(part.payload, null).rootSpans;
        assert.equal(part.rootSpans, roots, part.traceId);
        parts++;
        if (roots > 0) withRoot++;
        else withoutRoot++;
      }
    }
    assert.ok(parts > 200 && withRoot > 0 && withoutRoot > 0, `${parts} parts, ${withRoot} with a root, ${withoutRoot} without`);
  });

  it('gives one request per trace with its resources and scopes', () => {
    const r = splitByTrace(request);
    assert.ok(r.ok);
    assert.equal(r.acceptedSpans, 4);
    assert.equal(r.rejectedSpans, 0);
    const byTrace = new Map(r.traces.map((t) => [t.traceId, t]));
    const a = byTrace.get(traceA)!;
    const b = byTrace.get(traceB)!;
    assert.equal(a.spanCount, 2);
    assert.equal(a.earliestStartNs, T0 + 200n);
    assert.equal(b.earliestStartNs, T0 + 50n);
    const aSpans = decodeSpans(a.payload);
    assert.deepEqual(aSpans.map((s) => s.name), ['a1', 'a2']);
    assert.ok(aSpans.every((s) => s.resource['service.name'] === 'one'));
    const bSpans = decodeSpans(b.payload);
    assert.deepEqual(bSpans.map((s) => [s.name, s.resource['service.name']]), [['b1', 'one'], ['b2', 'two']]);
    const aObj = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(a.payload)) as {
      resourceSpans: Array<{ schemaUrl: string; scopeSpans: Array<{ scope: { name: string; version?: string } }> }>;
    };
    assert.equal(aObj.resourceSpans[0]!.schemaUrl, 'https://opentelemetry.io/schemas/1.21.0');
    assert.deepEqual(aObj.resourceSpans[0]!.scopeSpans.map((s) => s.scope.name), ['s1', 's2']);
  });

  it('writes each part as the OTLP encoder would (decoded alike), over random requests: resources and scopes kept, order kept, within the limit', () => {
    const rnd = prng(17);
    const pick = (n: number) => Math.floor(rnd() * n);
    const traces = Array.from({ length: 5 }, (_, i) => String(i + 1).repeat(32).slice(0, 32));
    let parts = 0;
    for (let round = 0; round < 60; round++) {
      let id = 1;
      const resourceSpans = Array.from({ length: 1 + pick(4) }, (_, r) => ({
        resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc${r}` } }] },
        ...(rnd() < 0.5 ? { schemaUrl: `https://example.com/${r}` } : {}),
        scopeSpans: Array.from({ length: 1 + pick(3) }, (_, sc) => ({
          scope: { name: `scope${r}.${sc}` },
          spans: Array.from({ length: pick(8) }, () => {
            const n = id++;
            return { ...spanObj(traces[pick(traces.length)]!, n.toString(16).padStart(16, '0'), `n${n}${'x'.repeat(pick(120))}`, String(1000 + pick(1000))), kind: pick(5) };
          }),
        })),
      }));
      const maxPartBytes = rnd() < 0.3 ? undefined : 400 + pick(1600);
      const r = splitByTrace(encode({ resourceSpans }), { maxPartBytes });
      assert.ok(r.ok);
      for (const trace of traces) {
        // What the trace's spans are, in order, with their resource and scope.
        const expected = resourceSpans.flatMap((rs, ri) => rs.scopeSpans.flatMap((ss, si) => ss.spans.filter((sp) => Buffer.from(sp.traceId).toString('hex') === trace).map((sp) => ({ ri, si, sp }))));
        const mine: TracePart[] = r.traces.filter((t) => t.traceId === trace);
        let at = 0;
        for (const part of mine) {
          parts++;
          if (maxPartBytes !== undefined) assert.ok(part.payload.length <= maxPartBytes, `${part.payload.length} > ${maxPartBytes}`);
          const taken = expected.slice(at, at + part.spanCount);
          at += part.spanCount;
          // The reference: those spans grouped into runs of one resource, then one scope.
          const runs: Array<{ ri: number; scopes: Array<{ si: number; spans: object[] }> }> = [];
          for (const { ri, si, sp } of taken) {
            let run = runs[runs.length - 1];
            if (run === undefined || run.ri !== ri) runs.push((run = { ri, scopes: [] }));
            let scope = run.scopes[run.scopes.length - 1];
            if (scope === undefined || scope.si !== si) run.scopes.push((scope = { si, spans: [] }));
            scope.spans.push(sp);
          }
          const reference = encode({
            resourceSpans: runs.map(({ ri, scopes }) => ({
              ...resourceSpans[ri]!,
              scopeSpans: scopes.map(({ si, spans }) => ({ ...resourceSpans[ri]!.scopeSpans[si]!, spans })),
            })),
          });
          // (Compared decoded: the split writes a resource's other fields before its scopes, the encoder by field number.)
          const decoded = (b: Uint8Array) => ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(b), { longs: String, bytes: String });
          assert.deepEqual(decoded(part.payload), decoded(reference), `round ${round}, trace ${trace}`);
          const starts = taken.map((t) => BigInt((t.sp as { startTimeUnixNano: string }).startTimeUnixNano));
          assert.equal(part.earliestStartNs, starts.reduce((a, b) => (b < a ? b : a)));
        }
        assert.equal(at, expected.length, `every span of ${trace} in a part`);
      }
    }
    assert.ok(parts > 300, `${parts} parts`);
  });

  it('writes spans framed with longer tags or lengths than needed in the shortest framing, between spans copied as they came', () => {
    const span = ExportTraceServiceRequest.lookupType('opentelemetry.proto.trace.v1.Span');
    const spanBytes = (n: number, trace = traceA) => Buffer.from(span.encode(span.fromObject(spanObj(trace, n.toString(16).padStart(16, '0'), `s${n}`, String(100 + n)))).finish());
    const field = (tag: number[], body: Buffer) => Buffer.concat([Buffer.from(tag), varintBytes(body.length), body]);
    // Field 2 with a two-byte length (its shortest is one byte), or a two-byte tag.
    const padded = (body: Buffer) => Buffer.concat([Buffer.from([0x12, (body.length & 0x7f) | 0x80, body.length >> 7]), body]);
    const longTag = (body: Buffer) => field([0x92, 0x00], body);
    const plain = (body: Buffer) => field([0x12], body);
    const spans = [plain(spanBytes(1)), padded(spanBytes(2)), plain(spanBytes(3)), plain(spanBytes(4, traceB)), longTag(spanBytes(5)), plain(spanBytes(6)), padded(spanBytes(7))];
    const scope = plain(Buffer.concat(spans));
    const req = field([0x0a], scope);
    const r = splitByTrace(req);
    assert.ok(r.ok);
    assert.equal(r.acceptedSpans, 7);
    const a = r.traces.find((t) => t.traceId === traceA)!;
    assert.deepEqual(decodeSpans(a.payload).map((s) => s.name), ['s1', 's2', 's3', 's5', 's6', 's7']);
    // Written as the encoder writes them: the same bytes as a request of those spans alone.
    const expected = field([0x0a], plain(Buffer.concat([1, 2, 3, 5, 6, 7].map((n) => plain(spanBytes(n))))));
    assert.deepEqual(Buffer.from(a.payload), expected);
  });

  it('splits a request of more spans than it keeps room for between requests, and the next request after it', () => {
    const many = 70_000;
    const spans = Array.from({ length: many }, (_, i) => spanObj([traceA, traceB][i % 2]!, (i + 1).toString(16).padStart(16, '0'), '', String(1000 + i)));
    const big = splitByTrace(encode({ resourceSpans: [{ scopeSpans: [{ spans }] }] }));
    assert.ok(big.ok);
    assert.deepEqual(big.traces.map((t) => [t.traceId, t.spanCount, t.earliestStartNs]), [[traceA, many / 2, T0 + 1000n], [traceB, many / 2, T0 + 1001n]]);
    assert.equal(decodeSpans(big.traces[1]!.payload).at(-1)!.spanId, many.toString(16).padStart(16, '0'));
    const small = splitByTrace(request);
    assert.ok(small.ok);
    assert.deepEqual(small.traces.map((t) => [t.traceId, t.spanCount]), [[traceA, 2], [traceB, 2]]);
  });

  it('keeps fields it does not know, byte for byte', () => {
    // A span with an unknown field 99 (varint) appended.
    const span = ExportTraceServiceRequest.lookupType('opentelemetry.proto.trace.v1.Span');
    const spanBytes = Buffer.concat([
      span.encode(span.fromObject(spanObj(traceA, '0000000000000009', 'future', '1'))).finish(),
      varintBytes((99 << 3) | 0),
      varintBytes(42),
    ]);
    const scope = Buffer.concat([varintBytes((2 << 3) | 2), varintBytes(spanBytes.length), spanBytes]);
    const rs = Buffer.concat([varintBytes((2 << 3) | 2), varintBytes(scope.length), scope]);
    const req = Buffer.concat([varintBytes((1 << 3) | 2), varintBytes(rs.length), rs]);
    const r = splitByTrace(req);
    assert.ok(r.ok);
    assert.deepEqual(Buffer.from(r.traces[0]!.payload), req);
  });

  it('merging split parts gives back every span', () => {
    const r = splitByTrace(request);
    assert.ok(r.ok);
    const merged = decodeSpans(mergeRequests(r.traces.map((t) => t.payload)));
    assert.deepEqual(merged.map((s) => s.name).sort(), ['a1', 'a2', 'b1', 'b2']);
  });

  it('reports malformed messages instead of throwing', () => {
    for (const bad of [[0x0a, 0x10, 0x01], [0x0a, 0x02, 0x12, 0x05], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x0b]]) {
      const r = splitByTrace(Uint8Array.from(bad));
      assert.equal(r.ok, false, `rejects ${Buffer.from(bad).toString('hex')}`);
    }
  });

  it('rejects spans whose ids are missing, short or all zero, and counts them', () => {
    const r = splitByTrace(
      encode({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  spanObj(traceA, '0000000000000001', 'ok', '1'),
                  { spanId: Buffer.from('0000000000000002', 'hex'), name: 'no trace' },
                  spanObj(traceA, '00000000000001', 'short span', '1'),
                  spanObj(traceA, '0000000000000000', 'zero span', '1'),
                ],
              },
            ],
          },
        ],
      }),
    );
    assert.ok(r.ok);
    assert.equal(r.acceptedSpans, 1);
    assert.equal(r.rejectedSpans, 3);
    assert.match(r.errorMessage, /trace id must be 16 bytes/);
    assert.match(r.errorMessage, /span id must be 8 bytes/);
  });
});

describe('splitting a trace over records of bounded size', () => {
  const spans = Array.from({ length: 50 }, (_, i) => ({
    ...spanObj(traceA, (i + 1).toString(16).padStart(16, '0'), `s${i}`, String(1000 + i)),
    attributes: [{ key: 'pad', value: { stringValue: 'x'.repeat(200) } }],
  }));
  const request = encode({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'big' } }] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });

  it('puts a trace that would exceed the limit into several parts, each within it, spans intact', () => {
    const r = splitByTrace(request, { maxPartBytes: 2048 });
    assert.ok(r.ok);
    assert.ok(r.traces.length > 1, 'several parts');
    for (const part of r.traces) {
      assert.ok(part.payload.length <= 2048, `part of ${part.payload.length} bytes`);
      assert.equal(part.traceId, traceA);
    }
    const names = r.traces.flatMap((p) => decodeSpans(p.payload).map((s) => s.name));
    assert.deepEqual(names, spans.map((s) => s.name));
    assert.equal(r.traces.reduce((n, p) => n + p.spanCount, 0), 50);
    assert.ok(r.traces.every((p) => decodeSpans(p.payload).every((s) => s.resource['service.name'] === 'big')));
  });

  it('rejects a single span larger than the limit through partial success', () => {
    const r = splitByTrace(request, { maxPartBytes: 200 });
    assert.ok(r.ok);
    assert.equal(r.acceptedSpans, 0);
    assert.equal(r.rejectedSpans, 50);
    assert.match(r.errorMessage, /larger than the 200-byte record limit/);
  });
});

describe('scanning a request without decoding it', () => {
  it('counts spans, trace ids and parentless spans', () => {
    const req = encode({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                spanObj(traceA, '0000000000000001', 'root', '1'),
                { ...spanObj(traceA, '0000000000000002', 'child', '2'), parentSpanId: Buffer.from('0000000000000001', 'hex') },
                spanObj(traceB, '0000000000000003', 'other root', '3'),
              ],
            },
          ],
        },
      ],
    });
    const scan = scanRequest(req);
    assert.equal(scan.spanCount, 3);
    assert.deepEqual([...scan.traceIds].sort(), [traceA, traceB]);
    assert.equal(scan.rootSpans, 2);
  });

  it('reads span fields with tags and lengths of one byte or more, and throws on a span cut short', () => {
    const attrs = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: { stringValue: 'v'.repeat(i * 40) } })); // lengths past 127: two-byte varints
    const spans = [
      { ...spanObj(traceA, '0000000000000001', 'root', '123456789'), attributes: attrs(6), droppedAttributesCount: 3, events: [{ name: 'e', timeUnixNano: '5' }] },
      { ...spanObj(traceA, '0000000000000002', 'n'.repeat(200), '1'), parentSpanId: Buffer.from('0000000000000001', 'hex'), attributes: attrs(3), flags: 257 }, // flags: field 16, a two-byte tag
    ];
    const req = encode({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
    const scan = scanPart(req, null);
    assert.equal(scan.traceId, traceA);
    assert.equal(scan.multipleTraces, false);
    assert.equal(scan.spanCount, 2);
    assert.equal(scan.rootSpans, 1);
    assert.equal(scan.earliestStartMs, 1700000000000);
    // A span cut at every point, framed with lengths that fit: the scan throws exactly where the
    // schema decoder does (a field running past its span), and otherwise counts the span.
    const field = (tag: number, body: Uint8Array) => Buffer.concat([Buffer.from([tag]), varintBytes(body.length), body]);
    const inner = (b: Uint8Array, tag: number) => {
      assert.equal(b[0], tag);
      let at = 1;
      while (b[at]! >= 0x80) at++;
      return b.subarray(at + 1);
    };
    const span = inner(inner(inner(encode({ resourceSpans: [{ scopeSpans: [{ spans: [spans[1]] }] }] }), 0x0a), 0x12), 0x12);
    let threw = 0;
    for (let cut = 1; cut <= span.length; cut++) {
      const damaged = field(0x0a, field(0x12, field(0x12, span.subarray(0, cut))));
      let schema = true;
      try {
        ExportTraceServiceRequest.decode(damaged);
      } catch {
        schema = false;
      }
      if (schema) assert.equal(scanPart(damaged, null).spanCount, 1, `cut at ${cut}`);
      else {
        assert.throws(() => scanPart(damaged, null), WireError, `cut at ${cut}`);
        threw++;
      }
    }
    assert.ok(threw > span.length / 2, `${threw} of ${span.length} cuts malformed`);
  });
});
