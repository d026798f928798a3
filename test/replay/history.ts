/**
 * Simulated history for replay tests: shop traces (the span shapes of
 * test/helpers/shop.ts) built directly as OTLP protobuf with chosen timestamps,
 * and the records betrace's receiver would have written for them (one per
 * (service export, trace): key = trace id hex, value = that trace's spans of one
 * service, timestamp = earliest span start), partitioned with saramaPartition.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Kafka, logLevel } from 'kafkajs';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import type { ReplayReport } from '../../src/replay/index.ts';
import { saramaPartition } from '../../src/transport/partitioner.ts';

export const DAY_MS = 86_400_000;
/** The fixed base: day k of the history is [BASE − k days, BASE − (k−1) days). */
export const BASE_MS = Date.UTC(2025, 5, 1);
export const dayStart = (k: number): number => BASE_MS - k * DAY_MS;
export const dayName = (k: number): string => new Date(dayStart(k)).toISOString().slice(0, 10);

export type Breaks = 'payment-idempotency' | 'admin-audit-log' | 'shipment-requires-payment' | 'cross-tenant-isolation';

export interface SimSpan {
  service: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  startMs: number;
  durationMs: number;
  attributes: Record<string, string | number | boolean>;
}

export interface SimTrace {
  traceId: string;
  startMs: number;
  breaks?: Breaks;
  spans: SimSpan[];
}

export interface SimRecord {
  key: string;
  value: Buffer;
  timestampMs: number;
  /** When the service exported it (records are produced in this order). */
  arrivalMs: number;
}

/** What a replay through an index must share with the full scan of the same history. */
export function replayAnswer(r: ReplayReport): unknown {
  return {
    violations: r.violations.map((v) => [v.violation_id, v.rule_id, v.trace_id, v.day, v.partial]),
    per_day: r.per_day,
    per_rule: r.per_rule,
    total: r.total,
    traces_scanned: r.traces_scanned,
    spans_scanned: r.spans_scanned,
    traces_skipped: r.traces_skipped,
    traces_partial: r.traces_partial,
    late_records: r.late_records,
    spans_without_time: r.spans_without_time,
    traces_without_time: r.traces_without_time,
  };
}

/** Deterministic ids from a seed. */
function id(seed: string, bytes: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, bytes * 2);
}

/** A checkout trace starting at `startMs` (spans within ~3 s), breaking one rule or none. */
export function shopTrace(seed: string, startMs: number, breaks?: Breaks, options: { admin?: boolean } = {}): SimTrace {
  const traceId = id(`trace-${seed}`, 16);
  let n = 0;
  const spans: SimSpan[] = [];
  const add = (service: string, name: string, parent: SimSpan | undefined, offsetMs: number, durationMs: number, attributes: SimSpan['attributes'] = {}): SimSpan => {
    const s: SimSpan = { service, spanId: id(`${seed}-${n++}`, 8), parentSpanId: parent?.spanId ?? '', name, startMs: startMs + offsetMs, durationMs, attributes };
    spans.push(s);
    return s;
  };
  const orderId = `order-${seed}`;
  const root = add('frontend', 'http.request', undefined, 0, 3000, { 'http.route': '/checkout', 'order.id': orderId });
  const checkout = add('checkout', 'checkout.process', root, 10, 2900, { 'order.id': orderId });
  add('checkout', 'database.query', checkout, 20, 30, { table: 'tenant_data.orders', tenant_filter: breaks !== 'cross-tenant-isolation' });
  const intent = `pi-${seed}`;
  add('payments', 'payment.charge', checkout, 100, 200, { attempt: 1, payment_intent_id: intent, amount: 42.5 });
  add('payments', 'payment.charge', checkout, 400, 200, { attempt: 2, payment_intent_id: breaks === 'payment-idempotency' ? `${intent}-new` : intent, amount: 42.5 });
  if (breaks === 'shipment-requires-payment') {
    add('shipping', 'shipment.initiate', checkout, 700, 100, { 'order.id': orderId });
    add('payments', 'payment.confirm', checkout, 900, 50, { 'order.id': orderId });
  } else {
    add('payments', 'payment.confirm', checkout, 700, 50, { 'order.id': orderId });
    add('shipping', 'shipment.initiate', checkout, 900, 100, { 'order.id': orderId });
  }
  if (options.admin === true || breaks === 'admin-audit-log') {
    add('admin', 'admin.action', root, 1500, 20, { action: 'override' });
    if (breaks !== 'admin-audit-log') add('admin', 'audit.log', root, 1600, 10, { action: 'override' });
  }
  return { traceId, startMs, ...(breaks === undefined ? {} : { breaks }), spans };
}

/** A trace no seed rule is triggered by (a health check). */
export function noiseTrace(seed: string, startMs: number): SimTrace {
  const traceId = id(`noise-${seed}`, 16);
  const root: SimSpan = { service: 'frontend', spanId: id(`noise-${seed}-0`, 8), parentSpanId: '', name: 'GET /health', startMs, durationMs: 5, attributes: { 'http.route': '/health' } };
  const db: SimSpan = { service: 'frontend', spanId: id(`noise-${seed}-1`, 8), parentSpanId: root.spanId, name: 'cache.get', startMs: startMs + 1, durationMs: 2, attributes: {} };
  return { traceId, startMs, spans: [root, db] };
}

const ns = (ms: number): string => (BigInt(ms) * 1_000_000n).toString();

