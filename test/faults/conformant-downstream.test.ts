/**
 * Acceptance: what betrace acknowledges, a Go-decoding downstream (a real
 * OpenTelemetry Collector, exporting on to a test sink) takes. 120 valid spans sent
 * around three poison requests all arrive; of 5,000 byte-level mutations of valid
 * requests, every span betrace acknowledged arrives, and no valid span is lost.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ExportTraceServiceRequest, ExportTraceServiceResponse } from '../../src/otlp/index.ts';
import { rawTraceClient, type RawTraceClient } from '../helpers/grpc-client.ts';
import { startOtelCollector, type OtelCollector } from '../helpers/otelcol.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';
import { prng } from '../helpers/prng.ts';
import { WireCursor, varintBytes } from '../../src/otlp/wire.ts';

const hex = (n: number) => randomBytes(n).toString('hex');
/** `n` bytes from `rnd` (the seeded PRNG for mutations: the same run every time). */
const bytes = (n: number, rnd: () => number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));

function spanObject(name: string, rnd: () => number = Math.random) {
  const start = 1_700_000_000_000_000_000n + BigInt(Math.floor(rnd() * 1e9));
  const attributes: Array<{ key: string; value: Record<string, unknown> }> = [
    { key: 'http.route', value: { stringValue: '/api/v1/orders/{id}' } },
    { key: 'customer', value: { stringValue: rnd() < 0.3 ? 'Zoë Ångström 🚀' : 'plain' } },
    { key: 'attempt', value: { intValue: Math.floor(rnd() * 1000) } },
    { key: 'ratio', value: { doubleValue: rnd() } },
    { key: 'tags', value: { arrayValue: { values: [{ stringValue: 'a' }, { boolValue: true }] } } },
  ];
  return {
    traceId: bytes(16, rnd),
    spanId: bytes(8, rnd),
    parentSpanId: rnd() < 0.5 ? bytes(8, rnd) : Buffer.alloc(0),
    name,
    kind: 1 + Math.floor(rnd() * 4),
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: (start + 1000n).toString(),
    attributes,
    events: rnd() < 0.3 ? [{ timeUnixNano: start.toString(), name: 'retry', attributes: [{ key: 'why', value: { stringValue: 'timeout' } }] }] : [],
    status: { code: rnd() < 0.1 ? 2 : 0, message: rnd() < 0.1 ? 'failed: déjà vu' : '' },
  };
}

function encode(resourceSpans: object[]): Buffer {
  return Buffer.from(ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject({ resourceSpans })).finish());
}

function request(names: string[], service: string, rnd: () => number = Math.random): Buffer {
  return encode([
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ scope: { name: 'conformance', version: '1.0' }, spans: names.map((n) => spanObject(n, rnd)) }],
    },
  ]);
}

function rejectedSpans(res: Buffer | undefined): number {
  if (res === undefined || res.length === 0) return 0;
  const o = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(res), { longs: Number }) as { partialSuccess?: { rejectedSpans?: number } };
  return o.partialSuccess?.rejectedSpans ?? 0;
}

/**
 * Spans in a request, counted from its framing (resource_spans, scope_spans, spans:
 * field 2 or 1, length-delimited), not decoded: a request acknowledged in part may
 * hold spans a decoder refuses (they were rejected).
 */
function spanCount(bytes: Uint8Array): number {
  const fields = (start: number, end: number, wanted: number, each: (s: number, e: number) => void) => {
    const reader = new WireCursor(bytes, start);
    while (reader.pos < end) {
      const tag = reader.varint(end);
      if (tag === ((wanted << 3) | 2)) {
        const s = reader.len(end);
        const e = reader.pos;
        each(s, e);
        reader.pos = e;
      } else reader.skip(tag & 7, end);
    }
  };
  let n = 0;
  fields(0, bytes.length, 1, (rs, rsEnd) => fields(rs, rsEnd, 2, (ss, ssEnd) => fields(ss, ssEnd, 2, () => n++)));
  return n;
}

