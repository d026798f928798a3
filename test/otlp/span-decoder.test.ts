/** The fast wire decoder gives exactly the SpanRecords of the schema-driven one. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExportTraceServiceRequest, decodeSpans, decodeSpansWithSchema } from '../../src/otlp/index.ts';
import { buildWorkload } from '../bench/workload.ts';

describe('span decoder', () => {
  it('matches the schema-driven decoder on the benchmark workload', () => {
    const w = buildWorkload(60, { seed: 9 });
    let spans = 0;
    for (const req of w.requests) {
      const fast = decodeSpans(req);
      assert.deepEqual(fast, decodeSpansWithSchema(req));
      spans += fast.length;
    }
    assert.equal(spans, w.spans);
  });

  it('reads every attribute type, nested values, negative ints and the resource after the scopes', () => {
    const req = ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: [
                  {
                    traceId: Buffer.alloc(16, 1),
                    spanId: Buffer.alloc(8, 2),
                    parentSpanId: Buffer.alloc(8, 3),
                    name: 'all.types',
                    kind: 3,
                    startTimeUnixNano: '18446744073709551615',
                    endTimeUnixNano: '1700000000000000001',
                    status: { code: 2, message: 'boom' },
                    attributes: [
                      { key: 's', value: { stringValue: 'héllo' } },
                      { key: 'b', value: { boolValue: true } },
                      { key: 'i', value: { intValue: -42 } },
                      { key: 'big', value: { intValue: '9007199254740991' } },
                      { key: 'd', value: { doubleValue: 2.5 } },
                      { key: 'a', value: { arrayValue: { values: [{ stringValue: 'x' }, { intValue: 3 }] } } },
                      { key: 'kv', value: { kvlistValue: { values: [{ key: 'inner', value: { boolValue: false } }] } } },
                      { key: 'bytes', value: { bytesValue: Buffer.from([0xca, 0xfe]) } },
                      { key: 'empty', value: {} },
                    ],
                  },
                ],
              },
            ],
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'late-resource' } }] },
          },
        ],
      }),
    ).finish();
    const [span] = decodeSpans(req);
    assert.deepEqual(span, decodeSpansWithSchema(req)[0]);
    assert.equal(span!.attributes.i, -42);
    assert.equal(span!.attributes.big, 9007199254740991);
    assert.deepEqual(span!.attributes.kv, Object.assign(Object.create(null), { inner: false }));
    assert.equal(span!.attributes.bytes, 'cafe');
    assert.equal(span!.resource['service.name'], 'late-resource');
    assert.equal(span!.startTimeUnixNano, 18446744073709551615n);
    assert.equal('empty' in span!.attributes, false);
  });
});
