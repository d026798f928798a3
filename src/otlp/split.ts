/**
 * Splits an OTLP ExportTraceServiceRequest into one request per trace, at the
 * byte level: spans, resources and scopes are copied as they arrived (unknown
 * fields included), so what is forwarded is what was received. Spans with invalid
 * ids are dropped and counted (the OTLP partial-success rules).
 */
import { isAllZero, toHex } from './hex.ts';
import { ResourceSchema, ScopeSchema, SpanSchema } from './otlp-schemas.ts';
import { WIRE_FIXED64, WIRE_LEN, WireError, WireReader, WireWriter, checkMessage } from './wire.ts';

/** One trace's share of a request: an ExportTraceServiceRequest holding only its spans. */
export interface TracePart {
  /** 32 lowercase hex characters. */
  readonly traceId: string;
  /** ExportTraceServiceRequest protobuf; resources and scopes kept. */
  readonly payload: Uint8Array;
  readonly spanCount: number;
  /** Earliest span start in the part (0n when no span has a start time). */
  readonly earliestStartNs: bigint;
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
  start: number;
  end: number;
}
interface TraceGroup {
  traceId: string;
  spanCount: number;
  earliestStartNs: bigint;
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
export function splitByTrace(request: Uint8Array): SplitResult {
  try {
    return split(request);
  } catch (err) {
    if (err instanceof WireError) return { ok: false, error: err.message };
    throw err;
  }
}

function split(buf: Uint8Array): SplitResult {
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
              group = { traceId: outcome.traceId, spanCount: 0, earliestStartNs: 0n, resources: new Map() };
              traces.set(outcome.traceId, group);
            }
            group.spanCount++;
            if (outcome.startNs > 0n && (group.earliestStartNs === 0n || outcome.startNs < group.earliestStartNs)) {
              group.earliestStartNs = outcome.startNs;
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
            spans.push({ start: spStart, end: spEnd });
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
  for (const group of traces.values()) {
    const request = new WireWriter();
    for (const [resourceIndex, scopes] of group.resources) {
      const rsw = new WireWriter();
      for (const h of resourceHeaders[resourceIndex]!) rsw.raw(h);
      for (const [scopeIndex, spans] of scopes) {
        const ssw = new WireWriter();
        for (const h of scopeHeaders[resourceIndex]![scopeIndex]!) ssw.raw(h);
        for (const span of spans) ssw.lenField(2, buf.subarray(span.start, span.end));
        rsw.lenField(2, ssw);
      }
      request.lenField(1, rsw);
    }
    parts.push({
      traceId: group.traceId,
      payload: request.finish(),
      spanCount: group.spanCount,
      earliestStartNs: group.earliestStartNs,
    });
  }
  return {
    ok: true,
    traces: parts,
    acceptedSpans: accepted,
    rejectedSpans: rejected,
    errorMessage: [...reasons].join('; '),
  };
}

/** The span's trace id and start, or why it is rejected. Throws WireError when malformed. */
function readSpan(buf: Uint8Array, start: number, end: number): { traceId: string; startNs: bigint } | string {
  checkMessage(buf, start, end, SpanSchema);
  let traceId: Uint8Array | undefined;
  let spanId: Uint8Array | undefined;
  let startNs = 0n;
  const r = new WireReader(buf, start, end);
  while (!r.done()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    if (field === 1 && (tag & 7) === WIRE_LEN) {
      const [s, e] = r.lenRange();
      traceId = buf.subarray(s, e);
    } else if (field === 2 && (tag & 7) === WIRE_LEN) {
      const [s, e] = r.lenRange();
      spanId = buf.subarray(s, e);
    } else if (field === 7 && (tag & 7) === WIRE_FIXED64) {
      startNs = r.fixed64BigInt();
    } else r.skip(tag & 7);
  }
  if (traceId === undefined || traceId.length !== 16) return 'trace id must be 16 bytes';
  if (isAllZero(traceId)) return 'trace id must not be all zero';
  if (spanId === undefined || spanId.length !== 8) return 'span id must be 8 bytes';
  if (isAllZero(spanId)) return 'span id must not be all zero';
  return { traceId: toHex(traceId), startNs };
}

/** Concatenated ExportTraceServiceRequest messages are one request holding all their resource spans. */
export function mergeRequests(payloads: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(payloads);
}
