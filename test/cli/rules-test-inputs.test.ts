/**
 * `betrace rules test` as a CI gate, spawned as a user runs it: the same spans
 * written as OTLP/JSON (hex ids), as the proto3 JSON mapping writes them (base64
 * ids: protojson, Python's MessageToJson) and as protobuf give the same
 * violation, stderr saying which form each file was read as; input that is not
 * OTLP, holds no span or is cut short is exit 1 with the file and the reason,
 * never `0 violations`. (Mixed and invalid ids, and replay over the same files:
 * test/otlp/trace-files.test.ts.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import type { SpanRecord } from '../../src/rules/index.ts';
import { runBetrace } from '../helpers/cli.ts';
import { encodeSpans } from '../helpers/encode-spans.ts';

const RULES = `rules:
  - id: shipment-requires-payment
    severity: critical
    condition: trace.every(shipment.initiate).preceded_by(payment.confirm)
`;

const BAD_TRACE = '0af7651916cd43dd8448eb211c80319c';
const GOOD_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const start = 1_700_000_000_000_000_000n;
const resource = { 'service.name': 'shop' };
const span = (traceId: string, spanId: string, name: string, offsetMs: number, parentSpanId = ''): SpanRecord => ({
  traceId,
  spanId,
  parentSpanId,
  name,
  kind: 1,
  startTimeUnixNano: start + BigInt(offsetMs) * 1_000_000n,
  endTimeUnixNano: start + BigInt(offsetMs + 1) * 1_000_000n,
  statusCode: 0,
  statusMessage: '',
  attributes: {},
  resource,
});
const SPANS = [
  span(BAD_TRACE, 'b7ad6b7169203331', 'shipment.initiate', 0),
  span(GOOD_TRACE, 'c7ad6b7169203331', 'payment.confirm', 0),
  span(GOOD_TRACE, 'd7ad6b7169203331', 'shipment.initiate', 5, 'c7ad6b7169203331'),
];
const PROTOBUF = Buffer.from(encodeSpans(SPANS));

/** The request in the proto3 JSON mapping, as protojson and MessageToJson write it: bytes as base64, 64-bit integers as strings, enums by name. */
function proto3Json(): Record<string, unknown> {
  return ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(PROTOBUF), { bytes: String, longs: String, enums: String });
}

/** The same request in OTLP/JSON: ids as hex. */
function otlpJson(): Record<string, unknown> {
  const hex = (b64: unknown) => Buffer.from(String(b64), 'base64').toString('hex');
  const request = proto3Json() as { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] };
  for (const rs of request.resourceSpans)
    for (const ss of rs.scopeSpans)
      for (const s of ss.spans) for (const k of ['traceId', 'spanId', 'parentSpanId']) if (typeof s[k] === 'string') s[k] = hex(s[k]);
  return request;
}

describe('rules test on trace files', () => {
  let dir = '';
  let rules = '';
  const write = (name: string, content: string | Buffer) => {
    writeFileSync(join(dir, name), content);
    return name;
  };
  const rulesTest = (traces: string) => runBetrace(['rules', 'test', '--rules', rules, '--traces', traces, '--fail-on-violation'], { cwd: dir });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'betrace-rules-test-'));
    rules = write('rules.yaml', RULES);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the same violation in hex, base64 and protobuf files, saying which form each is', async () => {
    const base64 = proto3Json();
    assert.match(JSON.stringify(base64), /"traceId":"CvdlGRbNQ92ESOshHIAxnA=="/, 'the fixture has base64 ids');
    const [hex, b64, pb] = await Promise.all([
      // OTLP/JSON as the Collector's file exporter writes it: a request per line.
      rulesTest(write('hex.json', `${JSON.stringify(otlpJson())}\n${JSON.stringify({ resourceSpans: [] })}\n`)),
      rulesTest(write('base64.json', JSON.stringify(base64, null, 2))),
      rulesTest(write('traces.pb', PROTOBUF)),
    ]);
    const violation = new RegExp(`^${BAD_TRACE} shipment-requires-payment critical .* witnesses=1 \\[b7ad6b7169203331\\] id=[0-9a-f]{32}\\n1 violation in 2 traces \\(1 rule\\)\\n$`);
    for (const r of [hex, b64, pb]) {
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stdout, violation);
    }
    assert.equal(hex.stdout, b64.stdout);
    assert.equal(pb.stdout, b64.stdout);
    assert.equal(hex.stderr, 'hex.json: OTLP JSON, 2 requests, 3 spans; ids in the OTLP/JSON (hex) form\n');
    assert.equal(b64.stderr, 'base64.json: OTLP JSON, 1 request, 3 spans; ids in the proto3 JSON (base64) form\n');
    assert.equal(pb.stderr, 'traces.pb: OTLP protobuf, 1 request, 3 spans\n');
  });

  it('exits 1 naming the file and the reason on input that is not OTLP or holds no span', async () => {
    const cases: Array<[name: string, content: string, reason: RegExp]> = [
      ['not-otlp.json', '{"not":"otlp"}', /^betrace rules test: not-otlp\.json: not OTLP: no "resourceSpans" \(keys "not"\); expected an OTLP ExportTraceServiceRequest \(or TracesData\) with "resourceSpans", in JSON \(one per file or one per line\) or protobuf$/],
      ['empty.json', '{"resourceSpans":[]}', /^betrace rules test: empty\.json: holds no spans \(read as OTLP JSON: 1 request without spans\)$/],
      ['truncated.json', JSON.stringify(otlpJson(), null, 2).slice(0, 200), /^betrace rules test: truncated\.json: invalid JSON: /],
    ];
    const results = await Promise.all(cases.map(([name, content]) => rulesTest(write(name, content))));
    cases.forEach(([name, , reason], i) => {
      const r = results[i]!;
      assert.equal(r.status, 1, `${name}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '', name);
      assert.match(r.stderr.trimEnd(), reason, name);
    });
  });
});
