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

/** A chunk whose header and names are read; its entries are read by visitEntries (no object per entry). */
export interface ChunkView {
  readonly coveredStart: number;
  readonly coveredEnd: number;
  readonly newNames: readonly string[];
  readonly count: number;
  readonly buf: Buffer;
  /** Where the entries start in buf, and where the chunk ends. */
  readonly entriesAt: number;
  readonly end: number;
}

/** An entry as visitEntries passes it: a reused object, valid during the call only. */
export interface EntryScratch {
  /** Trace id bytes in the chunk's buffer (ASCII). */
  idStart: number;
  idLength: number;
  /** traceIdHash of the trace id. */
  idHash: number;
  timestampMs: number;
  earliestStartMs: number;
  spanCount: number;
  untimedSpans: number;
  position: number;
  length: number;
  crc: number;
  /** Some span name of the record is one `isWanted` accepts. */
  wanted: boolean;
}

/**
 * A 53-bit number from a trace id's bytes (FNV-1a and a second multiplicative hash over
 * every byte): equal ids give equal numbers; different ids rarely the same, and a collision
 * only costs a trace being assembled though it need not be.
 */
export function traceIdHash(buf: Uint8Array, start: number, length: number): number {
  let a = 0x811c9dc5;
  let b = 0;
  for (let i = start; i < start + length; i++) {
    const c = buf[i]!;
    a = Math.imul(a ^ c, 0x01000193);
    b = (Math.imul(b, 31) + c) | 0;
  }
  return (a >>> 0) * 2097152 + ((b >>> 0) & 0x1fffff);
}

/** Calls `visit` for each entry of the chunk; `isWanted(k)`: name number k is wanted. */
export function visitEntries(view: ChunkView, isWanted: (k: number) => boolean, visit: (e: EntryScratch) => void): void {
  const buf = view.buf;
  const e: EntryScratch = { idStart: 0, idLength: 0, idHash: 0, timestampMs: 0, earliestStartMs: 0, spanCount: 0, untimedSpans: 0, position: 0, length: 0, crc: 0, wanted: false };
  let p = view.entriesAt;
  for (let i = 0; i < view.count; i++) {
    const id = buf[p]!;
    e.idStart = p + 1;
    e.idLength = id;
    e.idHash = traceIdHash(buf, p + 1, id);
    p += 1 + id;
    e.timestampMs = buf.readDoubleLE(p);
    e.earliestStartMs = buf.readDoubleLE(p + 8);
    e.spanCount = buf.readUInt32LE(p + 16);
    e.untimedSpans = buf.readUInt32LE(p + 20);
    e.position = buf.readDoubleLE(p + 24);
    e.length = buf.readUInt32LE(p + 32);
    e.crc = buf.readUInt32LE(p + 36);
    const n = buf.readUInt16LE(p + 40);
    let wanted = false;
    for (let k = 0; k < n && !wanted; k++) wanted = isWanted(buf.readUInt32LE(p + 42 + 4 * k));
    e.wanted = wanted;
    p += 42 + 4 * n;
    visit(e);
  }
}

/** The trace id of the entry visitEntries passes. */
export function entryTraceId(view: ChunkView, e: EntryScratch): string {
  return view.buf.toString('latin1', e.idStart, e.idStart + e.idLength);
}

/** Reads the chunk at `at` up to its entries ('end' when the file ends there or the chunk is cut short). */
export function viewIndexChunk(buf: Buffer, at: number): { kind: 'chunk'; view: ChunkView } | { kind: 'end' } | { kind: 'bad'; reason: string } {
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
    return { kind: 'chunk', view: { coveredStart, coveredEnd, newNames, count, buf, entriesAt: p + 4, end } };
  } catch {
    return { kind: 'bad', reason: 'index chunk names past its end' };
  }
}

/** The whole chunks of an index file as views, in order, up to the first bad or cut one. */
export function viewIndexChunks(buf: Buffer): { views: ChunkView[]; stopped?: string } {
  const views: ChunkView[] = [];
  let at = 0;
  for (;;) {
    const d = viewIndexChunk(buf, at);
    if (d.kind === 'end') return at === buf.length ? { views } : { views, stopped: 'a chunk ends past the end of the file' };
    if (d.kind === 'bad') return { views, stopped: d.reason };
    views.push(d.view);
    at = d.view.end;
  }
}

export type DecodedIndexChunk = { readonly kind: 'chunk'; readonly size: number; readonly chunk: IndexChunk } | { readonly kind: 'end' } | { readonly kind: 'bad'; readonly reason: string };

/** Decodes the chunk at `at`, entries as objects ('end' when the file ends there or a chunk is cut short: a write in progress or torn). */
export function decodeIndexChunk(buf: Buffer, at: number): DecodedIndexChunk {
  const d = viewIndexChunk(buf, at);
  if (d.kind !== 'chunk') return d;
  const v = d.view;
  try {
    let p = v.entriesAt;
    const entries: IndexEntry[] = [];
    for (let i = 0; i < v.count; i++) {
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
    if (p !== v.end) return { kind: 'bad', reason: 'index chunk longer than its entries' };
    return { kind: 'chunk', size: v.end - at, chunk: { coveredStart: v.coveredStart, coveredEnd: v.coveredEnd, newNames: v.newNames, entries } };
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
