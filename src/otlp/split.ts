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
import { TraceIdHex, isAllZero } from './hex.ts';
import { REQUEST_TAGS, ResourceSchema, ScopeSchema, SpanSchema } from './otlp-schemas.ts';
import { isPlausibleTimeMs, scanPart, wordsToMs, type PartScan } from './scan.ts';
import { WIRE_LEN, WireCursor, WireError, checkMessage, locateFault, uint32LE, wrongWireType, type MessageSchema } from './wire.ts';

const EMPTY = Buffer.alloc(0);

/** One trace's share of a request: an ExportTraceServiceRequest holding only its spans. */
export interface TracePart {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** ExportTraceServiceRequest protobuf; resources and scopes kept. */
  readonly payload: Uint8Array;
  readonly spanCount: number;
  /** Earliest plausible span start in the part (0n when no span has one: see isPlausibleTimeMs). */
  readonly earliestStartNs: bigint;
  /** Parentless spans in the part (spans without an 8-byte parent span id), when the reader counted them. */
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
 * Splits `request` by trace id (a splitter made for the call: a hot caller keeps a
 * TraceSplitter, whose columns are reused from request to request).
 */
export function splitByTrace(request: Uint8Array, options: SplitOptions = {}): SplitResult {
  return new TraceSplitter().split(request, options);
}

/** Rows a splitter keeps between requests; a larger request's are let go after it. */
const KEPT_ROWS = 1 << 16;

/**
 * The accepted spans of the request being split, one row each, in columns reused
 * from request to request (a split runs start to end without yielding): no object
 * per span. A trace's rows are linked in arrival order, which is resource then
 * scope order, so a trace's spans of one scope are consecutive rows of its list.
 */
class Rows {
  capacity = 0;
  /** The span's content: [start, end). */
  start = new Int32Array(0);
  end = new Int32Array(0);
  /**
   * Where a part can copy the span field from as it arrived: its tag when the tag and
   * length are the bytes a part writes for it (one-byte tag, shortest length), else
   * its content (a part writes the tag and length itself).
   */
  field = new Int32Array(0);
  /** start_time_unix_nano as its high and low 32 bits (no BigInt per span). */
  startHi = new Uint32Array(0);
  startLo = new Uint32Array(0);
  /** 1 for a span without an 8-byte parent span id (a root). */
  root = new Uint8Array(0);
  /** The request-wide index of the span's scope (ScopeSpans); -1: taken back. */
  scope = new Int32Array(0);
  /** The trace's next row; -1 after its last. */
  next = new Int32Array(0);
  /** A part's rows, then per resource and per scope of the part the size of its message. */
  partRows = new Int32Array(0);
  resourceSizes = new Int32Array(0);
  scopeSizes = new Int32Array(0);

  allocate(capacity: number): void {
    const grow = <T extends Int32Array | Uint32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old.subarray(0, Math.min(old.length, capacity)));
      return next;
    };
    const int32 = (n: number) => new Int32Array(n);
    this.start = grow(this.start, int32);
    this.end = grow(this.end, int32);
    this.field = grow(this.field, int32);
    this.startHi = grow(this.startHi, (n) => new Uint32Array(n));
    this.startLo = grow(this.startLo, (n) => new Uint32Array(n));
    this.root = grow(this.root, (n) => new Uint8Array(n));
    this.scope = grow(this.scope, int32);
    this.next = grow(this.next, int32);
    this.partRows = new Int32Array(capacity);
    this.resourceSizes = new Int32Array(capacity);
    this.scopeSizes = new Int32Array(capacity);
    this.capacity = capacity;
  }
}

/** A resource's or a scope's fields other than its scopes or spans, kept verbatim: [start, end) pairs. */
interface Header {
  readonly ranges: number[];
  /** Their bytes. */
  bytes: number;
}

