/**
 * Reading trace files: OTLP/JSON (one request per document or per line, as the
 * Collector's file exporter writes with `format: json`) and OTLP protobuf (one
 * message, or the file exporter's `format: proto` stream of 4-byte big-endian
 * length-prefixed messages). JSON ids are read in either form, decided per
 * file: hex, as OTLP/JSON defines them, or base64, the proto3 JSON mapping's
 * form for bytes (what protojson and Python's MessageToJson write).
 */
import { readFile } from 'node:fs/promises';
import type { SpanRecord } from '../rules/span.ts';
import { fromBase64Id, jsonValueToProtobuf, parseJsonText, type IdForm } from './json.ts';
import { fromHexId } from './hex.ts';
import { SpanDecoder } from './span-decoder.ts';
import { ExportTraceServiceRequest } from './schema.ts';

export class TraceFileError extends Error {
  override name = 'TraceFileError';
}

/** What a trace file was read as. */
export interface TraceFileContents {
  /** Every ExportTraceServiceRequest in the file, as protobuf bytes. */
  readonly requests: Uint8Array[];
  /** `empty`: nothing but whitespace. */
  readonly format: 'json' | 'protobuf' | 'empty';
  /** JSON only: how its ids are written (undefined when it has no span). */
  readonly idForm?: IdForm;
}

const EXPECTED = 'expected an OTLP ExportTraceServiceRequest (or TracesData) with "resourceSpans", in JSON (one per file or one per line) or protobuf';

