/**
 * A Kafka-mode deployment of betrace as real processes, for the acceptance tests that
 * break brokers, workers and forwarders under load (test/transport/kafka-*.test.ts):
 *
 * - one config file shared by every process (6 partitions, short trace windows);
 * - a front process (receiver, forwarder and api by default), worker processes, any
 *   other role as its own process; each with its admin port (health, /ready, metrics);
 * - the shop scenario (shop.ts) sent continuously by OpenTelemetry SDK clients (the
 *   official gRPC and HTTP exporters at their defaults, BatchSpanProcessor), every
 *   export's outcome recorded per batch: which spans, acknowledged or not, and why not
 *   (gRPC status and the RetryInfo delay the receiver sent);
 * - the downstream sink, and the checks of what reached it: every acknowledged span,
 *   violations exactly those injected on every trace the clients delivered whole,
 *   repeats of a violation only with its id.
 *
 * Every process and the sink are stopped by the test context's after hook, also when
 * the test fails.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { stringify } from 'yaml';
import { RetryInfo, RpcStatus } from '../../src/otlp/index.ts';
import { kafkaTestConfig, uniqueName } from './kafka.ts';
import { startOtlpSink, type FlatSpan, type OtlpSink } from './otlp-sink.ts';
import { metricValue, waitUntil } from './pipeline.ts';
import { spawnBetrace, type BetraceProcess } from './process.ts';
import { otlpExporter } from './sdk.ts';
import { injectedAt, Shop, type ShopOrder } from './shop.ts';

const rulesFile = join(import.meta.dirname, '..', '..', 'config', 'rules', 'seed-invariants.yaml');

export interface DeploymentOptions {
  readonly brokers: readonly string[];
  /** Topic and group names (default: a unique name). */
  readonly prefix?: string;
  /** transport.kafka keys over kafkaTestConfig (e.g. replication_factor). */
  readonly kafka?: Record<string, unknown>;
  /** receiver.spool on (bounded, in the front's data dir). */
  readonly spool?: boolean;
  /** Roles of the front process (default receiver,forwarder,api). */
  readonly frontRoles?: string;
  /** Worker processes started with the front (default 3). */
  readonly workers?: number;
}

/** One betrace process and its admin port. */
export interface RoleProcess {
  readonly proc: BetraceProcess;
  readonly name: string;
  readonly adminUrl: string;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Every series of a metric: labels and value. */
  series(name: string): Promise<Array<{ labels: Record<string, string>; value: number }>>;
  ready(): Promise<{ status: number; reasons: Record<string, string> }>;
}

export interface Deployment {
  readonly config: string;
  readonly sink: OtlpSink;
  readonly front: RoleProcess;
  readonly grpcUrl: string;
  readonly httpUrl: string;
  readonly workers: RoleProcess[];
  /** Starts one more process with these roles, waits until it started. */
  start(name: string, roles: string): Promise<RoleProcess>;
  /** Starts one more worker, appended to `workers`. */
  addWorker(): Promise<RoleProcess>;
}