function attr(key: string, v: string | number | boolean): { key: string; value: Record<string, unknown> } {
  if (typeof v === 'string') return { key, value: { stringValue: v } };
  if (typeof v === 'boolean') return { key, value: { boolValue: v } };
  return { key, value: Number.isInteger(v) ? { intValue: v } : { doubleValue: v } };
}

/** ExportTraceServiceRequest protobuf of spans (one resource per service). */
export function requestOf(spans: readonly (SimSpan & { traceId: string })[]): Buffer {
  const byService = new Map<string, (SimSpan & { traceId: string })[]>();
  for (const s of spans) {
    const list = byService.get(s.service);
    if (list === undefined) byService.set(s.service, [s]);
    else list.push(s);
  }
  const msg = ExportTraceServiceRequest.fromObject({
    resourceSpans: [...byService].map(([service, list]) => ({
      resource: { attributes: [attr('service.name', service)] },
      scopeSpans: [
        {
          scope: { name: 'shop' },
          spans: list.map((s) => ({
            traceId: Buffer.from(s.traceId, 'hex'),
            spanId: Buffer.from(s.spanId, 'hex'),
            ...(s.parentSpanId === '' ? {} : { parentSpanId: Buffer.from(s.parentSpanId, 'hex') }),
            name: s.name,
            kind: s.parentSpanId === '' ? 2 : 1,
            startTimeUnixNano: ns(s.startMs),
            endTimeUnixNano: ns(s.startMs + s.durationMs),
            attributes: Object.entries(s.attributes).map(([k, v]) => attr(k, v)),
          })),
        },
      ],
    })),
  });
  return Buffer.from(ExportTraceServiceRequest.encode(msg).finish());
}

/**
 * Records patched from one encoded request of `spans` (their trace id is replaced): each
 * call copies it with another trace id and every span time moved by `deltaMs`, so
 * millions of records cost no encoding.
 */
export function patchedRecords(spans: readonly SimSpan[]): (traceId: string, deltaMs: number) => Buffer {
  const templateId = 'f'.repeat(32);
  const template = requestOf(spans.map((s) => ({ ...s, traceId: templateId })));
  const offsetsOf = (needle: Buffer): number[] => {
    const out: number[] = [];
    for (let i = template.indexOf(needle); i >= 0; i = template.indexOf(needle, i + 1)) out.push(i);
    return out;
  };
  const idAt = offsetsOf(Buffer.from(templateId, 'hex'));
  const times = new Map<number, bigint>();
  for (const s of spans) {
    for (const ms of [s.startMs, s.startMs + s.durationMs]) {
      const ns = BigInt(ms) * 1_000_000n;
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(ns);
      for (const at of offsetsOf(b)) times.set(at, ns);
    }
  }
  if (idAt.length !== spans.length || times.size !== spans.length * 2) throw new Error('patchedRecords: the trace ids or span times are not where expected');
  return (traceId, deltaMs) => {
    const b = Buffer.from(template);
    const id = Buffer.from(traceId, 'hex');
    for (const at of idAt) id.copy(b, at);
    const delta = BigInt(deltaMs) * 1_000_000n;
    for (const [at, ns] of times) b.writeBigUInt64LE(ns + delta, at);
    return b;
  };
}

/** The receiver's records of a trace: one per service, in export (arrival) order. */
export function traceRecords(trace: SimTrace): SimRecord[] {
  const byService = new Map<string, SimSpan[]>();
  for (const s of trace.spans) {
    const list = byService.get(s.service);
    if (list === undefined) byService.set(s.service, [s]);
    else list.push(s);
  }
  return [...byService.values()].map((spans) => ({
    key: trace.traceId,
    value: requestOf(spans.map((s) => ({ ...s, traceId: trace.traceId }))),
    timestampMs: Math.min(...spans.map((s) => s.startMs)),
    arrivalMs: Math.max(...spans.map((s) => s.startMs + s.durationMs)) + 200,
  }));
}

/** Every trace's records, in arrival order (so timestamps are only roughly ordered). */
export function recordsOf(traces: readonly SimTrace[]): SimRecord[] {
  return traces.flatMap(traceRecords).sort((a, b) => a.arrivalMs - b.arrivalMs || (a.key < b.key ? -1 : 1));
}

/** Creates the topic (unlimited retention) unless it exists, and produces the records as the receiver would. */
export async function produceHistory(brokers: string[], topic: string, partitions: number, records: readonly SimRecord[]): Promise<void> {
  const kafka = new Kafka({ clientId: 'replay-test', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Created once: a later call appends to it.
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] }],
      });
    }
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 2000) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.slice(i, i + 2000).map((r) => ({
          key: r.key,
          value: r.value,
          timestamp: String(r.timestampMs),
          partition: saramaPartition(r.key, partitions),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Writes the history as trace files: per day, the Collector file exporter's JSON-less protobuf stream. */
export async function writeHistoryFiles(dir: string, records: readonly SimRecord[], perFile: number): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0, f = 0; i < records.length; i += perFile, f++) {
    const chunk = records.slice(i, i + perFile);
    const parts: Buffer[] = [];
    for (const r of chunk) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(r.value.length);
      parts.push(len, r.value);
    }
    const file = `${dir}/traces-${String(f).padStart(4, '0')}.pb`;
    await writeFile(file, Buffer.concat(parts));
    files.push(file);
  }
  return files;
}
