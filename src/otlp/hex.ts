/** Lowercase hex of bytes; '' for an empty array. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** True when every byte of bytes[start, end) is zero (an invalid OTLP id). */
export function isAllZero(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Hex of 16-byte trace ids, turned to a string again only when the bytes
 * differ from the last ones: a request's (or a trace part's) spans of one
 * trace come together, so most spans reuse the string of the span before.
 */
export class TraceIdHex {
  readonly #last = Buffer.alloc(16);
  #hex = '';

  /** Hex of bytes[start, start + 16). */
  get(bytes: Uint8Array, start: number): string {
    const last = this.#last;
    let i = 0;
    while (i < 16 && last[i] === bytes[start + i]) i++;
    if (i < 16 || this.#hex === '') {
      last.set(bytes.subarray(start, start + 16));
      this.#hex = last.toString('hex');
    }
    return this.#hex;
  }
}

/** Char codes of the high and the low hex digit of each byte value. */
const HIGH_DIGIT = new Uint8Array(256);
const LOW_DIGIT = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  HIGH_DIGIT[i] = '0123456789abcdef'.charCodeAt(i >> 4);
  LOW_DIGIT[i] = '0123456789abcdef'.charCodeAt(i & 15);
}

/**
 * Lowercase hex of the 8 bytes whose little-endian 32-bit words are lo (bytes 0–3) and
 * hi (bytes 4–7): a span id from its NumericIds words. Made in JavaScript: one flat
 * string and no call into Node's C++, which Buffer#toString('hex') makes per id and which
 * measured slower for 8 bytes.
 */
export function hexWords(lo: number, hi: number): string {
  const h = HIGH_DIGIT;
  const l = LOW_DIGIT;
  const b0 = lo & 0xff;
  const b1 = (lo >>> 8) & 0xff;
  const b2 = (lo >>> 16) & 0xff;
  const b3 = lo >>> 24;
  const b4 = hi & 0xff;
  const b5 = (hi >>> 8) & 0xff;
  const b6 = (hi >>> 16) & 0xff;
  const b7 = hi >>> 24;
  return String.fromCharCode(h[b0]!, l[b0]!, h[b1]!, l[b1]!, h[b2]!, l[b2]!, h[b3]!, l[b3]!, h[b4]!, l[b4]!, h[b5]!, l[b5]!, h[b6]!, l[b6]!, h[b7]!, l[b7]!);
}

const HEX_RE = /^[0-9a-fA-F]*$/;

/** Bytes of a hex id, or undefined when the text is not hex of exactly `length` bytes. */
export function fromHexId(text: unknown, length: number): Buffer | undefined {
  if (typeof text !== 'string' || text.length !== length * 2 || !HEX_RE.test(text)) return undefined;
  return Buffer.from(text, 'hex');
}
