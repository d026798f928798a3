/**
 * The local history's trace index: beside each segment `<seq>.seg`, a file `<seq>.idx`
 * that says, for every record the segment holds, its trace, its event time, its spans'
 * earliest start, how many spans it holds, their names, and where its payload is in the
 * segment. Replay reads the index and then only the payloads of the traces some rule can
 * fail on (src/replay/README.md "The trace index").
 *
 * The index is appended to after the frames it describes are in the segment, one chunk per
 * write; each chunk says which bytes of the segment it covers ([coveredStart, coveredEnd),
 * whole frames). Bytes no chunk covers (a chunk lost to a crash or a full disk, the part
 * of the segment written since the last chunk) are a gap: replay reads them as frames.
 *
 * One chunk:
 *   header, 16 bytes: magic "BTIX", version (1), 3 reserved bytes, body length (u32 LE),
 *                     CRC-32C (u32 LE) of the header's first 12 bytes and the body;
 *   body:             coveredStart (f64), coveredEnd (f64), new names (u32 count, then
 *                     u16 length + UTF-8 each: the segment's name table grows in order),
 *                     entries (u32 count, then each: trace id length (u8) + ASCII,
 *                     timestampMs (f64), earliestStartMs (f64, +Infinity as such),
 *                     spanCount (u32), untimedSpans (u32), payload position (f64), payload
 *                     length (u32), payload CRC-32C (u32), name count (u16), name numbers (u32 each)).
 */
import { crc32c } from '@node-rs/crc32';

const MAGIC = Buffer.from('BTIX', 'latin1');
const VERSION = 1;
const HEADER_BYTES = 16;

/** One record of a segment, as the index describes it. */
export interface IndexEntry {
  readonly traceId: string;
  /** The record's event-time timestamp (unix ms). */
  readonly timestampMs: number;
  /** Earliest plausible span start in the record (Infinity when none). */
  readonly earliestStartMs: number;
  readonly spanCount: number;
  readonly untimedSpans: number;
  /** Byte position of the payload in the segment file, its length and CRC-32C. */
  readonly position: number;
  readonly length: number;
  readonly crc: number;
  /** Span names in the record (numbers into the segment's name table). */
  readonly names: readonly number[];
}

export interface IndexChunk {
  readonly coveredStart: number;
  readonly coveredEnd: number;
  /** Names added to the segment's table by this chunk. */
  readonly newNames: readonly string[];
  readonly entries: readonly IndexEntry[];
}

/** Encodes one chunk. */
export function encodeIndexChunk(chunk: IndexChunk): Buffer {
  const names = chunk.newNames.map((n) => Buffer.from(n, 'utf8'));
  let body = 16 + 4 + 4;
  for (const n of names) body += 2 + Math.min(n.length, 0xffff);
  for (const e of chunk.entries) body += 1 + e.traceId.length + 8 + 8 + 4 + 4 + 8 + 4 + 4 + 2 + 4 * e.names.length;
  const buf = Buffer.allocUnsafe(HEADER_BYTES + body);
  MAGIC.copy(buf, 0);
  buf.writeUInt8(VERSION, 4);
  buf.fill(0, 5, 8);
  buf.writeUInt32LE(body, 8);
  let p = HEADER_BYTES;
  buf.writeDoubleLE(chunk.coveredStart, p);
  buf.writeDoubleLE(chunk.coveredEnd, p + 8);
  buf.writeUInt32LE(names.length, p + 16);
  p += 20;
  for (const n of names) {
    const len = Math.min(n.length, 0xffff);
    buf.writeUInt16LE(len, p);
    n.copy(buf, p + 2, 0, len);
    p += 2 + len;
  }
  buf.writeUInt32LE(chunk.entries.length, p);
  p += 4;
  for (const e of chunk.entries) {
    const id = buf.write(e.traceId, p + 1, 'latin1');
    buf.writeUInt8(id, p);
    p += 1 + id;
    buf.writeDoubleLE(e.timestampMs, p);
    buf.writeDoubleLE(e.earliestStartMs, p + 8);
    buf.writeUInt32LE(e.spanCount, p + 16);
    buf.writeUInt32LE(e.untimedSpans, p + 20);
    buf.writeDoubleLE(e.position, p + 24);
    buf.writeUInt32LE(e.length, p + 32);
    buf.writeUInt32LE(e.crc >>> 0, p + 36);
    buf.writeUInt16LE(e.names.length, p + 40);
    p += 42;
    for (const n of e.names) {
      buf.writeUInt32LE(n, p);
      p += 4;
    }
  }
  buf.writeUInt32LE(crc32c(buf.subarray(HEADER_BYTES, HEADER_BYTES + body), crc32c(buf.subarray(0, 12))), 12);
  return buf;
}