export async function startDeployment(t: TestContext, options: DeploymentOptions): Promise<Deployment> {
  const sink = await startOtlpSink();
  const procs: BetraceProcess[] = [];
  // After-hooks run last-registered first: the processes stop before the sink closes.
  t.after(() => sink.close());
  const dir = mkdtempSync(join(tmpdir(), 'betrace-deploy-'));
  t.after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    // Kept for a failed test's post-mortem (tmpdir).
    for (const p of procs) writeFileSync(join(dir, `${p.name}.log`), p.output());
    t.diagnostic(`process logs in ${dir}`);
  });
  const config = join(dir, 'betrace.yaml');
  const prefix = options.prefix ?? uniqueName('deploy');
  writeFileSync(
    config,
    stringify({
      receiver: {
        grpc: { endpoint: '127.0.0.1:0' },
        http: { endpoint: '127.0.0.1:0' },
        ...(options.spool ? { spool: { enabled: true, max_bytes: '256MiB', segment_bytes: '4MiB' } } : {}),
      },
      api: { endpoint: '127.0.0.1:0' },
      transport: { kind: 'kafka', partitions: 6, kafka: { ...kafkaTestConfig(options.brokers, prefix), ...options.kafka } },
      downstream: { endpoint: sink.url, batch_timeout: '20ms' },
      // Short windows keep the tests quick; MAX_TRACE_SPREAD_MS stays below the idle timeout.
      worker: { trace_idle_timeout: '1500ms', late_span_grace: '5s' },
      rules: { paths: [rulesFile] },
      data_dir: join(dir, 'data'),
      log: { level: 'info' },
    }),
  );
  const start = async (name: string, roles: string): Promise<RoleProcess> => {
    const proc = spawnBetrace(name, ['run', '--config', config, '--roles', roles]);
    procs.push(proc);
    await proc.waitFor(/betrace started/, 90_000);
    const adminUrl = `http://${await proc.waitFor(/"address":"([^"]+)","msg":"admin API listening"/)}`;
    return roleProcess(name, proc, adminUrl);
  };
  const front = await start('front', options.frontRoles ?? 'receiver,forwarder,api');
  const out = front.proc.output();
  const grpc = /"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/.exec(out)?.[1];
  const http = /"address":"([^"]+)","msg":"OTLP\/HTTP receiver listening"/.exec(out)?.[1];
  const workers: RoleProcess[] = [];
  let n = 0;
  const addWorker = async (): Promise<RoleProcess> => {
    const w = await start(`worker-${n++}`, 'worker');
    workers.push(w);
    return w;
  };
  for (let i = 0; i < (options.workers ?? 3); i++) await addWorker();
  if (workers.length > 0) await waitForAssignment(workers, 6);
  return { config, sink, front, grpcUrl: `http://${grpc}`, httpUrl: `http://${http}`, workers, start, addWorker };
}

function roleProcess(name: string, proc: BetraceProcess, adminUrl: string): RoleProcess {
  return {
    proc,
    name,
    adminUrl,
    metric: (metric, labels = {}) => metricValue(adminUrl, metric, labels),
    async series(metric) {
      const text = await (await fetch(`${adminUrl}/metrics`)).text();
      const out: Array<{ labels: Record<string, string>; value: number }> = [];
      for (const line of text.split('\n')) {
        const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
        if (m === null || m[1] !== metric) continue;
        out.push({ labels: Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!])), value: Number(m[4]) });
      }
      return out;
    },
    async ready() {
      const r = await fetch(`${adminUrl}/ready`, { signal: AbortSignal.timeout(5000) });
      const body = (await r.json()) as { reasons?: Record<string, string> };
      return { status: r.status, reasons: body.reasons ?? {} };
    },
  };
}

/** A "Kafka partitions assigned" log line of a worker. */
export interface Assignment {
  readonly at: number;
  readonly lost: number[];
  readonly partitions: number[];
}

export function assignments(w: RoleProcess): Assignment[] {
  const out: Assignment[] = [];
  for (const line of w.proc.output().split('\n')) {
    if (!line.includes('"msg":"Kafka partitions assigned"')) continue;
    const entry = JSON.parse(line) as { time: number | string; lost: number[]; partitions: number[] };
    out.push({ at: typeof entry.time === 'number' ? entry.time : Date.parse(entry.time), lost: entry.lost, partitions: entry.partitions });
  }
  return out;
}

/** The worker's partitions by its last assignment line. */
export function partitionsOf(w: RoleProcess): number[] {
  return assignments(w).at(-1)?.partitions ?? [];
}

/** Waits until the workers' last assignments cover the `partitions` partitions, each once. */
export async function waitForAssignment(workers: readonly RoleProcess[], partitions: number, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    () => {
      const all = workers.flatMap(partitionsOf).sort((a, b) => a - b);
      return all.length === partitions && all.every((p, i) => p === i) && workers.every((w) => partitionsOf(w).length > 0);
    },
    timeoutMs,
    `${partitions} partitions spread over ${workers.length} workers`,
  );
}

// ---------------------------------------------------------------------------------------
// Clients

/** How one export call of an SDK exporter ended. */
export interface ExportOutcome {
  readonly service: string;
  readonly protocol: 'grpc' | 'http';
  readonly at: number;
  /** traceId/spanId of each span of the batch. */
  readonly keys: string[];
  readonly ok: boolean;
  /**
   * Why not: `UNAVAILABLE`, `DEADLINE_EXCEEDED`, … (gRPC status name); for HTTP, whose
   * exporter retries 503s itself and reports only that it gave up: `UNAVAILABLE` once the
   * retries ran out (503 / 429 every time), `DEADLINE_EXCEEDED` for its request timeout.
   */
  readonly code?: string;
  /** gRPC: the RetryInfo delay of the status details, ms. */
  readonly retryDelayMs?: number;
  readonly message?: string;
}

