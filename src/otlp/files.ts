/**
 * Reading trace files: OTLP/JSON (one request per document or per line, as the
 * Collector's file exporter writes with `format: json`) and OTLP protobuf (one
 * message, or the file exporter's `format: proto` stream of 4-byte big-endian
 * length-prefixed messages).
 */
import { readFile } from 'node:fs/promises';
import type { SpanRecord } from '../rules/span.ts';
import { jsonTextToProtobuf } from './json.ts';
import { decodeSpans } from './spans.ts';
import { ExportTraceServiceRequest } from './schema.ts';

export class TraceFileError extends Error {
  override name = 'TraceFileError';
}

/** Every ExportTraceServiceRequest in the file, as protobuf bytes (each fully decoded to check it). Throws TraceFileError. */
export async function readTraceFileRequests(path: string): Promise<Uint8Array[]> {
  const data = await readFile(path).catch((err: unknown) => {
    throw new TraceFileError(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  });
  return traceFileRequests(path, data, (messages) => messages.every(isValidRequest));
}

/**
 * The requests in a trace file's bytes: JSON (whole, or a document per line),
 * else protobuf: the file exporter's stream of 4-byte big-endian
 * length-prefixed messages when the file frames exactly that way and `accepts`
 * takes the messages, else the file as one message when `accepts` takes it.
 * Throws TraceFileError.
 */
export function traceFileRequests(path: string, data: Buffer, accepts: (messages: readonly Uint8Array[]) => boolean): Uint8Array[] {
  const firstNonSpace = data.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (firstNonSpace === undefined) return [];
  if (firstNonSpace === 0x7b /* '{' */) return jsonRequests(path, data.toString('utf8'));
  const framed = lengthFramed(data);
  if (framed !== undefined && accepts(framed)) return framed;
  if (accepts([data])) return [data];
  throw new TraceFileError(`${path}: not OTLP JSON or protobuf (ExportTraceServiceRequest)`);
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

function jsonRequests(path: string, text: string): Uint8Array[] {
  const whole = jsonTextToProtobuf(text);
  if (whole.ok && whole.rejectedSpans > 0) throw new TraceFileError(`${path}: ${whole.errorMessage}`);
  if (whole.ok) return [whole.protobuf];
  const out: Uint8Array[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const r = jsonTextToProtobuf(line);
    if (!r.ok) throw new TraceFileError(`${path}:${i + 1}: ${r.error}`);
    if (r.rejectedSpans > 0) throw new TraceFileError(`${path}:${i + 1}: ${r.errorMessage}`);
    out.push(r.protobuf);
  }
  return out;
}

function isValidRequest(bytes: Uint8Array): boolean {
  try {
    ExportTraceServiceRequest.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** All spans in an OTLP trace file. */
export async function readTraceFile(path: string): Promise<SpanRecord[]> {
  const out: SpanRecord[] = [];
  for (const request of await readTraceFileRequests(path)) for (const s of decodeSpans(request)) out.push(s);
  return out;
}
