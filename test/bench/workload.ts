/**
 * The benchmark workload, fixed by a seed: traces of 5–200 spans across five
 * services, ~400 bytes and ~10 attributes per span, some events; delivered as
 * OTLP export requests the way SDK batch processors send them (one service's
 * spans of several traces per request), pre-encoded so the load generator
 * measures nothing but betrace.
 */
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import { prng } from '../helpers/prng.ts';

export const SERVICES = ['frontend', 'checkout', 'payments', 'shipping', 'ledger'] as const;
export const SPAN_NAMES = [
  'http.request', 'checkout.process', 'database.query', 'payment.charge', 'payment.confirm', 'shipment.initiate',
  'inventory.reserve', 'cache.get', 'audit.log', 'admin.action', 'email.sent', 'queue.publish', 'queue.consume',
  'auth.check', 'fraud.check', 'render', 'grpc.call', 'retry',
];


interface PlainSpan {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId: Buffer;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
  events: Array<{ timeUnixNano: string; name: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }>;
  status: { code: number };
}

export interface Workload {
  /** Pre-encoded ExportTraceServiceRequest bodies. */
  readonly requests: Buffer[];
  readonly spans: number;
  readonly traces: number;
}

/** `traceCount` traces; requests hold up to `batchSpans` spans of one service. */
export function buildWorkload(traceCount: number, options: { seed?: number; batchSpans?: number; baseTimeMs?: number; marker?: (t: number) => boolean } = {}): Workload {
  const rnd = prng(options.seed ?? 42);
  const batchSpans = options.batchSpans ?? 512;
  const baseNs = BigInt(options.baseTimeMs ?? Date.now()) * 1_000_000n;
  const byService = new Map<string, PlainSpan[]>(SERVICES.map((s) => [s, []]));
  const requests: Buffer[] = [];
  let spans = 0;
  const flush = (service: string) => {
    const list = byService.get(service)!;
    if (list.length === 0) return;
    requests.push(
      Buffer.from(
        ExportTraceServiceRequest.encode(
          ExportTraceServiceRequest.fromObject({
            resourceSpans: [
              {
                resource: {
                  attributes: [
                    { key: 'service.name', value: { stringValue: service } },
                    { key: 'service.version', value: { stringValue: '2.4.1' } },
                    { key: 'deployment.environment', value: { stringValue: 'production' } },
                    { key: 'host.name', value: { stringValue: `${service}-7d9f8c6b5-x2x4z` } },
                  ],
                },
                scopeSpans: [{ scope: { name: '@opentelemetry/instrumentation-http', version: '0.52.0' }, spans: list }],
              },
            ],
          }),
        ).finish(),
      ),
    );
    byService.set(service, []);
  };
  for (let t = 0; t < traceCount; t++) {
    const traceId = Buffer.alloc(16);
    traceId.writeUInt32BE(0xbe7a0000 + (options.seed ?? 42), 0);
    traceId.writeUInt32BE(t + 1, 12);
    const n = 5 + Math.floor(rnd() * 196);
    const ids: Buffer[] = [];
    const traceStart = baseNs + BigInt(t) * 1_000_000n;
    for (let i = 0; i < n; i++) {
      const spanId = Buffer.alloc(8);
      spanId.writeUInt32BE(t + 1, 0);
      spanId.writeUInt32BE(i + 1, 4);
      ids.push(spanId);
      const service = SERVICES[i === 0 ? 0 : Math.floor(rnd() * SERVICES.length)]!;
      const start = traceStart + BigInt(Math.floor(rnd() * 50_000_000));
      const name = options.marker?.(t) && i === n - 1 ? 'fraud.detected' : SPAN_NAMES[Math.floor(rnd() * SPAN_NAMES.length)]!;
      const span: PlainSpan = {
        traceId,
        spanId,
        parentSpanId: i === 0 ? Buffer.alloc(0) : ids[Math.floor(rnd() * i)]!,
        name,
        kind: 1 + Math.floor(rnd() * 3),
        startTimeUnixNano: start.toString(),
        endTimeUnixNano: (start + BigInt(Math.floor(rnd() * 20_000_000))).toString(),
        attributes: [
          { key: 'http.method', value: { stringValue: 'POST' } },
          { key: 'http.route', value: { stringValue: '/api/v1/orders/{id}' } },
          { key: 'http.status_code', value: { intValue: rnd() < 0.03 ? 500 : 200 } },
          { key: 'order.id', value: { stringValue: `ord-${t}` } },
          { key: 'payment_intent_id', value: { stringValue: `pi_${t}` } },
          { key: 'attempt', value: { intValue: 1 + Math.floor(rnd() * 2) } },
          { key: 'amount', value: { doubleValue: Math.floor(rnd() * 200_000) / 100 } },
          { key: 'tenant_filter', value: { boolValue: rnd() < 0.995 } },
          { key: 'table', value: { stringValue: rnd() < 0.5 ? 'tenant_data.orders' : 'catalog.items' } },
          { key: 'net.peer.name', value: { stringValue: 'payments.internal.svc.cluster.local' } },
        ],
        events: rnd() < 0.2 ? [{ timeUnixNano: start.toString(), name: 'retry', attributes: [{ key: 'reason', value: { stringValue: 'timeout' } }] }] : [],
        status: { code: rnd() < 0.02 ? 2 : 0 },
      };
      const list = byService.get(service)!;
      list.push(span);
      spans++;
      if (list.length >= batchSpans) flush(service);
    }
  }
  for (const s of SERVICES) flush(s);
  return { requests, spans, traces: traceCount };
}

/** Length-prefixed file of requests, for the load-generator process. */
export function packRequests(requests: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of requests) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(r.length);
    parts.push(len, r);
  }
  return Buffer.concat(parts);
}

export function unpackRequests(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos + 4 <= data.length) {
    const len = data.readUInt32BE(pos);
    out.push(data.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  return out;
}