const GRPC_CODES: Record<number, string> = { 1: 'CANCELLED', 2: 'UNKNOWN', 4: 'DEADLINE_EXCEEDED', 8: 'RESOURCE_EXHAUSTED', 13: 'INTERNAL', 14: 'UNAVAILABLE' };

function retryDelayOf(err: { metadata?: { get(key: string): unknown[] } }): number | undefined {
  const bin = err.metadata?.get('grpc-status-details-bin')[0];
  if (!(bin instanceof Uint8Array)) return undefined;
  const status = RpcStatus.decode(bin) as unknown as { details: Array<{ typeUrl: string; value: Uint8Array }> };
  const info = status.details.find((d) => d.typeUrl === 'type.googleapis.com/google.rpc.RetryInfo');
  if (info === undefined) return undefined;
  const delay = (RetryInfo.decode(info.value) as unknown as { retryDelay?: { seconds?: number | { toNumber(): number }; nanos?: number } }).retryDelay;
  if (delay === undefined) return undefined;
  const seconds = typeof delay.seconds === 'object' ? delay.seconds.toNumber() : (delay.seconds ?? 0);
  return seconds * 1000 + (delay.nanos ?? 0) / 1e6;
}

function classify(protocol: 'grpc' | 'http', result: ExportResult): Pick<ExportOutcome, 'code' | 'retryDelayMs' | 'message'> {
  const err: (Error & { code?: unknown; metadata?: { get(key: string): unknown[] } }) | undefined = result.error;
  const message = err?.message ?? 'no error given';
  if (protocol === 'grpc' && typeof err?.code === 'number') {
    const retryDelayMs = retryDelayOf(err);
    return { code: GRPC_CODES[err.code] ?? String(err.code), message, ...(retryDelayMs === undefined ? {} : { retryDelayMs }) };
  }
  if (protocol === 'http' && /retryable status/.test(message)) return { code: 'UNAVAILABLE', message };
  if (/timed out|timeout|deadline/i.test(message)) return { code: 'DEADLINE_EXCEEDED', message };
  return { code: 'OTHER', message };
}

/** An SDK exporter whose every export's outcome is recorded. */
class RecordingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #service: string;
  readonly #protocol: 'grpc' | 'http';
  readonly #outcomes: ExportOutcome[];

  constructor(inner: SpanExporter, service: string, protocol: 'grpc' | 'http', outcomes: ExportOutcome[]) {
    this.#inner = inner;
    this.#service = service;
    this.#protocol = protocol;
    this.#outcomes = outcomes;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const keys = spans.map((s) => `${s.spanContext().traceId}/${s.spanContext().spanId}`);
    this.#inner.export(spans, (result) => {
      const ok = result.code === ExportResultCode.SUCCESS;
      this.#outcomes.push({ service: this.#service, protocol: this.#protocol, at: Date.now(), keys, ok, ...(ok ? {} : classify(this.#protocol, result)) });
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}

export interface ShopLoad {
  readonly orders: ShopOrder[];
  readonly outcomes: ExportOutcome[];
  /** Stops creating orders, flushes every client and shuts them down. */
  stop(): Promise<void>;
}

/**
 * The shop scenario without end: an order every `intervalMs` (one in five breaks a rule),
 * payments exporting over OTLP/HTTP, the other services over OTLP/gRPC.
 */
export function startShopLoad(t: TestContext, d: Pick<Deployment, 'grpcUrl' | 'httpUrl'>, intervalMs = 25): ShopLoad {
  const outcomes: ExportOutcome[] = [];
  const shop = new Shop((service) => {
    const protocol = service === 'payments' ? 'http' : 'grpc';
    return [new RecordingExporter(otlpExporter(protocol, protocol === 'http' ? d.httpUrl : d.grpcUrl), service, protocol, outcomes)];
  });
  let n = 0;
  const timer = setInterval(() => {
    shop.order(n, injectedAt(n));
    n++;
  }, intervalMs);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      clearInterval(timer);
      // A flush rejects when an export failed: the failures are in `outcomes`.
      await shop.flush(0).catch(() => undefined);
      await shop.shutdown().catch(() => undefined);
    })();
    return stopped;
  };
  t.after(stop);
  return { orders: shop.orders, outcomes, stop };
}

