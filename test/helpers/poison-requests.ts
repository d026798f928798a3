/**
 * Requests betrace's receiver refuses but that can still reach the exporter (Kafka
 * records written by a Collector's own Kafka exporter are not validated at ingest):
 * for tests of what a Go-decoding downstream refuses.
 */

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

/**
 * The ExportTraceServiceRequest with a field number 0 (a varint) appended inside its
 * first ResourceSpans: the Collector's decoder answers INTERNAL "illegal field=0".
 */
export function withFieldZero(request: Uint8Array): Buffer {
  if (request[0] !== 0x0a) throw new Error('withFieldZero: the request must start with a ResourceSpans');
  let len = 0;
  let at = 1;
  for (let scale = 1; ; scale *= 0x80) {
    const b = request[at++]!;
    len += (b & 0x7f) * scale;
    if (b < 0x80) break;
  }
  const resourceSpans = Buffer.concat([request.subarray(at, at + len), Buffer.from([0x00, 0x01])]);
  return Buffer.concat([Buffer.from([0x0a, ...varint(resourceSpans.length)]), resourceSpans, request.subarray(at + len)]);
}
