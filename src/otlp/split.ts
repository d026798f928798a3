/**
 * Splits an OTLP ExportTraceServiceRequest into one request per trace, at the
 * byte level: spans, resources and scopes are copied as they arrived (unknown
 * fields included), so what is forwarded is what was received. Spans with invalid
 * ids are dropped and counted (the OTLP partial-success rules).
 */
import { TraceIdHex, isAllZero, toHex } from './hex.ts';
import { ResourceSchema, ScopeSchema, SpanSchema } from './otlp-schemas.ts';
import { scanPart, type PartScan } from './scan.ts';
import { WIRE_LEN, WireError, WireReader, checkMessage, uint32LE } from './wire.ts';

/** One trace's share of a request: an ExportTraceServiceRequest holding only its spans. */
export interface TracePart {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** ExportTraceServiceRequest protobuf; resources and scopes kept. */
  readonly payload: Uint8Array;
  readonly spanCount: number;
  /** Earliest span start in the part (0n when no span has a start time). */
  readonly earliestStartNs: bigint;
  /** Parentless spans in the part, when the reader counted them. */
  readonly rootSpans?: number;
}

export type SplitResult =
  | {
      readonly ok: true;
      readonly traces: TracePart[];
      readonly acceptedSpans: number;
      readonly rejectedSpans: number;
      /** Why spans were rejected, for partial_success.error_message ('' when none). */
      readonly errorMessage: string;
    }
  | { readonly ok: false; readonly error: string };

interface SpanRef {
  readonly start: number;
  readonly end: number;
  /** start_time_unix_nano as its high and low 32 bits (no BigInt per span). */
  readonly startHi: number;
  readonly startLo: number;
}

export interface SplitOptions {
  /** Largest part: a trace's spans that would make a larger one go into several parts. */
  readonly maxPartBytes?: number;
}
interface TraceGroup {
  traceId: string;
  /** resource index → scope index → spans */
  readonly resources: Map<number, Map<number, SpanRef[]>>;
}

/** Field framing kept verbatim: a whole field (tag, length and content). */
function slice(buf: Uint8Array, start: number, end: number): Uint8Array {
  return buf.subarray(start, end);
}

/**
 * Splits `request` by trace id. A malformed message yields `{ ok: false }`;
 * invalid span ids are rejected span by span.
 */
export function splitByTrace(request: Uint8Array, options: SplitOptions = {}): SplitResult {
  try {
    return split(request, options);
  } catch (err) {
    if (err instanceof WireError) return { ok: false, error: err.message };
    throw err;
  }
}