/** When each export holding a span of the trace ended, ms relative to `t0`, by service (for a failure's diagnostics). */
export function traceTimeline(load: ShopLoad, traceId: string, t0: number): string {
  return load.outcomes
    .filter((o) => o.keys.some((k) => k.startsWith(`${traceId}/`)))
    .map((o) => `${o.service}@${o.at - t0}${o.ok ? '' : `:${o.code}`}`)
    .join(' ');
}

/** What the clients saw: spans acknowledged, spans given up on, and the failures by code. */
export interface ClientSummary {
  readonly exports: number;
  readonly acked: Set<string>;
  readonly givenUp: Set<string>;
  readonly failures: ExportOutcome[];
  /** Failures per code, with how many carried a retry delay (gRPC). */
  readonly byCode: Record<string, { count: number; withRetryDelay: number }>;
  /**
   * Traces the clients delivered whole: none of their spans given up on, and all their
   * exports acknowledged within `maxSpreadMs` of each other. A trace whose spans reach
   * betrace further apart than the trace idle timeout (a client retrying an export that
   * also held spans of a partition without a leader) is judged incomplete in embedded
   * mode too; such traces are counted in `lateTraces`, not judged.
   */
  readonly wholeTraces: Set<string>;
  readonly lateTraces: number;
}

/** Longest spread of a trace's export acknowledgements for it to be judged: below the deployment's trace_idle_timeout (1500 ms). */
export const MAX_TRACE_SPREAD_MS = 1000;

export function summarizeClients(load: ShopLoad, maxSpreadMs = MAX_TRACE_SPREAD_MS): ClientSummary {
  const acked = new Set<string>();
  const givenUp = new Set<string>();
  const failures: ExportOutcome[] = [];
  const byCode: Record<string, { count: number; withRetryDelay: number }> = {};
  for (const o of load.outcomes) {
    for (const k of o.keys) (o.ok ? acked : givenUp).add(k);
    if (o.ok) continue;
    failures.push(o);
    const c = (byCode[`${o.protocol}:${o.code}`] ??= { count: 0, withRetryDelay: 0 });
    c.count++;
    if (o.retryDelayMs !== undefined && o.retryDelayMs > 0) c.withRetryDelay++;
  }
  const broken = new Set([...givenUp].map((k) => k.split('/')[0]!));
  const ackedAt = new Map<string, { first: number; last: number }>();
  for (const o of load.outcomes) {
    if (!o.ok) continue;
    for (const traceId of new Set(o.keys.map((k) => k.split('/')[0]!))) {
      const e = ackedAt.get(traceId);
      if (e === undefined) ackedAt.set(traceId, { first: o.at, last: o.at });
      else {
        e.first = Math.min(e.first, o.at);
        e.last = Math.max(e.last, o.at);
      }
    }
  }
  const complete = load.orders.map((o) => o.traceId).filter((id) => !broken.has(id));
  const inTime = (id: string): boolean => {
    const e = ackedAt.get(id);
    return e !== undefined && e.last - e.first <= maxSpreadMs;
  };
  const wholeTraces = new Set(complete.filter(inTime));
  return { exports: load.outcomes.length, acked, givenUp, failures, byCode, wholeTraces, lateTraces: complete.length - wholeTraces.size };
}

/** Every client failure is UNAVAILABLE, and over gRPC each carries a RetryInfo delay; none is a deadline. */
export function assertOnlyUnavailableWithRetryDelay(clients: ClientSummary): void {
  const bad = clients.failures.filter((f) => f.code !== 'UNAVAILABLE' || (f.protocol === 'grpc' && !(f.retryDelayMs !== undefined && f.retryDelayMs > 0)));
  assert.deepEqual(
    bad.slice(0, 5).map((f) => `${f.protocol} ${f.code} ${f.retryDelayMs ?? '-'} ${f.message}`),
    [],
    `${bad.length} of ${clients.failures.length} client failures are not UNAVAILABLE with a retry delay: ${JSON.stringify(clients.byCode)}`,
  );
}

/** Waits until every span the clients had acknowledged is downstream; returns those still missing at the deadline. */
export async function missingAckedSpans(sink: OtlpSink, acked: ReadonlySet<string>, timeoutMs = 60_000): Promise<string[]> {
  const missing = (): string[] => {
    const got = new Set(sink.spans.filter((s) => s.name !== 'betrace.violation').map((s) => s.key));
    return [...acked].filter((k) => !got.has(k));
  };
  await sink.waitFor(() => missing().length === 0, timeoutMs, 'acknowledged spans downstream').catch(() => undefined);
  return missing();
}