/** Runs `jobs` with at most `limit` at a time. */
async function pool<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(jobs.length);
  let nextJob = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (nextJob < jobs.length) {
        const i = nextJob++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

describe('a Go-decoding downstream takes everything betrace acknowledges', () => {
  let sink: OtlpSink;
  let collector: OtelCollector;
  let betrace: TestPipeline;
  let client: RawTraceClient;
  before(async () => {
    sink = await startOtlpSink();
    collector = await startOtelCollector({ exportTo: sink.url });
    // Batches merged over 200 ms: a poison request would share a batch with valid ones.
    betrace = await startTestPipeline({ downstream: { endpoint: collector.url, batch_timeout: '200ms' } });
    client = rawTraceClient(betrace.grpcUrl);
  });
  after(async () => {
    client.close();
    await betrace.stop();
    await collector.close();
    await sink.close();
  });

  it('120 valid spans sent around three poison requests (invalid UTF-8, field 0 in a ResourceSpans, a JSON lone surrogate): 120 received', async () => {
    const valid = Array.from({ length: 6 }, (_, r) => request(Array.from({ length: 20 }, (_, i) => `valid-${r}-${i}`), `valid-${r}`));
    const utf8 = request(['poison.XBAD'], 'poison-utf8');
    utf8[utf8.indexOf('XBAD')] = 0xc3; // a lead byte without its continuation
    const field0 = request(['poison.field0'], 'poison-field0');
    const top = new WireCursor(field0);
    assert.equal(top.varint(field0.length), 0x0a);
    const rsStart = top.len(field0.length);
    const rsEnd = top.pos;
    const rs = Buffer.concat([field0.subarray(rsStart, rsEnd), Buffer.from([0x02, 0x01, 0x41])]); // field 0, length-delimited, 1 byte
    const field0Rs = Buffer.concat([Buffer.from([0x0a]), varintBytes(rs.length), rs]);
    const json = JSON.stringify({
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: hex(16), spanId: hex(8), name: 'poison.json', startTimeUnixNano: '1700000000000000000' }] }] }],
    }).replace('poison.json', 'poison.json\\ud800');
    const sends: Array<Promise<unknown>> = [];
    for (let r = 0; r < 6; r++) {
      sends.push(client.export(valid[r]!).then(({ err }) => assert.equal(err, null)));
      if (r === 1) sends.push(client.export(utf8));
      if (r === 3) sends.push(client.export(field0Rs));
      if (r === 4) sends.push(fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json }).then((res) => res.arrayBuffer()));
    }
    await Promise.all(sends);
    const validArrived = () => sink.spans.filter((s) => s.name.startsWith('valid-')).length;
    await sink.waitFor(() => validArrived() >= 120, 15_000, '120 valid spans').catch(() => undefined);
    assert.equal(validArrived(), 120, `valid spans received (Collector output: ${collector.output().slice(-1500)})`);
    assert.equal(sink.spans.filter((s) => s.name.startsWith('poison')).length, 0, 'no poison span forwarded');
  });

  it('5,000 mutations of valid requests: every acknowledged span reaches the Collector\'s downstream; 0 valid spans lost', async (t) => {
    const rnd = prng(21);
    const before = sink.spans.length;
    const jobs: Array<() => Promise<{ acked: number; refused: boolean; control: number }>> = [];
    let controlSpans = 0;
    for (let i = 0; i < 5000; i++) {
      const base = request(
        Array.from({ length: 1 + Math.floor(rnd() * 4) }, (_, k) => `mut-${i}-${k}`),
        `mut-${i % 7}`,
        rnd,
      );
      let bytes = Buffer.from(base);
      for (let m = 1 + Math.floor(rnd() * 3); m > 0 && bytes.length > 1; m--) {
        const at = Math.floor(rnd() * bytes.length);
        switch (Math.floor(rnd() * 4)) {
          case 0: // flip: a random byte value, or one bit
            bytes[at] = rnd() < 0.5 ? Math.floor(rnd() * 256) : bytes[at]! ^ (1 << Math.floor(rnd() * 8));
            break;
          case 1: // insert
            bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([Math.floor(rnd() * 256)]), bytes.subarray(at)]);
            break;
          case 2: // delete
            bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
            break;
          default: // truncate
            bytes = bytes.subarray(0, at);
        }
      }
      const mutated = bytes;
      jobs.push(async () => {
        const { err, res } = await client.export(mutated);
        if (err !== null) {
          assert.equal(err.code, 3, `a mutation is refused as INVALID_ARGUMENT, not ${err.code} ${err.details}`);
          return { acked: 0, refused: true, control: 0 };
        }
        return { acked: spanCount(mutated) - rejectedSpans(res), refused: false, control: 0 };
      });
      if (i % 50 === 0) {
        // A valid request among the mutations: its spans must all arrive.
        const names = Array.from({ length: 5 }, (_, k) => `control-${i}-${k}`);
        controlSpans += names.length;
        const control = request(names, 'control', rnd);
        jobs.push(async () => {
          const { err, res } = await client.export(control);
          assert.equal(err, null);
          assert.equal(rejectedSpans(res), 0);
          return { acked: 5, refused: false, control: 5 };
        });
      }
    }
    const results = await pool(jobs, 64);
    const acked = results.reduce((n, r) => n + r.acked, 0);
    const refused = results.filter((r) => r.refused).length;
    const partly = results.filter((r) => !r.refused).length;
    assert.ok(refused > 500 && partly > 300, `both outcomes seen (${refused} refused, ${partly} acknowledged)`);
    const arrived = () => sink.spans.length - before;
    await sink.waitFor(() => arrived() >= acked, 20_000, `${acked} acknowledged spans`).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    const controlsArrived = sink.spans.slice(before).filter((s) => s.name.startsWith('control-')).length;
    assert.equal(controlsArrived, controlSpans, `every valid span arrived (${betrace.logs.filter((l) => /export failed/.test(l)).slice(-3).join('')})`);
    assert.equal(arrived(), acked, `acknowledged spans == spans the Collector passed on (${refused} requests refused)`);
    t.diagnostic(`${refused} requests refused, ${partly} acknowledged (whole or in part), ${acked} spans acknowledged and received, ${controlsArrived} of ${controlSpans} valid spans`);
  });
});
