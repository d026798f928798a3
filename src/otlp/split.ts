/**
 * Splits an OTLP ExportTraceServiceRequest into one request per trace, at the
 * byte level: spans, resources and scopes are copied as they arrived (unknown
 * fields included), so what is forwarded is what was received. What is forwarded is
 * also what every conformant protobuf decoder accepts: a fault in the request's own
 * framing, or a ResourceSpans' or ScopeSpans', refuses the request; a span that a
 * decoder would refuse (malformed inside, a string not UTF-8) or whose ids are
 * invalid is rejected alone, and the spans of a resource or scope so refused with it
 * (the OTLP partial-success rules).
 */
import { TraceIdHex, isAllZero, toHex } from './hex.ts';
import { ResourceSchema, ScopeSchema, SpanSchema } from './otlp-schemas.ts';
import { scanPart, type PartScan } from './scan.ts';
import { WIRE_LEN, WireError, WireReader, checkMessage, isUtf8Range, locateFault, releaseUtf8View, uint32LE, wrongWireType, type MessageSchema } from './wire.ts';

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
      /**
       * Of the rejected spans, those a conformant decoder would refuse (malformed, a string
       * not UTF-8), with the spans of a resource or scope so refused.
       */
      readonly malformedSpans: number;
      /** Why spans were rejected, for partial_success.error_message ('' when none); a malformed span's names the field. */
      readonly errorMessage: string;
    }
  | { readonly ok: false; readonly error: string };

export interface SplitOptions {
  /** Largest part: a trace's spans that would make a larger one go into several parts. */
  readonly maxPartBytes?: number;
}

/**
 * Splits `request` by trace id. A request whose framing is malformed yields
 * `{ ok: false }`, the error naming the field; faulty spans are rejected span by span.
 */
export function splitByTrace(request: Uint8Array, options: SplitOptions = {}): SplitResult {
  try {
    return split(Buffer.isBuffer(request) ? request : Buffer.from(request.buffer, request.byteOffset, request.byteLength), options);
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    if (walkLevel === 2) err.within(`scope_spans[${walkSs}]`);
    if (walkLevel >= 1) err.within(`resource_spans[${walkRs}]`);
    return { ok: false, error: err.message };
  } finally {
    if (rowCapacity > KEPT_ROWS) allocateRows(KEPT_ROWS);
    releaseUtf8View();
  }
}

/*
 * The accepted spans of the request being split, one row each, in columns reused
 * from request to request (a split runs start to end without yielding): no object
 * per span. A trace's rows are linked in arrival order, which is resource then
 * scope order, so a trace's spans of one scope are consecutive rows of its list.
 */
const KEPT_ROWS = 1 << 16;
let rowCapacity = 0;
/** The span's content: [rowStart, rowEnd). */
let rowStart = new Int32Array(0);
let rowEnd = new Int32Array(0);
/**
 * Where a part can copy the span field from as it arrived: its tag when the tag and
 * length are the bytes a part writes for it (one-byte tag, shortest length), else
 * its content (a part writes the tag and length itself).
 */
let rowField = new Int32Array(0);
/** start_time_unix_nano as its high and low 32 bits (no BigInt per span). */
let rowStartHi = new Uint32Array(0);
let rowStartLo = new Uint32Array(0);
/** The request-wide index of the span's scope (ScopeSpans). */
let rowScope = new Int32Array(0);
/** The trace's next row; -1 after its last. */
let rowNext = new Int32Array(0);
/** A part's rows, then per resource and per scope of the part the size of its message. */
let partRows = new Int32Array(0);
let resourceSizes = new Int32Array(0);
let scopeSizes = new Int32Array(0);

function allocateRows(capacity: number): void {
  const grow = <T extends Int32Array | Uint32Array>(old: T, make: (n: number) => T): T => {
    const next = make(capacity);
    next.set(old.subarray(0, Math.min(old.length, capacity)));
    return next;
  };
  const int32 = (n: number) => new Int32Array(n);
  rowStart = grow(rowStart, int32);
  rowEnd = grow(rowEnd, int32);
  rowField = grow(rowField, int32);
  rowStartHi = grow(rowStartHi, (n) => new Uint32Array(n));
  rowStartLo = grow(rowStartLo, (n) => new Uint32Array(n));
  rowScope = grow(rowScope, int32);
  rowNext = grow(rowNext, int32);
  partRows = new Int32Array(capacity);
  resourceSizes = new Int32Array(capacity);
  scopeSizes = new Int32Array(capacity);
  rowCapacity = capacity;
}