export function violationSpans(sink: OtlpSink): FlatSpan[] {
  return sink.spans.filter((s) => s.name === 'betrace.violation');
}

export interface ViolationCheck {
  /** Violating orders among the whole traces, and how many of them have their violation downstream. */
  readonly expected: number;
  readonly found: number;
  /** Violation spans downstream, distinct ids, and spans beyond the first of an id. */
  readonly spans: number;
  readonly distinctIds: number;
  readonly repeats: number;
  /** Problems on whole traces: missing, false, wrong rule or witnesses, two ids for one trace. */
  readonly problems: string[];
}

/**
 * The violations downstream against the scenario: on every whole trace, exactly the
 * injected violation (rule, parent, witnesses), under one id; none on a whole trace
 * that breaks nothing. Traces the clients lost spans of are not judged.
 */
export function checkViolations(sink: OtlpSink, orders: readonly ShopOrder[], whole: ReadonlySet<string>): ViolationCheck {
  const spans = violationSpans(sink);
  const byTrace = new Map<string, FlatSpan[]>();
  for (const s of spans) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
  const perId = new Map<string, number>();
  for (const s of spans) {
    const id = String(s.attributes['betrace.violation.id']);
    perId.set(id, (perId.get(id) ?? 0) + 1);
  }
  const problems: string[] = [];
  let expected = 0;
  let found = 0;
  for (const order of orders) {
    if (!whole.has(order.traceId)) continue;
    const got = byTrace.get(order.traceId) ?? [];
    if (order.violates === undefined) {
      if (got.length > 0) problems.push(`false violation ${String(got[0]!.attributes['betrace.rule.id'])} on ${order.traceId}`);
      continue;
    }
    expected++;
    if (got.length === 0) {
      problems.push(`missing violation of ${order.violates} on ${order.traceId}`);
      continue;
    }
    found++;
    const ids = new Set(got.map((s) => s.attributes['betrace.violation.id']));
    if (ids.size !== 1) problems.push(`${ids.size} violation ids on ${order.traceId}`);
    const v = got[0]!;
    if (v.attributes['betrace.rule.id'] !== order.violates) problems.push(`rule ${String(v.attributes['betrace.rule.id'])} on ${order.traceId}, expected ${order.violates}`);
    if (Buffer.from(v.span.parentSpanId as string, 'base64').toString('hex') !== order.rootSpanId) problems.push(`violation on ${order.traceId} not under its root`);
    const witnesses = (v.attributes['betrace.violation.span_ids'] as { values: Array<{ stringValue: string }> }).values.map((x) => x.stringValue).sort();
    if (witnesses.join() !== order.witnesses.join()) problems.push(`witnesses ${witnesses.join()} on ${order.traceId}, expected ${order.witnesses.join()}`);
  }
  const repeats = [...perId.values()].reduce((s, c) => s + c - 1, 0);
  return { expected, found, spans: spans.length, distinctIds: perId.size, repeats, problems };
}

/** Waits until every violating whole trace has its violation downstream, then a moment for stragglers (repeats, false ones). */
export async function waitForViolations(sink: OtlpSink, orders: readonly ShopOrder[], whole: ReadonlySet<string>, timeoutMs = 30_000): Promise<void> {
  const wanted = orders.filter((o) => o.violates !== undefined && whole.has(o.traceId)).map((o) => o.traceId);
  await sink
    .waitFor(
      (spans) => {
        const got = new Set(spans.filter((s) => s.name === 'betrace.violation').map((s) => s.traceId));
        return wanted.every((id) => got.has(id));
      },
      timeoutMs,
      `violations of all ${wanted.length} violating whole traces`,
    )
    .catch(() => undefined); // checkViolations names what is missing
  await new Promise((r) => setTimeout(r, 3000));
}

/** Sum of a metric over processes (each scraped now, or its figure taken before it was killed). */
export async function sumMetric(procs: readonly RoleProcess[], name: string, known: ReadonlyMap<RoleProcess, number> = new Map()): Promise<number> {
  let total = 0;
  for (const p of procs) total += known.get(p) ?? (p.proc.child.exitCode === null && p.proc.child.signalCode === null ? await p.metric(name) : 0);
  return total;
}
