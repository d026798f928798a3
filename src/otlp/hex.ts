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

const HEX_RE = /^[0-9a-fA-F]*$/;

/** Bytes of a hex id, or undefined when the text is not hex of exactly `length` bytes. */
export function fromHexId(text: unknown, length: number): Buffer | undefined {
  if (typeof text !== 'string' || text.length !== length * 2 || !HEX_RE.test(text)) return undefined;
  return Buffer.from(text, 'hex');
}