/** A resource's or a scope's fields other than its scopes or spans, kept verbatim: [start, end) pairs. */
interface Header {
  readonly ranges: number[];
  /** Their bytes. */
  bytes: number;
}

/** Where split is, for the path of a WireError: 0 the request, 1 resource_spans[walkRs], 2 and its scope_spans[walkSs]. */
let walkLevel = 0;
let walkRs = 0;
let walkSs = 0;

/** The fault of a Resource or InstrumentationScope [start, end), as a path from `name`; '' when none. */
function headerFault(buf: Uint8Array, start: number, end: number, schema: MessageSchema, name: string): string {
  try {
    checkMessage(buf, start, end, schema);
    return '';
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    const located = locateFault(buf, start, end, schema, err);
    return `${name}${located.path.length === 0 ? ': ' : '.'}${located.message}`;
  }
}

/**
 * A field of a ResourceSpans or ScopeSpans that is not field 2 (its scope spans or
 * spans): field number 0, a known field (1, 3) of another wire type than
 * length-delimited are faults no decoder reads past (WireError).
 */
function containerField(tag: number, header: string, children: string, index: number): void {
  if (tag < 8) throw new WireError('field number 0');
  if (tag > 0xffffffff) throw new WireError('field number above 2^29 - 1');
  const field = Math.floor(tag / 8);
  if (field <= 3 && (tag & 7) !== WIRE_LEN) {
    throw new WireError(wrongWireType(tag & 7, WIRE_LEN)).within(field === 1 ? header : field === 2 ? `${children}[${index}]` : 'schema_url');
  }
}

