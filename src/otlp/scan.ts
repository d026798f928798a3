/**
 * A byte-level look at one trace part (an ExportTraceServiceRequest): span
 * count, trace id, parentless spans, earliest span start and whether any span
 * name is one of a set of names (the rules' triggers), without decoding the
 * spans. Workers read every consumed record through it (which trace, how many
 * spans, holds a root); replay also skips, whole, the traces no rule can fail
 * on (a trace holding none of their triggers, src/rules/README.md "Evaluation")
 * and places each trace in time before anything is decoded.
 *
 * Only the framing needed to reach span fields 1 (trace_id), 4
 * (parent_span_id), 5 (name) and 7 (start_time_unix_nano) is walked;
 * everything else is skipped by length. A malformed message throws WireError.
 */
import { toHex } from './hex.ts';
import type { Utf8Set } from './utf8-set.ts';
import { WireError, uint32LE } from './wire.ts';

/** Span names to look for (the rules' triggers). */
export { Utf8Set as NameMatcher } from './utf8-set.ts';

export interface PartScan {
  /** Trace id (hex) of the first span; '' when the part holds no span with a 16-byte trace id. */
  readonly traceId: string;
  /** True when spans of more than one trace are in the part (split it with splitByTrace). */
  readonly multipleTraces: boolean;
  readonly spanCount: number;
  /** Spans without an 8-byte parent span id. */
  readonly rootSpans: number;
  /** Earliest span start, unix ms (floor); Infinity when no span has a start time. */
  readonly earliestStartMs: number;
  /** Some span's name is one of the matcher's names (false without a matcher). */
  readonly triggered: boolean;
}

// Tags: field number << 3 | wire type.
const TAG_RESOURCE_SPANS = (1 << 3) | 2;
const TAG_SCOPE_SPANS = (2 << 3) | 2;
const TAG_SPAN = (2 << 3) | 2;
const TAG_TRACE_ID = (1 << 3) | 2;
const TAG_PARENT = (4 << 3) | 2;
const TAG_NAME = (5 << 3) | 2;
const TAG_START = (7 << 3) | 1;

/** Module-level cursor: the scanner is synchronous and not re-entrant. */
let pos = 0;

function varint(buf: Uint8Array, end: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new WireError('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new WireError('varint longer than 10 bytes');
}

function skip(buf: Uint8Array, wireType: number, end: number): void {
  switch (wireType) {
    case 0:
      varint(buf, end);
      return;
    case 1:
      pos += 8;
      break;
    case 2: {
      const len = varint(buf, end);
      pos += len;
      break;
    }
    case 5:
      pos += 4;
      break;
    default:
      throw new WireError(`unsupported wire type ${wireType}`);
  }
  if (pos > end) throw new WireError('field runs past the end of its message');
}

/** [start, end) of a length-delimited field's content, the cursor moved past it. */
function len(buf: Uint8Array, end: number): number {
  const n = varint(buf, end);
  const start = pos;
  if (n > end - start) throw new WireError('length-delimited field runs past the end of its message');
  pos = start + n;
  return start;
}

/**
 * Unix ms (floor) of a fixed64 nanosecond time at `at`, exact: ns = hi·2^32 + lo
 * is split as hi·4294·10^6 + (hi·967296 + lo), both parts exact in a double.
 */
function startMs(buf: Uint8Array, at: number): number {
  const lo = uint32LE(buf, at);
  const hi = uint32LE(buf, at + 4);
  if (lo === 0 && hi === 0) return Infinity;
  return hi * 4294 + Math.floor((hi * 967296 + lo) / 1_000_000);
}

/** Scans one ExportTraceServiceRequest. Throws WireError when it is malformed. */
export function scanPart(buf: Uint8Array, matcher: Utf8Set | null): PartScan {
  let traceStart = -1;
  let multiple = false;
  let spanCount = 0;
  let rootSpans = 0;
  let earliest = Infinity;
  let triggered = false;
  const useNames = matcher !== null && matcher.size > 0;
  pos = 0;
  const end = buf.length;
  while (pos < end) {
    const tag = varint(buf, end);
    if (tag !== TAG_RESOURCE_SPANS) {
      skip(buf, tag & 7, end);
      continue;
    }
    const rsStart = len(buf, end);
    const rsEnd = pos;
    pos = rsStart;
    while (pos < rsEnd) {
      const rtag = varint(buf, rsEnd);
      if (rtag !== TAG_SCOPE_SPANS) {
        skip(buf, rtag & 7, rsEnd);
        continue;
      }
      const ssStart = len(buf, rsEnd);
      const ssEnd = pos;
      pos = ssStart;
      while (pos < ssEnd) {
        const stag = varint(buf, ssEnd);
        if (stag !== TAG_SPAN) {
          skip(buf, stag & 7, ssEnd);
          continue;
        }
        const spStart = len(buf, ssEnd);
        const spEnd = pos;
        pos = spStart;
        spanCount++;
        let hasParent = false;
        while (pos < spEnd) {
          // Tags and lengths of span fields are nearly always one byte: read inline.
          let t = buf[pos]!;
          if (t < 0x80) pos++;
          else t = varint(buf, spEnd);
          if ((t & 7) === 2) {
            let n = pos < spEnd ? buf[pos]! : 0x80;
            if (n < 0x80) pos++;
            else n = varint(buf, spEnd);
            if (n > spEnd - pos) throw new WireError('length-delimited field runs past the end of its message');
            const s = pos;
            pos += n;
            if (t === TAG_TRACE_ID) {
              if (n !== 16) continue;
              if (traceStart < 0) traceStart = s;
              else if (!multiple) {
                for (let i = 0; i < 16; i++) {
                  if (buf[s + i] !== buf[traceStart + i]) {
                    multiple = true;
                    break;
                  }
                }
              }
            } else if (t === TAG_PARENT) hasParent = n === 8;
            else if (t === TAG_NAME && useNames && !triggered && matcher.matches(buf, s, pos)) triggered = true;
          } else if (t === TAG_START) {
            if (spEnd - pos < 8) throw new WireError('truncated fixed64');
            const ms = startMs(buf, pos);
            if (ms < earliest) earliest = ms;
            pos += 8;
          } else skip(buf, t & 7, spEnd);
        }
        if (!hasParent) rootSpans++;
        pos = spEnd;
      }
      pos = ssEnd;
    }
    pos = rsEnd;
  }
  return {
    traceId: traceStart < 0 ? '' : toHex(buf.subarray(traceStart, traceStart + 16)),
    multipleTraces: multiple,
    spanCount,
    rootSpans,
    earliestStartMs: earliest,
    triggered,
  };
}
