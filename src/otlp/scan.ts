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
import { REQUEST_TAGS, SpanSchema } from './otlp-schemas.ts';
import { WIRE_LEN, WireCursor, WireError, uint32LE } from './wire.ts';

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
  /** Earliest plausible span start, unix ms (floor); Infinity when no span has one (see isPlausibleTimeMs). */
  readonly earliestStartMs: number;
  /** Spans whose start time is 0 or not plausible: left out of earliestStartMs. */
  readonly untimedSpans: number;
  /** Some span's name is one of the matcher's names (false without a matcher). */
  readonly triggered: boolean;
}

// Tags (field number << 3 | wire type), from the .proto.
const TAG_RESOURCE_SPANS = REQUEST_TAGS.resourceSpans;
const TAG_SCOPE_SPANS = REQUEST_TAGS.scopeSpans;
const TAG_SPAN = REQUEST_TAGS.spans;
const TAG_TRACE_ID = SpanSchema.tag('trace_id');
const TAG_PARENT = SpanSchema.tag('parent_span_id');
const TAG_NAME = SpanSchema.tag('name');
const TAG_START = SpanSchema.tag('start_time_unix_nano');

const utf8 = new TextDecoder();

/** Span times before 2000-01-01 or from 2100-01-01 on are not placed in time (a clock unset, a unit mistaken). */
export const PLAUSIBLE_FROM_MS = Date.UTC(2000, 0, 1);
export const PLAUSIBLE_TO_MS = Date.UTC(2100, 0, 1);

/** Whether a span time (unix ms) is one to place a trace by: in [2000-01-01, 2100-01-01). */
export function isPlausibleTimeMs(ms: number): boolean {
  return ms >= PLAUSIBLE_FROM_MS && ms < PLAUSIBLE_TO_MS;
}

/**
 * Unix ms (floor) of a fixed64 nanosecond time at `at`, exact: ns = hi·2^32 + lo
 * is split as hi·4294·10^6 + (hi·967296 + lo), both parts exact in a double.
 */
function startMs(buf: Uint8Array, at: number): number {
  return wordsToMs(uint32LE(buf, at + 4), uint32LE(buf, at));
}

/** Unix ms (floor) of the nanosecond time whose high and low 32 bits are hi, lo. */
export function wordsToMs(hi: number, lo: number): number {
  return hi * 4294 + Math.floor((hi * 967296 + lo) / 1_000_000);
}

/**
 * Scans one ExportTraceServiceRequest. Throws WireError when it is malformed.
 * With `names`, every span name (UTF-8, as on the wire) is added to it (the trace index's names).
 */
export function scanPart(buf: Uint8Array, matcher: Utf8Set | null, names?: Set<string>): PartScan {
  let traceStart = -1;
  let multiple = false;
  let spanCount = 0;
  let rootSpans = 0;
  let earliest = Infinity;
  let timed = 0;
  let triggered = false;
  const useNames = matcher !== null && matcher.size > 0;
  const c = new WireCursor(buf);
  const end = buf.length;
  while (c.pos < end) {
    const tag = c.varint(end);
    if (tag !== TAG_RESOURCE_SPANS) {
      c.skip(tag & 7, end);
      continue;
    }
    const rsStart = c.len(end);
    const rsEnd = c.pos;
    c.pos = rsStart;
    while (c.pos < rsEnd) {
      const rtag = c.varint(rsEnd);
      if (rtag !== TAG_SCOPE_SPANS) {
        c.skip(rtag & 7, rsEnd);
        continue;
      }
      const ssStart = c.len(rsEnd);
      const ssEnd = c.pos;
      c.pos = ssStart;
      while (c.pos < ssEnd) {
        const stag = c.varint(ssEnd);
        if (stag !== TAG_SPAN) {
          c.skip(stag & 7, ssEnd);
          continue;
        }
        const spStart = c.len(ssEnd);
        const spEnd = c.pos;
        c.pos = spStart;
        spanCount++;
        let hasParent = false;
        let spanMs = 0;
        while (c.pos < spEnd) {
          const t = c.varint(spEnd);
          if ((t & 7) === WIRE_LEN) {
            const s = c.len(spEnd);
            const n = c.pos - s;
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
            else if (t === TAG_NAME) {
              if (useNames && !triggered && matcher.matches(buf, s, c.pos)) triggered = true;
              if (names !== undefined) names.add(utf8.decode(buf.subarray(s, c.pos)));
            }
          } else if (t === TAG_START) {
            if (spEnd - c.pos < 8) throw new WireError('truncated fixed-size field');
            spanMs = startMs(buf, c.pos); // the last occurrence, as a decoder reads it
            c.pos += 8;
          } else c.skip(t & 7, spEnd);
        }
        if (!hasParent) rootSpans++;
        if (spanMs >= PLAUSIBLE_FROM_MS && spanMs < PLAUSIBLE_TO_MS) {
          timed++;
          if (spanMs < earliest) earliest = spanMs;
        }
        c.pos = spEnd;
      }
      c.pos = ssEnd;
    }
    c.pos = rsEnd;
  }
  return {
    traceId: traceStart < 0 ? '' : toHex(buf.subarray(traceStart, traceStart + 16)),
    multipleTraces: multiple,
    spanCount,
    rootSpans,
    earliestStartMs: earliest,
    untimedSpans: spanCount - timed,
    triggered,
  };
}
