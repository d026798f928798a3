/** The fast wire decoder gives exactly the SpanRecords of the schema-driven one. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AttributeKeyFilter, ExportTraceServiceRequest, SpanDecoder, decodeSpans, type DecodeLimits } from '../../src/otlp/index.ts';
import { decodeSpansWithSchema } from '../helpers/otlp-oracle.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { attributeKeys, createRuleSet, parseRuleFile } from '../../src/rules/index.ts';
import { TraceIndex } from '../../src/rules/trace-index.ts';
import type { AttributeLookup, SpanRecord } from '../../src/rules/span.ts';
import { buildWorkload } from '../bench/workload.ts';
import { hexWords } from '../../src/otlp/hex.ts';
import { varintBytes } from '../../src/otlp/wire.ts';
import { randomBytes } from 'node:crypto';

describe('span decoder', () => {
  it('hexes 8-byte ids from their words as Buffer#toString does, every byte value included', () => {
    const hex = (b: Buffer, s: number) => hexWords(b.readInt32LE(s), b.readInt32LE(s + 4));
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (let s = 0; s + 8 <= every.length; s++) assert.equal(hex(every, s), every.toString('hex', s, s + 8));
    const random = randomBytes(8 * 1000 + 3);
    for (let s = 3; s + 8 <= random.length; s += 8) assert.equal(hex(random, s), random.toString('hex', s, s + 8));
  });

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

  it('gives the trace index the same times from split 32-bit halves as from BigInts', () => {
    // Starts either side of 2^32 ns boundaries and far apart; ends before starts too.
    const times: Array<[string, string]> = [
      ['1700000000000000000', '1700000004294967296'],
      ['1700000004294967295', '1700000004294967297'],
      ['1699999999999999999', '1700000000000000000'],
      ['1700000100000000000', '1700000000000000001'],
      ['4294967296', '4294967295'],
    ];
    const req = ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            scopeSpans: [
              {
                spans: times.map(([start, end], i) => ({
                  traceId: Buffer.alloc(16, 1),
                  spanId: Buffer.alloc(8, i + 1),
                  name: `s${i}`,
                  startTimeUnixNano: start,
                  endTimeUnixNano: end,
                })),
              },
            ],
          },
        ],
      }),
    ).finish();
    const wire = decodeSpans(req, { lazyAttributes: true });
    assert.ok('startHi' in wire[0]!, 'wire spans carry split times');
    const plain = wire.map((s) => (s as unknown as { toJSON(): SpanRecord }).toJSON());
    assert.ok(!('startHi' in plain[0]!), 'plain records carry BigInts only');
    const a = new TraceIndex(wire);
    const b = new TraceIndex(plain);
    assert.deepEqual([...a.start], [...b.start]);
    assert.deepEqual([...a.end], [...b.end]);
    assert.deepEqual(wire.map((s) => [String(s.startTimeUnixNano), String(s.endTimeUnixNano)]), times);
    assert.equal(a.start[4], 0, 'span 4 starts first');
    assert.equal(a.start[0], Number(1700000000000000000n - 4294967296n), 'relative to the earliest start');
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
    assert.deepEqual(span!.attributes.kv, { inner: false });
    assert.equal(span!.attributes.bytes, 'cafe');
    assert.equal(span!.resource['service.name'], 'late-resource');
    assert.equal(span!.startTimeUnixNano, 18446744073709551615n);
    assert.equal('empty' in span!.attributes, false);
  });

  it('reads span fields however they are framed, and fails where the schema decoder fails', () => {
    // The span's own fields are read with one-byte tags and lengths inline, varint() otherwise:
    // two-byte (non-minimal) tags, lengths and numbers, long names, unknown fields of every wire type.
    const lenField = (tagBytes: number[], body: Uint8Array) => Buffer.concat([Buffer.from(tagBytes), varintBytes(body.length), body]);
    const fixed64 = (tagBytes: number[], hi: number, lo: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt32LE(lo, 0);
      b.writeUInt32LE(hi, 4);
      return Buffer.concat([Buffer.from(tagBytes), b]);
    };
    const status = lenField([(15 << 3) | 2], Buffer.concat([lenField([(2 << 3) | 2], Buffer.from('bad gateway')), Buffer.from([(3 << 3) | 0, 2])]));
    const fields = [
      lenField([0x8a, 0x00], Buffer.alloc(16, 7)), // trace_id, a two-byte tag
      lenField([(2 << 3) | 2], Buffer.alloc(8, 3)),
      lenField([(3 << 3) | 2], Buffer.from('vendor=1')), // trace_state: skipped
      lenField([(4 << 3) | 2], Buffer.from([0, 0x80, 0x80, 0x80, 0, 0, 0, 1])), // parent: words with the high bits set
      lenField([(5 << 3) | 2], Buffer.from('n'.repeat(200))), // a two-byte length
      Buffer.from([(6 << 3) | 0, 0x82, 0x00]), // kind 2 in two bytes
      fixed64([(7 << 3) | 1], 0x17f00000, 0xfffffffe),
      fixed64([0xc1, 0x00], 0x17f00001, 5), // end time, a two-byte tag
      lenField([(9 << 3) | 2], Buffer.concat([lenField([(1 << 3) | 2], Buffer.from('k')), lenField([(2 << 3) | 2], lenField([(1 << 3) | 2], Buffer.from('v')))])),
      Buffer.from([(10 << 3) | 0, 0xff, 0x01]), // dropped_attributes_count: skipped
      Buffer.from([0x85, 0x01, 1, 2, 3, 4]), // field 16, fixed32: skipped
      Buffer.from([0xa0, 0x1f, 0x05]), // unknown field 500, varint
      status,
    ];
    const body = Buffer.concat(fields);
    const request = (span: Uint8Array) => {
      const spans = lenField([(2 << 3) | 2], span);
      return lenField([(1 << 3) | 2], lenField([(2 << 3) | 2], spans));
    };
    const plain = (r: SpanRecord): SpanRecord => ({
      traceId: r.traceId,
      spanId: r.spanId,
      parentSpanId: r.parentSpanId,
      name: r.name,
      kind: r.kind,
      startTimeUnixNano: r.startTimeUnixNano,
      endTimeUnixNano: r.endTimeUnixNano,
      statusCode: r.statusCode,
      statusMessage: r.statusMessage,
      attributes: { ...r.attributes },
      resource: r.resource,
    });
    const whole = request(body);
    const expected = decodeSpansWithSchema(whole);
    assert.equal(expected.length, 1);
    assert.equal(expected[0]!.name, 'n'.repeat(200));
    assert.equal(expected[0]!.kind, 2);
    assert.equal(expected[0]!.statusMessage, 'bad gateway');
    assert.deepEqual(decodeSpans(whole), expected);
    assert.deepEqual(decodeSpans(whole, { lazyAttributes: true }).map(plain), expected.map(plain));
    // Cut short anywhere (the span's own length still right): where the schema decoder
    // throws, so does this one; otherwise the same span, or none.
    let throwing = 0;
    for (let k = 0; k < body.length; k++) {
      const req = request(body.subarray(0, k));
      let schema: SpanRecord[] | undefined;
      try {
        schema = decodeSpansWithSchema(req);
      } catch {
        schema = undefined;
      }
      if (schema === undefined) {
        throwing++;
        assert.throws(() => decodeSpans(req), Error, `cut at ${k}`);
        assert.throws(() => decodeSpans(req, { lazyAttributes: true }), Error, `cut at ${k}, lazy`);
      } else {
        assert.deepEqual(decodeSpans(req), schema, `cut at ${k}`);
        assert.deepEqual(decodeSpans(req, { lazyAttributes: true }).map(plain), schema.map(plain), `cut at ${k}, lazy`);
      }
    }
    assert.ok(throwing > 100, `${throwing} cuts throw`);
  });

  it('reads attributes however they are framed, as the schema decoder does', () => {
    // Encoded by hand: besides the usual key-then-value with one-byte lengths (read without
    // the field loop), every valid variation: the value first, unknown fields, several values
    // (the last wins), lengths and numbers of several bytes, the key or value missing.
    const field = (tag: number, body: Uint8Array) => Buffer.concat([varintBytes(tag), varintBytes(body.length), body]);
    const varintField = (tag: number, bytes: number[]) => Buffer.concat([varintBytes(tag), Buffer.from(bytes)]);
    const str = (s: string) => field((1 << 3) | 2, Buffer.from(s));
    const key = (k: string) => field((1 << 3) | 2, Buffer.from(k));
    const value = (v: Uint8Array) => field((2 << 3) | 2, v);
    const kv = (...parts: Uint8Array[]) => field((9 << 3) | 2, Buffer.concat(parts));
    const attributes = [
      kv(key('plain'), value(str('v'))),
      kv(value(str('first')), key('reversed')),
      kv(key('extra'), varintField((7 << 3) | 0, [5]), value(str('x'))),
      kv(key('two.values'), value(Buffer.concat([str('a'), varintField((3 << 3) | 0, [7])]))),
      kv(key('value.again'), value(str('a')), value(str('b'))),
      kv(key('long'), value(str('y'.repeat(300)))),
      kv(key('k'.repeat(130)), value(str('long key'))),
      kv(key('bool.wide'), value(varintField((2 << 3) | 0, [0x80, 0x01]))),
      kv(key('bool.false'), value(varintField((2 << 3) | 0, [0]))),
      kv(key('int.small'), value(varintField((3 << 3) | 0, [0x7f]))),
      kv(key('int.wide'), value(varintField((3 << 3) | 0, [0xac, 0x02]))),
      kv(key('no.value')),
      kv(value(str('no key'))),
      kv(key('empty.string'), value(str(''))),
    ];
    const span = Buffer.concat([field((1 << 3) | 2, Buffer.alloc(16, 1)), field((2 << 3) | 2, Buffer.alloc(8, 2)), field((5 << 3) | 2, Buffer.from('op')), ...attributes]);
    const req = field((1 << 3) | 2, field((2 << 3) | 2, field((2 << 3) | 2, span)));
    const expected = decodeSpansWithSchema(req)[0]!;
    assert.deepEqual(expected.attributes, {
      plain: 'v', reversed: 'first', extra: 'x', 'two.values': 7, 'value.again': 'b', long: 'y'.repeat(300), ['k'.repeat(130)]: 'long key',
      'bool.wide': true, 'bool.false': false, 'int.small': 127, 'int.wide': 300, '': 'no key', 'empty.string': '',
    });
    assert.deepEqual(decodeSpans(req)[0], expected);
    assert.deepEqual({ ...decodeSpans(req, { lazyAttributes: true })[0]!.attributes }, expected.attributes);
  });

  const request = (attributes: Array<{ key: string; value: Record<string, unknown> }>, resource = [{ key: 'service.name', value: { stringValue: 'svc' } }]) =>
    ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            resource: { attributes: resource },
            scopeSpans: [{ spans: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'op', attributes }] }],
          },
        ],
      }),
    ).finish();

  it('decodes only the attributes a filter names, span and resource alike', () => {
    const req = request(
      [
        { key: 'keep.me', value: { stringValue: 'yes' } },
        { key: 'drop.me', value: { stringValue: 'no' } },
        { key: 'keep.mf', value: { intValue: 1 } }, // same length as keep.me, one byte apart
        { key: 'n', value: { kvlistValue: { values: [{ key: 'nested', value: { boolValue: true } }] } } },
      ],
      [
        { key: 'service.name', value: { stringValue: 'svc' } },
        { key: 'host.name', value: { stringValue: 'h1' } },
      ],
    );
    const [span] = decodeSpans(req, { attributes: new AttributeKeyFilter(['keep.me', 'n', 'service.name']) });
    assert.deepEqual(span!.attributes, { 'keep.me': 'yes', n: { nested: true } }); // nested kvlists are kept whole
    assert.deepEqual(span!.resource, { 'service.name': 'svc' });
    const [all] = decodeSpans(req);
    assert.deepEqual(Object.keys(all!.attributes), ['keep.me', 'drop.me', 'keep.mf', 'n']);
  });

  it('counts skipped attributes under the attributes-per-span limit, as if decoded', () => {
    const decoder = new SpanDecoder({ attributes: new AttributeKeyFilter(['b', 'c']), limits: { maxAttributesPerSpan: 2, maxAttributeValueLength: Infinity } });
    const req = request(['a', 'b', 'c', 'd'].map((key) => ({ key, value: { stringValue: key } })));
    const [span] = decoder.decode(req);
    assert.deepEqual(span!.attributes, { b: 'b' }); // c is the third attribute: past the limit
    assert.deepEqual(decoder.takeLimitCounts(), { droppedAttributes: 2, truncatedValues: 0 });
    assert.deepEqual(decoder.takeLimitCounts(), { droppedAttributes: 0, truncatedValues: 0 }); // taken
  });

  it('keeps a __proto__ attribute as an own property', () => {
    const [span] = decodeSpans(request([{ key: '__proto__', value: { stringValue: 'x' } }, { key: 'toString', value: { intValue: 3 } }]));
    assert.equal(Object.hasOwn(span!.attributes, '__proto__'), true);
    assert.equal(Object.getPrototypeOf(span!.attributes), Object.prototype);
    assert.equal(span!.attributes.__proto__, 'x');
    assert.equal(Object.hasOwn(span!.attributes, 'toString'), true);
    const viaSchema = decodeSpansWithSchema(request([{ key: '__proto__', value: { stringValue: 'x' } }]))[0]!.attributes;
    assert.equal(Object.hasOwn(viaSchema, '__proto__'), true);
    assert.equal(Object.getPrototypeOf(viaSchema), Object.prototype);
  });

  it('decodes strings right when many distinct ones share the interning table', () => {
    // 20,000 distinct short keys and values: every table slot is taken over and over.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 20_000; i += 500) {
        const attrs = Array.from({ length: 500 }, (_, j) => ({ key: `k${i + j}`, value: { stringValue: `v${(i + j) * 7}` } }));
        const [span] = decodeSpans(request(attrs));
        for (let j = 0; j < 500; j++) assert.equal(span!.attributes[`k${i + j}`], `v${(i + j) * 7}`);
      }
    }
  });

  it('filters by the keys the rules read', () => {
    const file = parseRuleFile(
      [
        'rules:',
        '  - id: r1',
        '    name: r1',
        '    severity: high',
        '    condition: trace.has(payment.charge).where(span.amount > 10 and resource.region == "eu") implies trace.has(refund).preceded_by(payment.charge).on(order_id)',
        '  - id: r2',
        '    name: r2',
        '    severity: low',
        '    condition: trace.count(a).where(k == unique) == 1 and trace.has(b).where(span:service == "s")',
      ].join('\n'),
    );
    assert.deepEqual(file.errors, []);
    assert.deepEqual([...attributeKeys(file.rules)].sort(), ['amount', 'k', 'order_id', 'region', 'service.name']);
  });

  it('gives the 100 benchmark rules the same violations with only their attributes decoded', () => {
    const file = parseRuleFile(readFileSync(join(import.meta.dirname, '..', 'bench', 'fixtures', 'rules-100.yaml'), 'utf8'));
    assert.equal(file.rules.length, 100);
    const set = createRuleSet(file.rules);
    const filter = { attributes: new AttributeKeyFilter(attributeKeys(file.rules)), lazyAttributes: true };
    const w = buildWorkload(300, { seed: 4 });
    const byTrace = (decode: (r: Buffer) => ReturnType<typeof decodeSpans>) => {
      const traces = new Map<string, ReturnType<typeof decodeSpans>>();
      for (const req of w.requests) for (const sp of decode(req)) traces.set(sp.traceId, [...(traces.get(sp.traceId) ?? []), sp]);
      return [...traces.values()].flatMap((spans) => set.evaluate(spans).violations);
    };
    const full = byTrace((r) => decodeSpans(r));
    const filtered = byTrace((r) => decodeSpans(r, filter));
    assert.ok(full.length > 100, `${full.length} violations`);
    assert.deepEqual(filtered, full);
  });

  it('decodes attributes when first read with lazyAttributes, to the same values and limit counts', () => {
    const w = buildWorkload(40, { seed: 12 });
    const limits: DecodeLimits = { maxAttributesPerSpan: 6, maxAttributeValueLength: 8 };
    const eagerDecoder = new SpanDecoder({ limits });
    const lazyDecoder = new SpanDecoder({ limits, lazyAttributes: true });
    let truncated = 0;
    for (const req of w.requests) {
      const eager = eagerDecoder.decode(req);
      const eagerCounts = eagerDecoder.takeLimitCounts();
      const lazy = lazyDecoder.decode(req);
      const atDecode = lazyDecoder.takeLimitCounts(); // drops (and the resource's cut values) are counted at decode time
      assert.equal(atDecode.droppedAttributes, eagerCounts.droppedAttributes);
      assert.equal(lazy.length, eager.length);
      // Reads interleaved with other decoding by the same decoder: each span's own bytes, whatever was decoded since.
      lazyDecoder.decode(w.requests[0]!);
      lazyDecoder.takeLimitCounts();
      for (let i = lazy.length - 1; i >= 0; i--) {
        assert.deepEqual(lazy[i]!.attributes, eager[i]!.attributes);
        assert.deepEqual(JSON.parse(JSON.stringify(lazy[i], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))), JSON.parse(JSON.stringify(eager[i], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))));
      }
      assert.equal(atDecode.truncatedValues + lazyDecoder.takeLimitCounts().truncatedValues, eagerCounts.truncatedValues); // the spans' when read
      truncated += eagerCounts.truncatedValues;
    }
    assert.ok(truncated > 0, 'the limits cut values');
  });

  it('finds one attribute on the wire as the attributes object holds it: framing, repeats, filter, limits, damage', () => {
    const lookup = (span: SpanRecord, key: string) => (span as SpanRecord & AttributeLookup).attribute(key, Buffer.from(key, 'utf8'));
    const field = (tag: number, body: Uint8Array) => Buffer.concat([varintBytes(tag), varintBytes(body.length), body]);
    const str = (v: string) => field((1 << 3) | 2, Buffer.from(v));
    const key = (k: string) => field((1 << 3) | 2, Buffer.from(k));
    const value = (v: Uint8Array) => field((2 << 3) | 2, v);
    const kv = (...parts: Uint8Array[]) => field((9 << 3) | 2, Buffer.concat(parts));
    const int = (n: number) => Buffer.concat([Buffer.from([(3 << 3) | 0]), varintBytes(n)]);
    const attributes = [
      kv(key('plain'), value(str('v'))),
      kv(value(str('first')), key('reversed')),
      kv(key('twice'), value(str('1'))),
      kv(key('extra'), Buffer.from([(7 << 3) | 0, 5]), value(str('x'))),
      kv(key('twice'), value(str('2'))),
      kv(key('twice')), // no value: the earlier one stays
      kv(key('twice'), value(Buffer.alloc(0))), // an empty AnyValue: likewise
      kv(key('long'), value(str('y'.repeat(300)))),
      kv(key('k'.repeat(130)), value(str('long key'))),
      kv(key('n'), value(int(300))),
      kv(key('__proto__'), value(str('own'))),
      kv(value(str('no key'))),
      kv(key('list'), value(field((5 << 3) | 2, Buffer.concat([field((1 << 3) | 2, str('a')), field((1 << 3) | 2, int(2))])))),
      kv(key('map'), value(field((6 << 3) | 2, Buffer.concat([field((1 << 3) | 2, Buffer.concat([key('inner'), value(str('z'.repeat(20)))])), field((1 << 3) | 2, Buffer.concat([key('i2'), value(int(1))]))])))),
    ];
    const keys = ['plain', 'reversed', 'twice', 'extra', 'long', 'k'.repeat(130), 'n', '__proto__', '', 'list', 'absent', 'toString', 'constructor', 'map'];
    const build = (attrs: Uint8Array[]) => {
      const span = Buffer.concat([field((1 << 3) | 2, Buffer.alloc(16, 1)), field((2 << 3) | 2, Buffer.alloc(8, 2)), field((5 << 3) | 2, Buffer.from('op')), ...attrs]);
      return field((1 << 3) | 2, field((2 << 3) | 2, field((2 << 3) | 2, span)));
    };
    const own = (o: Record<string, unknown>, k: string) => (Object.hasOwn(o, k) ? o[k] : undefined);
    const agree = (req: Buffer, options: Parameters<typeof decodeSpans>[1], why: string) => {
      const byKeyDecoder = new SpanDecoder(options);
      const [byKey] = byKeyDecoder.decode(req);
      const found = keys.map((k) => lookup(byKey!, k));
      const keyCounts = byKeyDecoder.takeLimitCounts();
      const wholeDecoder = new SpanDecoder(options);
      const [whole] = wholeDecoder.decode(req);
      const object = whole!.attributes;
      const objectCounts = wholeDecoder.takeLimitCounts();
      assert.deepEqual(found, keys.map((k) => own(object, k)), why);
      assert.deepEqual(keyCounts, objectCounts, `${why}: limit counts`);
      assert.deepEqual({ ...byKey!.attributes }, { ...object }, `${why}: the object afterwards`); // and the lookup after it
      assert.deepEqual(keys.map((k) => lookup(byKey!, k)), found, `${why}: found again`);
      return found;
    };
    const req = build(attributes);
    const found = agree(req, { lazyAttributes: true }, 'plain');
    assert.deepEqual(found.slice(0, 4), ['v', 'first', '2', 'x']);
    assert.equal(found[7], 'own');
    assert.equal(found[8], 'no key');
    assert.deepEqual(found[9], ['a', 2]);
    assert.deepEqual(found[13], { inner: 'z'.repeat(20), i2: 1 });
    const filtered = agree(req, { lazyAttributes: true, attributes: new AttributeKeyFilter(['twice', 'n', 'absent']) }, 'filtered');
    assert.deepEqual(filtered.slice(0, 3), [undefined, undefined, '2']);
    // Past the limits: the object decides (drops by position, cut values counted once).
    for (const [maxAttributesPerSpan, maxAttributeValueLength] of [[4, Infinity], [Infinity, 4], [14, 200], [13, Infinity], [Infinity, 10], [1, 10]] as const) {
      agree(req, { lazyAttributes: true, limits: { maxAttributesPerSpan, maxAttributeValueLength } }, `limits ${maxAttributesPerSpan}/${maxAttributeValueLength}`);
    }
    // A kvlist's strings are cut by the limits too: counted once, however often it is read.
    {
      const decoder = new SpanDecoder({ lazyAttributes: true, limits: { maxAttributesPerSpan: Infinity, maxAttributeValueLength: 10 } });
      const [span] = decoder.decode(req);
      for (let i = 0; i < 3; i++) assert.deepEqual(lookup(span!, 'map'), { inner: 'z'.repeat(10), i2: 1 });
      const counts = decoder.takeLimitCounts();
      void decoder.decode(req)[0]!.attributes;
      assert.deepEqual(counts, decoder.takeLimitCounts());
      assert.equal(counts.truncatedValues, 2);
    }
    // Damaged after 'n' (a key longer than its KeyValue): what comes before it is found, as the object holds it.
    const damaged = Buffer.from(req);
    const at = damaged.indexOf(Buffer.from('__proto__')) - 1;
    assert.equal(damaged[at], 9);
    damaged[at] = 0x7f;
    const broken = agree(damaged, { lazyAttributes: true }, 'damaged');
    assert.equal(broken[6], 300);
    assert.deepEqual(broken.slice(7), keys.slice(7).map(() => undefined));
    // A damaged value: that attribute is not found either way (those after it are, by key).
    const badValue = Buffer.from(req);
    const v = badValue.indexOf(Buffer.from('own')) - 1;
    badValue[v] = 60;
    const [byKey] = decodeSpans(badValue, { lazyAttributes: true });
    assert.equal(lookup(byKey!, '__proto__'), undefined);
    assert.equal(lookup(byKey!, 'n'), 300);
    assert.equal(own(decodeSpans(badValue, { lazyAttributes: true })[0]!.attributes, '__proto__'), undefined);
    // The workload with the 100 rules' keys: every span, every key of the rules and some others.
    const file = parseRuleFile(readFileSync(join(import.meta.dirname, '..', 'bench', 'fixtures', 'rules-100.yaml'), 'utf8'));
    const filter = new AttributeKeyFilter(attributeKeys(file.rules));
    const names = [...attributeKeys(file.rules), 'http.method', 'net.peer.name', 'nope'];
    let hits = 0;
    for (const r of buildWorkload(30, { seed: 5 }).requests) {
      const a = decodeSpans(r, { attributes: filter, lazyAttributes: true });
      const b = decodeSpans(r, { attributes: filter, lazyAttributes: true });
      for (let i = 0; i < a.length; i++) {
        for (const k of names) {
          const v = lookup(a[i]!, k);
          assert.deepEqual(v, own(b[i]!.attributes, k));
          if (v !== undefined) hits++;
        }
      }
    }
    assert.ok(hits > 1000, `${hits} attributes found`);
  });

  it('reads a damaged attribute list up to the damage when lazy, and throws when eager', () => {
    const good = Buffer.from(request([{ key: 'a', value: { stringValue: 'x' } }, { key: 'b', value: { stringValue: 'y' } }]));
    // The last attribute's value claims more bytes than its KeyValue holds.
    const at = good.lastIndexOf(Buffer.from('y')) - 1;
    assert.equal(good[at], 1);
    const bad = Buffer.from(good);
    bad[at] = 9;
    const [span] = decodeSpans(bad, { lazyAttributes: true });
    assert.deepEqual(span!.attributes, { a: 'x' });
    assert.throws(() => decodeSpans(bad));
  });
});