/** Every request in the file (each fully decoded to check it). Throws TraceFileError. */
export async function readTraceFileRequests(path: string): Promise<TraceFileContents> {
  const data = await readFile(path).catch((err: unknown) => {
    throw new TraceFileError(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  });
  return traceFileRequests(path, data, (messages) => messages.every(isValidRequest));
}

/**
 * The requests in a trace file's bytes: JSON (whole, or a document per line;
 * every document an object with `resourceSpans`, its ids all hex or all base64),
 * else protobuf: the file exporter's stream of 4-byte big-endian
 * length-prefixed messages when the file frames exactly that way and `accepts`
 * takes the messages, else the file as one message when `accepts` takes it.
 * Throws TraceFileError.
 */
export function traceFileRequests(path: string, data: Buffer, accepts: (messages: readonly Uint8Array[]) => boolean): TraceFileContents {
  const firstNonSpace = data.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (firstNonSpace === undefined) return { requests: [], format: 'empty' };
  if (firstNonSpace === 0x7b /* '{' */ || firstNonSpace === 0x5b /* '[' */) return jsonRequests(path, data.toString('utf8'));
  const framed = lengthFramed(data);
  if (framed !== undefined && accepts(framed)) return { requests: framed, format: 'protobuf' };
  if (accepts([data])) return { requests: [data], format: 'protobuf' };
  throw new TraceFileError(`${path}: not OTLP JSON or protobuf; ${EXPECTED}`);
}
/** The messages of a length-prefixed stream, or undefined unless the data frames exactly. */
function lengthFramed(data: Buffer): Uint8Array[] | undefined {
  const framed: Uint8Array[] = [];
  let pos = 0;
  while (pos + 4 <= data.length) {
    const len = data.readUInt32BE(pos);
    if (pos + 4 + len > data.length) break;
    framed.push(data.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  return pos === data.length && framed.length > 0 ? framed : undefined;
}

/** The JSON documents of a file: the whole text, else one per non-empty line (each with its line number). */
function jsonDocuments(path: string, text: string): { value: unknown; line?: number }[] {
  const whole = parseJsonText(text);
  if (whole.ok) return [{ value: whole.value }];
  const lines = text.split('\n');
  const docs: { value: unknown; line?: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const r = parseJsonText(line);
    // Not JSON lines either (the first line is no document): the whole text's error says more (truncated, …).
    if (!r.ok) throw new TraceFileError(docs.length === 0 ? `${path}: ${whole.error}` : `${path}:${i + 1}: ${r.error}`);
    docs.push({ value: r.value, line: i + 1 });
  }
  return docs;
}

type IdsSeen = { form: IdForm; where: string } | undefined;

/**
 * The form of the ids of the spans of `doc` (with what `seen` already found in
 * the file): every id hex, or every id base64. Throws TraceFileError naming the
 * span whose id is neither, or of the other form.
 */
function idFormOf(doc: unknown, at: string, line: number | undefined, seen: IdsSeen): IdsSeen {
  const get = (o: unknown, camel: string, snake: string): unknown => (typeof o === 'object' && o !== null ? ((o as Record<string, unknown>)[camel] ?? (o as Record<string, unknown>)[snake]) : undefined);
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const check = (v: unknown, bytes: number, what: string, where: string, optional: boolean): void => {
    if ((v === undefined || v === null || v === '') && optional) return;
    const form: IdForm | undefined = fromHexId(v, bytes) !== undefined ? 'hex' : fromBase64Id(v, bytes) !== undefined ? 'base64' : undefined;
    if (form === undefined) {
      const shown = v === undefined || v === null ? 'missing' : JSON.stringify(v);
      throw new TraceFileError(`${at}${where}: ${what} ${shown} is neither ${bytes * 2} hex digits (OTLP/JSON) nor base64 of ${bytes} bytes (proto3 JSON mapping)`);
    }
    if (seen === undefined) seen = { form, where: `${line === undefined ? '' : `line ${line}: `}${where}` };
    else if (seen.form !== form) {
      throw new TraceFileError(`${at}${where}: ${what} ${JSON.stringify(v)} is ${form} but the ids at ${seen.where} are ${seen.form}: a file's ids are all hex (OTLP/JSON) or all base64 (proto3 JSON mapping)`);
    }
  };
  list(get(doc, 'resourceSpans', 'resource_spans')).forEach((rs, i) => {
    list(get(rs, 'scopeSpans', 'scope_spans')).forEach((ss, j) => {
      list(get(ss, 'spans', 'spans')).forEach((span, k) => {
        const name = get(span, 'name', 'name');
        const where = `resourceSpans[${i}].scopeSpans[${j}].spans[${k}]${typeof name === 'string' ? ` (${JSON.stringify(name)})` : ''}`;
        check(get(span, 'traceId', 'trace_id'), 16, 'traceId', where, false);
        check(get(span, 'spanId', 'span_id'), 8, 'spanId', where, false);
        check(get(span, 'parentSpanId', 'parent_span_id'), 8, 'parentSpanId', where, true);
        list(get(span, 'links', 'links')).forEach((link, l) => {
          check(get(link, 'traceId', 'trace_id'), 16, `links[${l}].traceId`, where, false);
          check(get(link, 'spanId', 'span_id'), 8, `links[${l}].spanId`, where, false);
        });
      });
    });
  });
  return seen;
}

function jsonRequests(path: string, text: string): TraceFileContents {
  const docs = jsonDocuments(path, text);
  let seen: IdsSeen;
  for (const { value, line } of docs) {
    const at = line === undefined ? `${path}: ` : `${path}:${line}: `;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TraceFileError(`${at}not OTLP: a JSON ${Array.isArray(value) ? 'array' : typeof value}; ${EXPECTED}`);
    if (!('resourceSpans' in value) && !('resource_spans' in value)) {
      const keys = Object.keys(value);
      throw new TraceFileError(`${at}not OTLP: no "resourceSpans" (${keys.length === 0 ? 'an empty object' : `keys ${keys.slice(0, 5).map((k) => JSON.stringify(k)).join(', ')}`}); ${EXPECTED}`);
    }
    seen = idFormOf(value, at, line, seen);
  }
  const idForm = seen?.form;
  const requests = docs.map(({ value, line }) => {
    const r = jsonValueToProtobuf(value, idForm ?? 'hex');
    const at = line === undefined ? path : `${path}:${line}`;
    if (!r.ok) throw new TraceFileError(`${at}: ${r.error}`);
    if (r.rejectedSpans > 0) throw new TraceFileError(`${at}: ${r.errorMessage}`);
    return r.protobuf;
  });
  return { requests, format: 'json', ...(idForm === undefined ? {} : { idForm }) };
}

function isValidRequest(bytes: Uint8Array): boolean {
  try {
    ExportTraceServiceRequest.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** All spans in an OTLP trace file, with what it was read as. Throws TraceFileError, also when the file holds no span. */
export async function readTraceFile(path: string): Promise<TraceFileContents & { spans: SpanRecord[] }> {
  const contents = await readTraceFileRequests(path);
  const spans: SpanRecord[] = [];
  const decoder = new SpanDecoder();
  for (const request of contents.requests) for (const s of decoder.decode(request)) spans.push(s);
  if (spans.length === 0) {
    const read =
      contents.format === 'empty'
        ? 'the file is empty'
        : `read as OTLP ${contents.format === 'json' ? 'JSON' : 'protobuf'}: ${contents.requests.length} request${contents.requests.length === 1 ? '' : 's'} without spans`;
    throw new TraceFileError(`${path}: holds no spans (${read})`);
  }
  return { ...contents, spans };
}
