/**
 * A fixed set of strings, matched against UTF-8 bytes on the wire without
 * building strings: span names against rule triggers (replay's scan), attribute
 * keys against the keys rules name (the span decoder).
 */
export class Utf8Set {
  readonly #byLength = new Map<number, Array<{ bytes: Buffer; text: string }>>();
  readonly size: number;

  constructor(strings: Iterable<string>) {
    let n = 0;
    for (const text of new Set(strings)) {
      const bytes = Buffer.from(text, 'utf8');
      const list = this.#byLength.get(bytes.length);
      if (list === undefined) this.#byLength.set(bytes.length, [{ bytes, text }]);
      else list.push({ bytes, text });
      n++;
    }
    this.size = n;
  }

  /** The string whose UTF-8 bytes are buf[start, end), if it is in the set. */
  find(buf: Uint8Array, start: number, end: number): string | undefined {
    const list = this.#byLength.get(end - start);
    if (list === undefined) return undefined;
    next: for (const { bytes, text } of list) {
      for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) continue next;
      return text;
    }
    return undefined;
  }

  /** True when buf[start, end) is one of the strings. */
  matches(buf: Uint8Array, start: number, end: number): boolean {
    return this.find(buf, start, end) !== undefined;
  }
}
