/**
 * Frames of trace records on local disk: the receiver's spool and the embedded
 * transport's local history write the records (the same records as the Kafka spans
 * topic) in these frames, one frame per send.
 *
 * One frame:
 *   header, 16 bytes: magic "BTSP", version (1), 3 reserved bytes, body length (u32 LE),
 *                     CRC-32C (u32 LE) of the header's first 12 bytes and the body;
 *   body:             appended at (unix ms, f64 LE), record count (u32 LE), then per record:
 *                     trace id length (u8), trace id (ASCII), timestampMs (f64), spanCount (u32),
 *                     rootSpans (i32, -1 when not set), payload length (u32), payload.
 *
 * A frame cut short (a crash mid-write) decodes as `incomplete`; damage as `bad`.
 */
import { crc32c } from '@node-rs/crc32';
import type { TraceRecord } from './transport.ts';

const MAGIC = Buffer.from('BTSP', 'latin1');
const VERSION = 1;
/** Bytes of a frame's header. */
export const FRAME_HEADER_BYTES = 16;

export type DecodedFrame =
  | { readonly kind: 'frame'; readonly size: number; readonly appendedAtMs: number; readonly records: TraceRecord[] }
  | { readonly kind: 'incomplete'; readonly size: number }
  | { readonly kind: 'bad'; readonly reason: string };

/** Encodes one frame; the returned records are views into its bytes. */
export function encodeFrame(records: readonly TraceRecord[], appendedAtMs: number): { buf: Buffer; records: TraceRecord[] } {
  let bodyBytes = 12;
  for (const r of records) {
    const idBytes = Buffer.byteLength(r.traceId, 'latin1');
    if (idBytes > 255) throw new Error(`trace id longer than 255 bytes: ${r.traceId.slice(0, 40)}…`);
    bodyBytes += 1 + idBytes + 8 + 4 + 4 + 4 + r.payload.length;
  }
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
  MAGIC.copy(buf, 0);
  buf.writeUInt8(VERSION, 4);
  buf.fill(0, 5, 8);
  buf.writeUInt32LE(bodyBytes, 8);
  let p = FRAME_HEADER_BYTES;
  buf.writeDoubleLE(appendedAtMs, p);
  buf.writeUInt32LE(records.length, p + 8);
  p += 12;
  const views: TraceRecord[] = [];
  for (const r of records) {
    const idBytes = buf.write(r.traceId, p + 1, 'latin1');
    buf.writeUInt8(idBytes, p);
    p += 1 + idBytes;
    buf.writeDoubleLE(r.timestampMs, p);
    buf.writeUInt32LE(r.spanCount, p + 8);
    buf.writeInt32LE(r.rootSpans ?? -1, p + 12);
    buf.writeUInt32LE(r.payload.length, p + 16);
    p += 20;
    buf.set(r.payload, p);
    views.push(recordView(r.traceId, r.timestampMs, r.spanCount, r.rootSpans, buf.subarray(p, p + r.payload.length)));
    p += r.payload.length;
  }
  buf.writeUInt32LE(frameCrc(buf, 0, bodyBytes), 12);
  return { buf, records: views };
}

function recordView(traceId: string, timestampMs: number, spanCount: number, rootSpans: number | undefined, payload: Uint8Array): TraceRecord {
  return rootSpans === undefined ? { traceId, timestampMs, spanCount, payload } : { traceId, timestampMs, spanCount, rootSpans, payload };
}

function frameCrc(buf: Buffer, at: number, bodyBytes: number): number {
  return crc32c(buf.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + bodyBytes), crc32c(buf.subarray(at, at + 12)));
}

/** Decodes the frame at `at` of `buf` (which may end before the frame does). */
export function decodeFrame(buf: Buffer, at: number): DecodedFrame {
  if (buf.length - at < FRAME_HEADER_BYTES) return { kind: 'incomplete', size: FRAME_HEADER_BYTES };
  if (buf.compare(MAGIC, 0, 4, at, at + 4) !== 0) return { kind: 'bad', reason: 'no frame header' };
  const version = buf.readUInt8(at + 4);
  if (version !== VERSION) return { kind: 'bad', reason: `unknown frame version ${version}` };
  const bodyBytes = buf.readUInt32LE(at + 8);
  const size = FRAME_HEADER_BYTES + bodyBytes;
  if (bodyBytes < 12) return { kind: 'bad', reason: `frame body of ${bodyBytes} bytes` };
  if (buf.length - at < size) return { kind: 'incomplete', size };
  if (frameCrc(buf, at, bodyBytes) !== buf.readUInt32LE(at + 12)) return { kind: 'bad', reason: 'CRC-32C mismatch' };
  const end = at + size;
  let p = at + FRAME_HEADER_BYTES;
  const appendedAtMs = buf.readDoubleLE(p);
  const count = buf.readUInt32LE(p + 8);
  p += 12;
  const records: TraceRecord[] = [];
  for (let i = 0; i < count; i++) {
    if (p + 1 > end) return { kind: 'bad', reason: 'record past the frame end' };
    const idBytes = buf.readUInt8(p);
    if (p + 1 + idBytes + 20 > end) return { kind: 'bad', reason: 'record past the frame end' };
    const traceId = buf.toString('latin1', p + 1, p + 1 + idBytes);
    p += 1 + idBytes;
    const timestampMs = buf.readDoubleLE(p);
    const spanCount = buf.readUInt32LE(p + 8);
    const rootSpans = buf.readInt32LE(p + 12);
    const payloadBytes = buf.readUInt32LE(p + 16);
    p += 20;
    if (p + payloadBytes > end) return { kind: 'bad', reason: 'record past the frame end' };
    records.push(recordView(traceId, timestampMs, spanCount, rootSpans < 0 ? undefined : rootSpans, buf.subarray(p, p + payloadBytes)));
    p += payloadBytes;
  }
  if (p !== end) return { kind: 'bad', reason: 'frame longer than its records' };
  return { kind: 'frame', size, appendedAtMs, records };
}