function split(buf: Buffer, options: SplitOptions): SplitResult {
  /** Per trace: its first and last row. */
  const traces = new Map<string, number>();
  const traceIdOf: string[] = [];
  const firstRow: number[] = [];
  const lastRow: number[] = [];
  const resourceHeaders: Header[] = [];
  const scopeHeaders: Header[] = [];
  /** Per scope: its resource's index. */
  const scopeResource: number[] = [];
  let rows = 0;
  let accepted = 0;
  let rejected = 0;
  const reasons = new Set<string>();
  /** Spans rejected as a decoder would refuse them (malformed, invalid UTF-8): how many, the first's fault. */
  let malformed = 0;
  let firstMalformed = '';
  const refuse = (spans: number, where: string) => {
    if (spans === 0) return;
    rejected += spans;
    malformed += spans;
    if (firstMalformed === '') firstMalformed = where;
  };
  /** Rows from `from` on (a resource's or scope's, found at fault after its spans were read) taken back. */
  const retract = (from: number, where: string) => {
    for (let row = from; row < rows; row++) rowScope[row] = -1;
    accepted -= rows - from;
    refuse(rows - from, where);
  };

  const top = new WireReader(buf);
  walkLevel = 0;
  let rsIndex = 0;
  while (!top.done()) {
    const tag = top.varint();
    if (tag !== ((1 << 3) | WIRE_LEN)) {
      if (tag < 8) throw new WireError('field number 0');
      if (tag > 0xffffffff) throw new WireError('field number above 2^29 - 1');
      if (Math.floor(tag / 8) === 1) throw new WireError(wrongWireType(tag & 7, WIRE_LEN)).within(`resource_spans[${rsIndex}]`);
      top.skip(tag & 7);
      continue;
    }
    const [rsStart, rsEnd] = top.lenRange();
    walkLevel = 1;
    walkRs = rsIndex++;
    const resourceIndex = resourceHeaders.length;
    const rHeader: Header = { ranges: [], bytes: 0 };
    resourceHeaders.push(rHeader);
    const rsFirstRow = rows;
    let resourceFault = '';

    const rs = new WireReader(buf, rsStart, rsEnd);
    let ssIndex = 0;
    while (!rs.done()) {
      const fieldStart = rs.pos;
      const rtag = rs.varint();
      if (rtag !== ((2 << 3) | WIRE_LEN)) {
        containerField(rtag, 'resource', 'scope_spans', ssIndex);
        if (rtag === ((1 << 3) | WIRE_LEN)) {
          const [s, e] = rs.lenRange();
          if (resourceFault === '') resourceFault = headerFault(buf, s, e, ResourceSchema, 'resource');
        } else if (rtag === ((3 << 3) | WIRE_LEN)) {
          const [s, e] = rs.lenRange();
          if (resourceFault === '' && !isUtf8Range(buf, s, e)) resourceFault = 'schema_url: invalid UTF-8';
        } else if (Math.floor(rtag / 8) === 1000) {
          // The deprecated instrumentation_library_spans: its spans would travel as part of the
          // resource, uncounted and unevaluated, and a decoder that has scope_spans ignores them.
          throw new WireError('field 1000 (the deprecated instrumentation_library_spans) is not accepted: send spans in scope_spans (field 2)').within(
            `resource_spans[${walkRs}]`,
          );
        }
        else rs.skip(rtag & 7);
        rHeader.ranges.push(fieldStart, rs.pos);
        rHeader.bytes += rs.pos - fieldStart;
        continue;
      }
      const [ssStart, ssEnd] = rs.lenRange();
      walkLevel = 2;
      walkSs = ssIndex++;
      const scopeIndex = scopeHeaders.length;
      const sHeader: Header = { ranges: [], bytes: 0 };
      scopeHeaders.push(sHeader);
      scopeResource.push(resourceIndex);
      const ssFirstRow = rows;
      let scopeFault = '';
      const ss = new WireReader(buf, ssStart, ssEnd);
      let spIndex = 0;
      while (!ss.done()) {
        const sFieldStart = ss.pos;
        const stag = ss.varint();
        if (stag === ((2 << 3) | WIRE_LEN)) {
          const [spStart, spEnd] = ss.lenRange();
          spIndex++;
          const reason = readSpan(buf, spStart, spEnd);
          if (reason !== undefined) {
            if (readSpanMalformed) refuse(1, `resource_spans[${walkRs}].scope_spans[${walkSs}].spans[${spIndex - 1}]${reason}`);
            else {
              rejected++;
              reasons.add(reason);
            }
            continue;
          }
          accepted++;
          if (rows === rowCapacity) allocateRows(Math.max(1024, rowCapacity * 2));
          const row = rows++;
          rowStart[row] = spStart;
          rowEnd[row] = spEnd;
          rowField[row] = spStart - sFieldStart === 1 + varintSize(spEnd - spStart) ? sFieldStart : spStart;
          rowStartHi[row] = readStartHi;
          rowStartLo[row] = readStartLo;
          rowScope[row] = scopeIndex;
          rowNext[row] = -1;
          const traceId = traceIds.get(buf, readTraceAt);
          const trace = traces.get(traceId);
          if (trace === undefined) {
            traces.set(traceId, traceIdOf.length);
            traceIdOf.push(traceId);
            firstRow.push(row);
            lastRow.push(row);
          } else {
            rowNext[lastRow[trace]!] = row;
            lastRow[trace] = row;
          }
        } else {
          containerField(stag, 'scope', 'spans', spIndex);
          if (stag === ((1 << 3) | WIRE_LEN)) {
            const [s, e] = ss.lenRange();
            if (scopeFault === '') scopeFault = headerFault(buf, s, e, ScopeSchema, 'scope');
          } else if (stag === ((3 << 3) | WIRE_LEN)) {
            const [s, e] = ss.lenRange();
            if (scopeFault === '' && !isUtf8Range(buf, s, e)) scopeFault = 'schema_url: invalid UTF-8';
          } else ss.skip(stag & 7);
          sHeader.ranges.push(sFieldStart, ss.pos);
          sHeader.bytes += ss.pos - sFieldStart;
        }
      }
      // The scope (or the resource) is every span's of it: its spans go with it.
      if (scopeFault !== '') retract(ssFirstRow, `resource_spans[${walkRs}].scope_spans[${walkSs}].${scopeFault}`);
      walkLevel = 1;
    }
    if (resourceFault !== '') retract(rsFirstRow, `resource_spans[${walkRs}].${resourceFault}`);
    walkLevel = 0;
  }

  const parts: TracePart[] = [];
  const maxBytes = options.maxPartBytes ?? Infinity;
  const request: Request = { buf, resourceHeaders, scopeHeaders, scopeResource };
  for (let trace = 0; trace < traceIdOf.length; trace++) {
    // The trace's spans in arrival order, packed into parts of at most maxBytes
    // (a part's size estimated as before encoding: 6 bytes of framing per span, 12 per header).
    let count = 0;
    let partBytes = 0;
    let lastScope = -1;
    let startHi = 0;
    let startLo = 0; // the earliest start of the part (0, 0: none)
    const flush = () => {
      if (count === 0) return;
      const earliestStartNs = startHi === 0 && startLo === 0 ? 0n : (BigInt(startHi) << 32n) | BigInt(startLo);
      parts.push({ traceId: traceIdOf[trace]!, payload: encodePart(request, count), spanCount: count, earliestStartNs });
      count = 0;
      partBytes = 0;
      lastScope = -1;
      startHi = 0;
      startLo = 0;
    };
    for (let row = firstRow[trace]!; row !== -1; row = rowNext[row]!) {
      const scope = rowScope[row]!;
      if (scope === -1) continue; // taken back
      const resource = scopeResource[scope]!;
      const spanBytes = rowEnd[row]! - rowStart[row]! + 6;
      const resourceBytes = resourceHeaders[resource]!.bytes + 12;
      const scopeBytes = scopeHeaders[scope]!.bytes + 12;
      if (spanBytes + resourceBytes + scopeBytes > maxBytes) {
        accepted--;
        rejected++;
        reasons.add(`span larger than the ${maxBytes}-byte record limit`);
        continue;
      }
      let need = spanBytes;
      if (scope !== lastScope) {
        need += scopeBytes;
        if (lastScope === -1 || resource !== scopeResource[lastScope]) need += resourceBytes;
      }
      if (partBytes + need > maxBytes) {
        flush();
        need = spanBytes + resourceBytes + scopeBytes;
      }
      partRows[count++] = row;
      partBytes += need;
      lastScope = scope;
      const hi = rowStartHi[row]!;
      const lo = rowStartLo[row]!;
      if ((hi !== 0 || lo !== 0) && ((startHi === 0 && startLo === 0) || hi < startHi || (hi === startHi && lo < startLo))) {
        startHi = hi;
        startLo = lo;
      }
    }
    flush();
  }
  const messages = [...reasons];
  if (malformed > 0) messages.unshift(malformed === 1 ? firstMalformed : `${firstMalformed} (${malformed} spans rejected as malformed)`);
  return {
    ok: true,
    traces: parts,
    acceptedSpans: accepted,
    rejectedSpans: rejected,
    malformedSpans: malformed,
    errorMessage: messages.join('; '),
  };
}

