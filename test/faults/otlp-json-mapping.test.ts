/**
 * Fault: OTLP/JSON values are never silently changed. 64-bit integers are decimal
 * strings or numbers (exponent form included) when integral and in range, kept
 * exact beyond 2^53; fractions, NaN, text, negative or out-of-range values and
 * lone surrogates reject their span (partial_success naming the field); the request's
 * own shape wrong is a 400.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

let next = 1;
/** A JSON span (as text, so number literals stay as written) named `name`, with `fields` added. */
function span(name: string, fields = ''): string {
  const id = next++;
  const traceId = `d0d0${id.toString(16).padStart(28, '0')}`;
  const spanId = id.toString(16).padStart(16, '0');
  return `{"traceId":"${traceId}","spanId":"${spanId}","name":"${name}"${fields === '' ? '' : `,${fields}`}}`;
}

const body = (spans: string[]) => `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json"}}]},"scopeSpans":[{"spans":[${spans.join(',')}]}]}]}`;

describe('OTLP/JSON by the protobuf JSON mapping', () => {
  let sink: OtlpSink;
  let betrace: TestPipeline;
  before(async () => {
    sink = await startOtlpSink();
    betrace = await startTestPipeline({ downstream: { endpoint: sink.url, batch_timeout: '10ms' } });
  });
  after(async () => {
    await betrace.stop();
    await sink.close();
  });

  const post = async (text: string) => {
    const res = await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: text });
    return { status: res.status, body: (await res.json()) as { partialSuccess?: { rejectedSpans: number; errorMessage: string }; code?: number; message?: string } };
  };
  const arrived = (name: string) => sink.waitFor((s) => s.some((x) => x.name === name), 10_000, name).then(() => sink.spans.find((x) => x.name === name)!);

  const refused: Array<[what: string, fields: string, message: RegExp]> = [
    ['startTimeUnixNano "abc"', '"startTimeUnixNano":"abc"', /spans\[1\]\.startTimeUnixNano: "abc" is not an integer/],
    ['startTimeUnixNano "-5"', '"startTimeUnixNano":"-5"', /spans\[1\]\.startTimeUnixNano: "-5" is out of range for an unsigned 64-bit integer/],
    ['startTimeUnixNano "1e30"', '"startTimeUnixNano":"1e30"', /spans\[1\]\.startTimeUnixNano: 1e30 is out of range/],
    ['endTimeUnixNano 1.5', '"endTimeUnixNano":1.5', /spans\[1\]\.endTimeUnixNano: 1\.5 is not an integer/],
    ['startTimeUnixNano 2^64', '"startTimeUnixNano":18446744073709551616', /startTimeUnixNano: 18446744073709551616 is out of range/],
    ['event timeUnixNano NaN', '"events":[{"timeUnixNano":"NaN","name":"e"}]', /spans\[1\]\.events\[0\]\.timeUnixNano: "NaN" is not an integer/],
    ['intValue "NaN"', '"attributes":[{"key":"k","value":{"intValue":"NaN"}}]', /spans\[1\]\.attributes\[0\]\.value\.intValue: "NaN" is not an integer/],
    ['intValue 2^70', '"attributes":[{"key":"k","value":{"intValue":1180591620717411303424}}]', /attributes\[0\]\.value\.intValue: 1180591620717411303424 is out of range/],
    ['intValue 2^63', '"attributes":[{"key":"k","value":{"intValue":"9223372036854775808"}}]', /intValue: "9223372036854775808" is out of range for a 64-bit integer/],
    ['intValue Infinity', '"attributes":[{"key":"k","value":{"intValue":"Infinity"}}]', /intValue: "Infinity" is not an integer/],
    ['droppedAttributesCount -1', '"droppedAttributesCount":-1', /droppedAttributesCount: -1 is out of range for an unsigned 32-bit integer/],
    ['a lone surrogate in the name', '"kind":1,"status":{"message":"\\ud800"}', /spans\[1\]\.status\.message: holds a lone surrogate/],
    ['a lone surrogate in an attribute key', '"attributes":[{"key":"a\\udc00","value":{"stringValue":"v"}}]', /spans\[1\]\.attributes\[0\]\.key: holds a lone surrogate/],
    ['a name that is a number', '"traceState":5', /spans\[1\]\.traceState: must be a string/],
  ];
  for (const [what, fields, message] of refused) {
    it(`${what}: that span rejected with the field named, the other forwarded`, async () => {
      const ok = `ok.${next}`;
      const { status, body: answer } = await post(body([span(ok), span(`bad.${next}`, fields)]));
      assert.equal(status, 200);
      assert.equal(answer.partialSuccess?.rejectedSpans, 1);
      assert.match(answer.partialSuccess.errorMessage, message);
      assert.match(answer.partialSuccess.errorMessage, /^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]\./);
      await arrived(ok);
    });
  }

  it('keeps 64-bit integers exact: 1700000000123456789 as a number, exponent forms, the largest uint64 and int64 extremes', async () => {
    const spans = [
      span('exact.number', '"startTimeUnixNano":1700000000123456789,"endTimeUnixNano":"1700000000123456799"'),
      span('exact.exponent', '"startTimeUnixNano":"1e3","endTimeUnixNano":1.700000000123456789e18'),
      span('exact.max', '"startTimeUnixNano":18446744073709551615,"attributes":[{"key":"min","value":{"intValue":-9223372036854775808}},{"key":"max","value":{"intValue":"9223372036854775807"}},{"key":"e","value":{"intValue":1e3}}]'),
    ];
    const { status, body: answer } = await post(body(spans));
    assert.equal(status, 200);
    assert.equal(answer.partialSuccess, undefined, JSON.stringify(answer));
    const n = await arrived('exact.number');
    assert.equal(n.span.startTimeUnixNano, '1700000000123456789');
    assert.equal(n.span.endTimeUnixNano, '1700000000123456799');
    const e = await arrived('exact.exponent');
    assert.equal(e.span.startTimeUnixNano, '1000');
    assert.equal(e.span.endTimeUnixNano, '1700000000123456789');
    const m = await arrived('exact.max');
    assert.equal(m.span.startTimeUnixNano, '18446744073709551615');
    assert.deepEqual(m.attributes, { min: '-9223372036854775808', max: '9223372036854775807', e: '1000' });
  });

  it('a fault in the resource rejects its spans; a request of the wrong shape is a 400', async () => {
    const text = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"\\ud83d"}}]},"scopeSpans":[{"spans":[${span('res.1')},${span('res.2')}]}]},{"scopeSpans":[{"spans":[${span('res.ok')}]}]}]}`;
    const { status, body: answer } = await post(text);
    assert.equal(status, 200);
    assert.equal(answer.partialSuccess?.rejectedSpans, 2);
    assert.match(answer.partialSuccess.errorMessage, /^resourceSpans\[0\]\.resource\.attributes\[0\]\.value\.stringValue: holds a lone surrogate/);
    await arrived('res.ok');
    const shape = await post('{"resourceSpans":[{"scopeSpans":{"spans":[]}}]}');
    assert.equal(shape.status, 400);
    assert.match(shape.body.message!, /resourceSpans\[0\]\.scopeSpans must be an array/);
  });
});