function split(buf: Uint8Array, options: SplitOptions): SplitResult {
  const traces = new Map<string, TraceGroup>();
  // Per resource: the verbatim non-scope fields; per scope: verbatim non-span fields.
  const resourceHeaders: Uint8Array[][] = [];
  const scopeHeaders: Uint8Array[][][] = [];
  let accepted = 0;
  let rejected = 0;
  const reasons = new Set<string>();

  const top = new WireReader(buf);
  while (!top.done()) {
    const tag = top.varint();
    if (tag !== ((1 << 3) | WIRE_LEN)) {
      top.skip(tag & 7);
      continue;
    }
    const [rsStart, rsEnd] = top.lenRange();
    const resourceIndex = resourceHeaders.length;
    const rHeader: Uint8Array[] = [];
    const rScopes: Uint8Array[][] = [];
    resourceHeaders.push(rHeader);
    scopeHeaders.push(rScopes);

    const rs = new WireReader(buf, rsStart, rsEnd);
    while (!rs.done()) {
      const fieldStart = rs.pos;
      const rtag = rs.varint();
      const field = Math.floor(rtag / 8);
      if (field === 2 && (rtag & 7) === WIRE_LEN) {
        const [ssStart, ssEnd] = rs.lenRange();
        const scopeIndex = rScopes.length;
        const sHeader: Uint8Array[] = [];
        rScopes.push(sHeader);
        const ss = new WireReader(buf, ssStart, ssEnd);
        while (!ss.done()) {
          const sFieldStart = ss.pos;
          const stag = ss.varint();
          const sfield = Math.floor(stag / 8);
          if (sfield === 2 && (stag & 7) === WIRE_LEN) {
            const [spStart, spEnd] = ss.lenRange();
            const outcome = readSpan(buf, spStart, spEnd);
            if (typeof outcome === 'string') {
              rejected++;
              reasons.add(outcome);
              continue;
            }
            accepted++;
            let group = traces.get(outcome.traceId);
            if (group === undefined) {
              group = { traceId: outcome.traceId, resources: new Map() };
              traces.set(outcome.traceId, group);
            }
            let scopes = group.resources.get(resourceIndex);
            if (scopes === undefined) {
              scopes = new Map();
              group.resources.set(resourceIndex, scopes);
            }
            let spans = scopes.get(scopeIndex);
            if (spans === undefined) {
              spans = [];
              scopes.set(scopeIndex, spans);
            }
            spans.push({ start: spStart, end: spEnd, startHi: outcome.startHi, startLo: outcome.startLo });
          } else {
            if (sfield === 1 && (stag & 7) === WIRE_LEN) {
              const [s, e] = ss.lenRange();
              checkMessage(buf, s, e, ScopeSchema);
            } else ss.skip(stag & 7);
            sHeader.push(slice(buf, sFieldStart, ss.pos));
          }
        }
      } else {
        if (field === 1 && (rtag & 7) === WIRE_LEN) {
          const [s, e] = rs.lenRange();
          checkMessage(buf, s, e, ResourceSchema);
        } else rs.skip(rtag & 7);
        rHeader.push(slice(buf, fieldStart, rs.pos));
      }
    }
  }

  const parts: TracePart[] = [];
  const maxBytes = options.maxPartBytes ?? Infinity;
  const headerSize = (chunks: readonly Uint8Array[]) => chunks.reduce((n, c) => n + c.length, 0) + 12;
  for (const group of traces.values()) {
    // Spans in arrival order with their resource and scope, packed into parts of at most maxBytes.
    let chunk = new Map<number, Map<number, SpanRef[]>>();
    let chunkBytes = 0;
    let chunkSpans = 0;
    let chunkStart: SpanRef | undefined; // the span starting first (a zero start counts as none)
    const flush = () => {
      if (chunkSpans === 0) return;
      const earliestStartNs = chunkStart === undefined ? 0n : (BigInt(chunkStart.startHi) << 32n) | BigInt(chunkStart.startLo);
      parts.push({ traceId: group.traceId, payload: encodeChunk(buf, chunk, resourceHeaders, scopeHeaders), spanCount: chunkSpans, earliestStartNs });
      chunk = new Map();
      chunkBytes = 0;
      chunkSpans = 0;
      chunkStart = undefined;
    };
    for (const [resourceIndex, scopes] of group.resources) {
      for (const [scopeIndex, spans] of scopes) {
        for (const span of spans) {
          const spanBytes = span.end - span.start + 6;
          const resourceNew = !chunk.has(resourceIndex);
          const scopeNew = resourceNew || !chunk.get(resourceIndex)!.has(scopeIndex);
          let need = spanBytes;
          if (resourceNew) need += headerSize(resourceHeaders[resourceIndex]!);
          if (scopeNew) need += headerSize(scopeHeaders[resourceIndex]![scopeIndex]!);
          const alone = spanBytes + headerSize(resourceHeaders[resourceIndex]!) + headerSize(scopeHeaders[resourceIndex]![scopeIndex]!);
          if (alone > maxBytes) {
            accepted--;
            rejected++;
            reasons.add(`span larger than the ${maxBytes}-byte record limit`);
            continue;
          }
          if (chunkBytes + need > maxBytes) flush();
          let cs = chunk.get(resourceIndex);
          if (cs === undefined) {
            cs = new Map();
            chunk.set(resourceIndex, cs);
            chunkBytes += headerSize(resourceHeaders[resourceIndex]!);
          }
          let list = cs.get(scopeIndex);
          if (list === undefined) {
            list = [];
            cs.set(scopeIndex, list);
            chunkBytes += headerSize(scopeHeaders[resourceIndex]![scopeIndex]!);
          }
          list.push(span);
          chunkBytes += spanBytes;
          chunkSpans++;
          if ((span.startHi !== 0 || span.startLo !== 0) && (chunkStart === undefined || startsBefore(span, chunkStart))) chunkStart = span;
        }
      }
    }
    flush();
  }
  return {
    ok: true,
    traces: parts,
    acceptedSpans: accepted,
    rejectedSpans: rejected,
    errorMessage: [...reasons].join('; '),
  };
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

const sum = (parts: readonly Uint8Array[]) => parts.reduce((n, p) => n + p.length, 0);

/** One request for the chunk's spans, sized first and written into a single buffer. */
function encodeChunk(
  buf: Uint8Array,
  chunk: Map<number, Map<number, SpanRef[]>>,
  resourceHeaders: Uint8Array[][],
  scopeHeaders: Uint8Array[][][],
): Uint8Array {
  const TAG = 1; // every field written here (resource_spans 1, scope_spans 2, spans 2) has a one-byte tag
  const resourceSizes = new Map<number, number>();
  const scopeSizes = new Map<Map<number, SpanRef[]>, Map<number, number>>();
  let total = 0;
  for (const [resourceIndex, scopes] of chunk) {
    let rsSize = sum(resourceHeaders[resourceIndex]!);
    const sizes = new Map<number, number>();
    for (const [scopeIndex, spans] of scopes) {
      let ssSize = sum(scopeHeaders[resourceIndex]![scopeIndex]!);
      for (const span of spans) ssSize += TAG + varintSize(span.end - span.start) + span.end - span.start;
      sizes.set(scopeIndex, ssSize);
      rsSize += TAG + varintSize(ssSize) + ssSize;
    }
    scopeSizes.set(scopes, sizes);
    resourceSizes.set(resourceIndex, rsSize);
    total += TAG + varintSize(rsSize) + rsSize;
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  const copy = (part: Uint8Array) => {
    out.set(part, at);
    at += part.length;
  };
  for (const [resourceIndex, scopes] of chunk) {
    out[at++] = (1 << 3) | WIRE_LEN;
    at = writeVarint(out, at, resourceSizes.get(resourceIndex)!);
    for (const h of resourceHeaders[resourceIndex]!) copy(h);
    const sizes = scopeSizes.get(scopes)!;
    for (const [scopeIndex, spans] of scopes) {
      out[at++] = (2 << 3) | WIRE_LEN;
      at = writeVarint(out, at, sizes.get(scopeIndex)!);
      for (const h of scopeHeaders[resourceIndex]![scopeIndex]!) copy(h);
      for (const span of spans) {
        out[at++] = (2 << 3) | WIRE_LEN;
        at = writeVarint(out, at, span.end - span.start);
        copy(buf.subarray(span.start, span.end));
      }
    }
  }
  return out;
}

function startsBefore(a: SpanRef, b: SpanRef): boolean {
  return a.startHi < b.startHi || (a.startHi === b.startHi && a.startLo < b.startLo);
}

const traceIds = new TraceIdHex();

/** Field positions of the span being read (fields 1, 2 and 7 are used). */
const spanFields = new Int32Array(16);

/** The span's trace id and start, or why it is rejected. Throws WireError when malformed. */
function readSpan(buf: Uint8Array, start: number, end: number): { traceId: string; startHi: number; startLo: number } | string {
  // One pass: the whole span checked against the schema, nested messages walked,
  // unknown fields skipped; where the trace id, span id and start are comes with it.
  spanFields.fill(-1);
  checkMessage(buf, start, end, SpanSchema, 0, spanFields);
  const traceStart = spanFields[2]!;
  const traceEnd = spanFields[3]!;
  const spanStart = spanFields[4]!;
  const spanEnd = spanFields[5]!;
  if (traceEnd - traceStart !== 16) return 'trace id must be 16 bytes';
  if (isAllZero(buf, traceStart, traceEnd)) return 'trace id must not be all zero';
  if (spanEnd - spanStart !== 8) return 'span id must be 8 bytes';
  if (isAllZero(buf, spanStart, spanEnd)) return 'span id must not be all zero';
  let startHi = 0;
  let startLo = 0;
  const at = spanFields[14]!;
  if (at >= 0) {
    startLo = uint32LE(buf, at);
    startHi = uint32LE(buf, at + 4);
  }
  return { traceId: traceIds.get(buf, traceStart), startHi, startLo };
}

/** Concatenated ExportTraceServiceRequest messages are one request holding all their resource spans. */
export function mergeRequests(payloads: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(payloads);
}

/**
 * The span count, trace ids and parentless (root) spans of an
 * ExportTraceServiceRequest, read from the wire without decoding the spans.
 * Throws WireError on a malformed message.
 */
export function scanRequest(buf: Uint8Array): { spanCount: number; traceIds: Set<string>; rootSpans: number } {
  const traceIds = new Set<string>();
  let spanCount = 0;
  let rootSpans = 0;
  const top = new WireReader(buf);
  while (!top.done()) {
    const tag = top.varint();
    if (tag !== ((1 << 3) | WIRE_LEN)) {
      top.skip(tag & 7);
      continue;
    }
    const [rsStart, rsEnd] = top.lenRange();
    const rs = new WireReader(buf, rsStart, rsEnd);
    while (!rs.done()) {
      const rtag = rs.varint();
      if (rtag !== ((2 << 3) | WIRE_LEN)) {
        rs.skip(rtag & 7);
        continue;
      }
      const [ssStart, ssEnd] = rs.lenRange();
      const ss = new WireReader(buf, ssStart, ssEnd);
      while (!ss.done()) {
        const stag = ss.varint();
        if (stag !== ((2 << 3) | WIRE_LEN)) {
          ss.skip(stag & 7);
          continue;
        }
        const [spStart, spEnd] = ss.lenRange();
        spanCount++;
        const sp = new WireReader(buf, spStart, spEnd);
        let hasParent = false;
        while (!sp.done()) {
          const t = sp.varint();
          if (t === ((1 << 3) | WIRE_LEN)) {
            const [s, e] = sp.lenRange();
            traceIds.add(toHex(buf.subarray(s, e)));
          } else if (t === ((4 << 3) | WIRE_LEN)) {
            const [s, e] = sp.lenRange();
            hasParent = e - s === 8;
          } else sp.skip(t & 7);
        }
        if (!hasParent) rootSpans++;
      }
    }
  }
  return { spanCount, traceIds, rootSpans };
}

/**
 * A consumed record's trace parts: its trace id read from the value (never the
 * key), split by trace should a producer have put several traces in one record.
 */
export function recordTraces(payload: Uint8Array): TracePart[] | undefined {
  let scan: PartScan;
  try {
    scan = scanPart(payload, null);
  } catch {
    return undefined;
  }
  if (scan.traceId === '') return [];
  if (!scan.multipleTraces) {
    return [{ traceId: scan.traceId, payload, spanCount: scan.spanCount, earliestStartNs: 0n, rootSpans: scan.rootSpans }];
  }
  const split = splitByTrace(payload);
  return split.ok ? split.traces : undefined;
}
