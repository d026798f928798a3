/**
 * checkMessage: the KeyValue fast path accepts and rejects exactly what the field loop
 * does. The loop's verdict comes from locateFault, which walks a span field by field and
 * checks each attribute as a KeyValue message of its own (no fast path at that level).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanSchema } from '../../src/otlp/otlp-schemas.ts';
import { WireCursor, WireError, checkMessage, locateFault, varintBytes } from '../../src/otlp/wire.ts';
import { prng } from '../helpers/prng.ts';

const len = (field: number, body: Uint8Array): Buffer => Buffer.concat([Buffer.from([(field << 3) | 2]), varintBytes(body.length), body]);
/** A varint of a 64-bit value given as a bigint (two's complement for negatives: ten bytes). */
function varint64(v: bigint): Buffer {
  let x = BigInt.asUintN(64, v);
  const out: number[] = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return Buffer.from(out);
}

/** Random AnyValues: every kind, short and long, nested arrays and lists now and then. */
function anyValue(rnd: () => number, depth = 0): Buffer {
  const text = (n: number) => Buffer.from('x'.repeat(n));
  switch (Math.floor(rnd() * (depth > 2 ? 6 : 8))) {
    case 0:
      return len(1, rnd() < 0.1 ? Buffer.from([0xc3]) : text(Math.floor(rnd() * (rnd() < 0.2 ? 300 : 40))));
    case 1:
      return Buffer.concat([Buffer.from([2 << 3]), varint64(rnd() < 0.5 ? 1n : 0n)]);
    case 2: {
      const v = BigInt(Math.floor((rnd() - 0.3) * 2 ** (1 + Math.floor(rnd() * 60))));
      return Buffer.concat([Buffer.from([3 << 3]), varint64(v)]);
    }
    case 3: {
      const b = Buffer.alloc(9);
      b[0] = (4 << 3) | 1;
      b.writeDoubleLE(rnd() * 1000, 1);
      return b;
    }
    case 4:
      return len(7, Buffer.from([1, 2, 3].slice(0, Math.floor(rnd() * 4))));
    case 5:
      return Buffer.alloc(0);
    case 6:
      return len(5, Buffer.concat(Array.from({ length: Math.floor(rnd() * 3) }, () => len(1, anyValue(rnd, depth + 1)))));
    default:
      return len(6, Buffer.concat(Array.from({ length: Math.floor(rnd() * 3) }, () => len(1, keyValue(rnd, depth + 1)))));
  }
}

function keyValue(rnd: () => number, depth = 0): Buffer {
  const key = Buffer.from('k'.repeat(Math.floor(rnd() * (rnd() < 0.1 ? 200 : 20))));
  const parts = [len(1, key), len(2, anyValue(rnd, depth))];
  if (rnd() < 0.05) parts.reverse(); // the value first: legal, not the fast path's shape
  return Buffer.concat(parts);
}

/** The outcome of checking a Span holding these attributes: 'ok' or the fault's reason. */
function outcome(span: Buffer, fast: boolean): string {
  if (!fast) {
    const none = new WireError('none');
    const fault = locateFault(span, 0, span.length, SpanSchema, none);
    return fault === none ? 'ok' : fault.reason;
  }
  try {
    checkMessage(new WireCursor(span), 0, span.length, SpanSchema);
    return 'ok';
  } catch (e) {
    return (e as WireError).reason;
  }
}

describe('checking a span message', () => {
  it('the KeyValue fast path agrees with the field loop on well-formed and damaged attributes', () => {
    const rnd = prng(3);
    let accepted = 0;
    let rejected = 0;
    for (let t = 0; t < 300; t++) {
      const attributes = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => keyValue(rnd));
      const span = Buffer.concat([len(1, Buffer.alloc(16, 1)), len(2, Buffer.alloc(8, 2)), ...attributes.map((a) => len(9, a))]);
      const variants = [span];
      // Damaged: a byte of an attribute changed, or the span cut short.
      for (let k = 0; k < 6; k++) {
        const d = Buffer.from(span);
        const at = 26 + Math.floor(rnd() * (d.length - 26));
        d[at] = [0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x10, 0x21, 0x3a][Math.floor(rnd() * 9)]!;
        variants.push(d);
      }
      variants.push(span.subarray(0, span.length - 1 - Math.floor(rnd() * 5)));
      for (const v of variants) {
        const slow = outcome(v, false);
        assert.equal(outcome(v, true), slow, `span ${t}: ${v.toString('hex')}`);
        if (slow === 'ok') accepted++;
        else rejected++;
      }
    }
    assert.ok(accepted > 500 && rejected > 300, `both outcomes were compared (${accepted} accepted, ${rejected} rejected)`);
  });

  it('rejects an int attribute whose varint runs past ten bytes, fast path or not', () => {
    const bad = Buffer.concat([len(1, Buffer.from('k')), len(2, Buffer.concat([Buffer.from([3 << 3]), Buffer.alloc(10, 0xff), Buffer.from([1])]))]);
    const span = Buffer.concat([len(1, Buffer.alloc(16, 1)), len(9, bad)]);
    assert.equal(outcome(span, true), 'varint longer than 10 bytes');
    assert.equal(outcome(span, false), 'varint longer than 10 bytes');
  });
});