/** The fault of a Resource or InstrumentationScope [start, end), as a path from `name`; '' when none. The cursor ends anywhere. */
function headerFault(c: WireCursor, start: number, end: number, schema: MessageSchema, name: string): string {
  try {
    checkMessage(c, start, end, schema);
    return '';
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    const located = locateFault(c.buf, start, end, schema, err);
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

const RESOURCE_SPANS_TAG = REQUEST_TAGS.resourceSpans;
const SCOPE_SPANS_TAG = REQUEST_TAGS.scopeSpans;
const SPAN_TAG = REQUEST_TAGS.spans;

/**
 * Splits requests by trace id; long-lived where requests arrive (the receiver's
 * ingest), its row columns and cursor reused by each split.
 */
export class TraceSplitter {
  readonly #rows = new Rows();
  readonly #cursor = new WireCursor();
  readonly #traceIds = new TraceIdHex();
  /** Where the walk is, for the path of a WireError: 0 the request, 1 resource_spans[#rs], 2 and its scope_spans[#ss]. */
  #level = 0;
  #rs = 0;
  #ss = 0;
  /** Field positions of the span being read (fields 1, 2, 4 and 7 are used). */
  readonly #spanFields = new Int32Array(16);
  /** Where #readSpan found the trace id, and the span's start as high and low 32 bits. */
  #traceAt = 0;
  #startHi = 0;
  #startLo = 0;
  #root = false;
  /** #readSpan's reason is a fault a decoder refuses the span for: the faulty field's path, from '.' or ':'. */
  #malformed = false;

  /**
   * Splits `request` by trace id. A request whose framing is malformed yields
   * `{ ok: false }`, the error naming the field; faulty spans are rejected span by span.
   */
  split(request: Uint8Array, options: SplitOptions = {}): SplitResult {
    try {
      return this.#split(Buffer.isBuffer(request) ? request : Buffer.from(request.buffer, request.byteOffset, request.byteLength), options);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      if (this.#level === 2) err.within(`scope_spans[${this.#ss}]`);
      if (this.#level >= 1) err.within(`resource_spans[${this.#rs}]`);
      return { ok: false, error: err.message };
    } finally {
      if (this.#rows.capacity > KEPT_ROWS) this.#rows.allocate(KEPT_ROWS);
      this.#cursor.reset(EMPTY); // the request is its parts' to keep alive, not the splitter's
    }
  }

  #split(buf: Buffer, options: SplitOptions): SplitResult {
    const rows = this.#rows;
    const c = this.#cursor;
    c.reset(buf);
    /** Per trace: its first and last row. */
    const traces = new Map<string, number>();
    const traceIdOf: string[] = [];
    const firstRow: number[] = [];
    const lastRow: number[] = [];
    const resourceHeaders: Header[] = [];
    const scopeHeaders: Header[] = [];
    /** Per scope: its resource's index. */
    const scopeResource: number[] = [];
    let used = 0;
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
      for (let row = from; row < used; row++) rows.scope[row] = -1;
      accepted -= used - from;
      refuse(used - from, where);
    };

    const end = buf.length;
    this.#level = 0;
    let rsIndex = 0;
    while (c.pos < end) {
      const tag = c.varint(end);
      if (tag !== RESOURCE_SPANS_TAG) {
        if (tag < 8) throw new WireError('field number 0');
        if (tag > 0xffffffff) throw new WireError('field number above 2^29 - 1');
        if (Math.floor(tag / 8) === RESOURCE_SPANS_TAG >>> 3) throw new WireError(wrongWireType(tag & 7, WIRE_LEN)).within(`resource_spans[${rsIndex}]`);
        c.skip(tag & 7, end);
        continue;
      }
      const rsStart = c.len(end);
      const rsEnd = c.pos;
      c.pos = rsStart;
      this.#level = 1;
      this.#rs = rsIndex++;
      const resourceIndex = resourceHeaders.length;
      const rHeader: Header = { ranges: [], bytes: 0 };
      resourceHeaders.push(rHeader);
      const rsFirstRow = used;
      let resourceFault = '';

      let ssIndex = 0;
      while (c.pos < rsEnd) {
        const fieldStart = c.pos;
        const rtag = c.varint(rsEnd);
        if (rtag !== SCOPE_SPANS_TAG) {
          containerField(rtag, 'resource', 'scope_spans', ssIndex);
          if (rtag === REQUEST_TAGS.resource) {
            const s = c.len(rsEnd);
            const e = c.pos;
            if (resourceFault === '') resourceFault = headerFault(c, s, e, ResourceSchema, 'resource');
            c.pos = e;
          } else if (rtag === REQUEST_TAGS.resourceSchemaUrl) {
            const s = c.len(rsEnd);
            if (resourceFault === '' && !c.isUtf8(s, c.pos)) resourceFault = 'schema_url: invalid UTF-8';
          } else if (Math.floor(rtag / 8) === 1000) {
            // The deprecated instrumentation_library_spans (field 1000, no longer in the .proto): its spans would
            // travel as part of the resource, uncounted and unevaluated, and a decoder that has scope_spans ignores them.
            throw new WireError('field 1000 (the deprecated instrumentation_library_spans) is not accepted: send spans in scope_spans (field 2)').within(
              `resource_spans[${this.#rs}]`,
            );
          } else c.skip(rtag & 7, rsEnd);
          rHeader.ranges.push(fieldStart, c.pos);
          rHeader.bytes += c.pos - fieldStart;
          continue;
        }
        const ssStart = c.len(rsEnd);
        const ssEnd = c.pos;
        c.pos = ssStart;
        this.#level = 2;
        this.#ss = ssIndex++;
        const scopeIndex = scopeHeaders.length;
        const sHeader: Header = { ranges: [], bytes: 0 };
        scopeHeaders.push(sHeader);
        scopeResource.push(resourceIndex);
        const ssFirstRow = used;
        let scopeFault = '';
        let spIndex = 0;
        while (c.pos < ssEnd) {
          const sFieldStart = c.pos;
          const stag = c.varint(ssEnd);
          if (stag === SPAN_TAG) {
            const spStart = c.len(ssEnd);
            const spEnd = c.pos;
            spIndex++;
            const reason = this.#readSpan(spStart, spEnd);
            c.pos = spEnd;
            if (reason !== undefined) {
              if (this.#malformed) refuse(1, `resource_spans[${this.#rs}].scope_spans[${this.#ss}].spans[${spIndex - 1}]${reason}`);
              else {
                rejected++;
                reasons.add(reason);
              }
              continue;
            }
            accepted++;
            if (used === rows.capacity) rows.allocate(Math.max(1024, rows.capacity * 2));
            const row = used++;
            rows.start[row] = spStart;
            rows.end[row] = spEnd;
            rows.field[row] = spStart - sFieldStart === 1 + varintSize(spEnd - spStart) ? sFieldStart : spStart;
            rows.startHi[row] = this.#startHi;
            rows.startLo[row] = this.#startLo;
            rows.root[row] = this.#root ? 1 : 0;
            rows.scope[row] = scopeIndex;
            rows.next[row] = -1;
            const traceId = this.#traceIds.get(buf, this.#traceAt);
            const trace = traces.get(traceId);
            if (trace === undefined) {
              traces.set(traceId, traceIdOf.length);
              traceIdOf.push(traceId);
              firstRow.push(row);
              lastRow.push(row);
            } else {
              rows.next[lastRow[trace]!] = row;
              lastRow[trace] = row;
            }
          } else {
            containerField(stag, 'scope', 'spans', spIndex);
            if (stag === REQUEST_TAGS.scope) {
              const s = c.len(ssEnd);
              const e = c.pos;
              if (scopeFault === '') scopeFault = headerFault(c, s, e, ScopeSchema, 'scope');
              c.pos = e;
            } else if (stag === REQUEST_TAGS.scopeSchemaUrl) {
              const s = c.len(ssEnd);
              if (scopeFault === '' && !c.isUtf8(s, c.pos)) scopeFault = 'schema_url: invalid UTF-8';
            } else c.skip(stag & 7, ssEnd);
            sHeader.ranges.push(sFieldStart, c.pos);
            sHeader.bytes += c.pos - sFieldStart;
          }
        }
        // The scope (or the resource) is every span's of it: its spans go with it.
        if (scopeFault !== '') retract(ssFirstRow, `resource_spans[${this.#rs}].scope_spans[${this.#ss}].${scopeFault}`);
        this.#level = 1;
        c.pos = ssEnd;
      }
      if (resourceFault !== '') retract(rsFirstRow, `resource_spans[${this.#rs}].${resourceFault}`);
      this.#level = 0;
      c.pos = rsEnd;
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
      let roots = 0;
      const flush = () => {
        if (count === 0) return;
        const earliestStartNs = startHi === 0 && startLo === 0 ? 0n : (BigInt(startHi) << 32n) | BigInt(startLo);
        parts.push({ traceId: traceIdOf[trace]!, payload: this.#encodePart(request, count), spanCount: count, earliestStartNs, rootSpans: roots });
        count = 0;
        partBytes = 0;
        lastScope = -1;
        startHi = 0;
        startLo = 0;
        roots = 0;
      };
      for (let row = firstRow[trace]!; row !== -1; row = rows.next[row]!) {
        const scope = rows.scope[row]!;
        if (scope === -1) continue; // taken back
        const resource = scopeResource[scope]!;
        const spanBytes = rows.end[row]! - rows.start[row]! + 6;
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
        rows.partRows[count++] = row;
        roots += rows.root[row]!;
        partBytes += need;
        lastScope = scope;
        const hi = rows.startHi[row]!;
        const lo = rows.startLo[row]!;
        if (isPlausibleTimeMs(wordsToMs(hi, lo)) && ((startHi === 0 && startLo === 0) || hi < startHi || (hi === startHi && lo < startLo))) {
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

  /**
   * One ExportTraceServiceRequest for the part's rows (rows.partRows[0, count), in
   * resource then scope order): sized first, then written into a single buffer.
   * Spans adjacent in the request with their framing as a part writes it are
   * copied together, in one copy.
   */
  #encodePart(request: Request, count: number): Buffer {
    const rows = this.#rows;
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
      const row = rows.partRows[k]!;
      if (rows.scope[row] !== scope) {
        if (scope !== -1) {
          rows.scopeSizes[scopes++] = scopeSize;
          resourceSize += 1 + varintSize(scopeSize) + scopeSize;
        }
        scope = rows.scope[row]!;
        if (scopeResource[scope] !== resource) {
          if (resource !== -1) {
            rows.resourceSizes[resources++] = resourceSize;
            total += 1 + varintSize(resourceSize) + resourceSize;
          }
          resource = scopeResource[scope]!;
          resourceSize = resourceHeaders[resource]!.bytes;
        }
        scopeSize = scopeHeaders[scope]!.bytes;
      }
      const length = rows.end[row]! - rows.start[row]!;
      scopeSize += 1 + varintSize(length) + length;
    }
    rows.scopeSizes[scopes] = scopeSize;
    resourceSize += 1 + varintSize(scopeSize) + scopeSize;
    rows.resourceSizes[resources] = resourceSize;
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
      const row = rows.partRows[k]!;
      if (rows.scope[row] !== scope) {
        copyWaiting();
        to = -1;
        scope = rows.scope[row]!;
        if (scopeResource[scope] !== resource) {
          resource = scopeResource[scope]!;
          out[at++] = RESOURCE_SPANS_TAG;
          at = writeVarint(out, at, rows.resourceSizes[resources++]!);
          copyHeader(resourceHeaders[resource]!);
        }
        out[at++] = SCOPE_SPANS_TAG;
        at = writeVarint(out, at, rows.scopeSizes[scopes++]!);
        copyHeader(scopeHeaders[scope]!);
      }
      const field = rows.field[row]!;
      const content = rows.start[row]!;
      if (field === content) {
        // Framing written here, the content copied.
        copyWaiting();
        out[at++] = SPAN_TAG;
        at = writeVarint(out, at, rows.end[row]! - content);
        from = content;
      } else if (field !== to) {
        copyWaiting();
        from = field;
      }
      to = rows.end[row]!;
    }
    copyWaiting();
    if (at !== total) throw new Error(`split: wrote ${at} of ${total} bytes`);
    return out;
  }

  /**
   * Why the span is rejected, or undefined (#traceAt and #start* then say where
   * its trace id is, and its start). A span whose bytes a decoder refuses (its own
   * framing intact) is rejected alone: #malformed is then true. The cursor ends anywhere.
   */
  #readSpan(start: number, end: number): string | undefined {
    const c = this.#cursor;
    const buf = c.buf;
    const spanFields = this.#spanFields;
    // One pass: the whole span checked against the schema, nested messages walked,
    // unknown fields skipped; where the trace id, span id and start are comes with it.
    spanFields[2] = spanFields[3] = spanFields[4] = spanFields[5] = spanFields[8] = spanFields[9] = spanFields[14] = -1;
    this.#malformed = false;
    try {
      checkMessage(c, start, end, SpanSchema, 0, spanFields);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      this.#malformed = true;
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
    this.#startHi = 0;
    this.#startLo = 0;
    this.#root = spanFields[9] - spanFields[8] !== 8;
    const at = spanFields[14];
    if (at >= 0) {
      this.#startLo = uint32LE(buf, at);
      this.#startHi = uint32LE(buf, at + 4);
    }
    this.#traceAt = traceStart;
    return undefined;
  }
}

/** Concatenated ExportTraceServiceRequest messages are one request holding all their resource spans. */
export function mergeRequests(payloads: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(payloads);
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
