/** Lowercase hex of bytes; '' for an empty array. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** True when every byte is zero (an invalid OTLP id). */
export function isAllZero(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0) return false;
  return true;
}

const HEX_RE = /^[0-9a-fA-F]*$/;

/** Bytes of a hex id, or undefined when the text is not hex of exactly `length` bytes. */
export function fromHexId(text: unknown, length: number): Buffer | undefined {
  if (typeof text !== 'string' || text.length !== length * 2 || !HEX_RE.test(text)) return undefined;
  return Buffer.from(text, 'hex');
}