interface Request {
  readonly buf: Buffer;
  readonly resourceHeaders: readonly Header[];
  readonly scopeHeaders: readonly Header[];
  readonly scopeResource: readonly number[];
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

const RESOURCE_SPANS_TAG = (1 << 3) | WIRE_LEN;
const SCOPE_SPANS_TAG = (2 << 3) | WIRE_LEN;
const SPAN_TAG = (2 << 3) | WIRE_LEN;

/**
 * One ExportTraceServiceRequest for the part's rows (partRows[0, count), in
 * resource then scope order): sized first, then written into a single buffer.
 * Spans adjacent in the request with their framing as a part writes it are
 * copied together, in one copy.
 */
function encodePart(request: Request, count: number): Buffer {
  const { buf, resourceHeaders, scopeHeaders, scopeResource } = request;
  // Sizes of the part's ScopeSpans and ResourceSpans, in order.
  let resources = 0;
  let scopes = 0;
  let total = 0;
  let resource = -1;
  let scope = -1;
  let resourceSize = 0;
  let scopeSize = 0;
  for (let k = 0; k < count; k++) {
    const row = partRows[k]!;
    if (rowScope[row] !== scope) {
      if (scope !== -1) {
        scopeSizes[scopes++] = scopeSize;
        resourceSize += 1 + varintSize(scopeSize) + scopeSize;
      }
      scope = rowScope[row]!;
      if (scopeResource[scope] !== resource) {
        if (resource !== -1) {
          resourceSizes[resources++] = resourceSize;
          total += 1 + varintSize(resourceSize) + resourceSize;
        }
        resource = scopeResource[scope]!;
        resourceSize = resourceHeaders[resource]!.bytes;
      }
      scopeSize = scopeHeaders[scope]!.bytes;
    }
    const length = rowEnd[row]! - rowStart[row]!;
    scopeSize += 1 + varintSize(length) + length;
  }
  scopeSizes[scopes] = scopeSize;
  resourceSize += 1 + varintSize(scopeSize) + scopeSize;
  resourceSizes[resources] = resourceSize;
  total += 1 + varintSize(resourceSize) + resourceSize;

  const out = Buffer.allocUnsafe(total);
  let at = 0;
  // Bytes of the request waiting to be copied: [from, to), none while to is -1.
  let from = -1;
  let to = -1;
  const copyWaiting = () => {
    if (to !== -1) at += buf.copy(out, at, from, to);
  };
  const copyHeader = (header: Header) => {
    const ranges = header.ranges;
    for (let i = 0; i < ranges.length; i += 2) at += buf.copy(out, at, ranges[i], ranges[i + 1]);
  };
  resources = 0;
  scopes = 0;
  resource = -1;
  scope = -1;
  for (let k = 0; k < count; k++) {
    const row = partRows[k]!;
    if (rowScope[row] !== scope) {
      copyWaiting();
      to = -1;
      scope = rowScope[row]!;
      if (scopeResource[scope] !== resource) {
        resource = scopeResource[scope]!;
        out[at++] = RESOURCE_SPANS_TAG;
        at = writeVarint(out, at, resourceSizes[resources++]!);
        copyHeader(resourceHeaders[resource]!);
      }
      out[at++] = SCOPE_SPANS_TAG;
      at = writeVarint(out, at, scopeSizes[scopes++]!);
      copyHeader(scopeHeaders[scope]!);
    }
    const field = rowField[row]!;
    const content = rowStart[row]!;
    if (field === content) {
      // Framing written here, the content copied.
      copyWaiting();
      out[at++] = SPAN_TAG;
      at = writeVarint(out, at, rowEnd[row]! - content);
      from = content;
    } else if (field !== to) {
      copyWaiting();
      from = field;
    }
    to = rowEnd[row]!;
  }
  copyWaiting();
  if (at !== total) throw new Error(`split: wrote ${at} of ${total} bytes`);
  return out;
}

const traceIds = new TraceIdHex();

/** Field positions of the span being read (fields 1, 2 and 7 are used). */
const spanFields = new Int32Array(16);
/** Where readSpan found the trace id, and the span's start as high and low 32 bits. */
let readTraceAt = 0;
/** readSpan's reason is a fault a decoder refuses the span for: the faulty field's path, from '.' or ':'. */
let readSpanMalformed = false;
let readStartHi = 0;
let readStartLo = 0;

/**
 * Why the span is rejected, or undefined (readTraceAt and readStart* then say where
 * its trace id is, and its start). A span whose bytes a decoder refuses (its own
 * framing intact) is rejected alone: readSpanMalformed is then true.
 */
function readSpan(buf: Uint8Array, start: number, end: number): string | undefined {
  // One pass: the whole span checked against the schema, nested messages walked,
  // unknown fields skipped; where the trace id, span id and start are comes with it.
  spanFields[2] = spanFields[3] = spanFields[4] = spanFields[5] = spanFields[14] = -1;
  readSpanMalformed = false;
  try {
    checkMessage(buf, start, end, SpanSchema, 0, spanFields);
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    readSpanMalformed = true;
    const located = locateFault(buf, start, end, SpanSchema, err);
    return located.path.length === 0 ? `: ${located.message}` : `.${located.message}`;
  }
  const traceStart = spanFields[2];
  const traceEnd = spanFields[3];
  const spanStart = spanFields[4];
  const spanEnd = spanFields[5];
  if (traceEnd - traceStart !== 16) return 'trace id must be 16 bytes';
  if (isAllZero(buf, traceStart, traceEnd)) return 'trace id must not be all zero';
  if (spanEnd - spanStart !== 8) return 'span id must be 8 bytes';
  if (isAllZero(buf, spanStart, spanEnd)) return 'span id must not be all zero';
  readStartHi = 0;
  readStartLo = 0;
  const at = spanFields[14];
  if (at >= 0) {
    readStartLo = uint32LE(buf, at);
    readStartHi = uint32LE(buf, at + 4);
  }
  readTraceAt = traceStart;
  return undefined;
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