export type DecodedIndexChunk = { readonly kind: 'chunk'; readonly size: number; readonly chunk: IndexChunk } | { readonly kind: 'end' } | { readonly kind: 'bad'; readonly reason: string };

/** Decodes the chunk at `at` ('end' when the file ends there or a chunk is cut short: a write in progress or torn). */
export function decodeIndexChunk(buf: Buffer, at: number): DecodedIndexChunk {
  if (buf.length - at < HEADER_BYTES) return { kind: 'end' };
  if (buf.compare(MAGIC, 0, 4, at, at + 4) !== 0) return { kind: 'bad', reason: 'no index chunk header' };
  if (buf.readUInt8(at + 4) !== VERSION) return { kind: 'bad', reason: `unknown index version ${buf.readUInt8(at + 4)}` };
  const body = buf.readUInt32LE(at + 8);
  const end = at + HEADER_BYTES + body;
  if (end > buf.length) return { kind: 'end' };
  const crc = crc32c(buf.subarray(at + HEADER_BYTES, end), crc32c(buf.subarray(at, at + 12)));
  if (crc !== buf.readUInt32LE(at + 12)) return { kind: 'bad', reason: 'CRC-32C mismatch' };
  try {
    let p = at + HEADER_BYTES;
    const coveredStart = buf.readDoubleLE(p);
    const coveredEnd = buf.readDoubleLE(p + 8);
    const nameCount = buf.readUInt32LE(p + 16);
    p += 20;
    const newNames: string[] = [];
    for (let i = 0; i < nameCount; i++) {
      const len = buf.readUInt16LE(p);
      newNames.push(buf.toString('utf8', p + 2, p + 2 + len));
      p += 2 + len;
    }
    const count = buf.readUInt32LE(p);
    p += 4;
    const entries: IndexEntry[] = [];
    for (let i = 0; i < count; i++) {
      const id = buf.readUInt8(p);
      const traceId = buf.toString('latin1', p + 1, p + 1 + id);
      p += 1 + id;
      const n = buf.readUInt16LE(p + 40);
      const names: number[] = [];
      for (let k = 0; k < n; k++) names.push(buf.readUInt32LE(p + 42 + 4 * k));
      entries.push({
        traceId,
        timestampMs: buf.readDoubleLE(p),
        earliestStartMs: buf.readDoubleLE(p + 8),
        spanCount: buf.readUInt32LE(p + 16),
        untimedSpans: buf.readUInt32LE(p + 20),
        position: buf.readDoubleLE(p + 24),
        length: buf.readUInt32LE(p + 32),
        crc: buf.readUInt32LE(p + 36),
        names,
      });
      p += 42 + 4 * n;
    }
    if (p !== end) return { kind: 'bad', reason: 'index chunk longer than its entries' };
    return { kind: 'chunk', size: end - at, chunk: { coveredStart, coveredEnd, newNames, entries } };
  } catch {
    return { kind: 'bad', reason: 'index chunk entry past its end' };
  }
}

/** The whole chunks of an index file, in order, up to the first bad or cut one; `ends[i]` is where chunk i ends in the file. */
export function readIndexChunks(buf: Buffer): { chunks: IndexChunk[]; ends: number[]; stopped?: string } {
  const chunks: IndexChunk[] = [];
  const ends: number[] = [];
  let at = 0;
  for (;;) {
    const d = decodeIndexChunk(buf, at);
    if (d.kind === 'end') return at === buf.length ? { chunks, ends } : { chunks, ends, stopped: 'a chunk ends past the end of the file' };
    if (d.kind === 'bad') return { chunks, ends, stopped: d.reason };
    chunks.push(d.chunk);
    at += d.size;
    ends.push(at);
  }
}
