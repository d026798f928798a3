/**
 * `betrace demo`: sends sample traffic to a running betrace over OTLP/gRPC, one
 * trace per incident of the seed rules (config/rules/seed-invariants.yaml) and
 * one that keeps each rule, then waits for the violations to show in the admin
 * API and prints them. Exit 0 when every expected violation was found and none
 * on a trace that keeps the rules; 1 otherwise, with the reason.
 */
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, TRACE_SERVICE_DEFINITION } from '../otlp/index.ts';
import { ExitCode, type Output } from './output.ts';

export interface DemoOptions {
  /** OTLP/gRPC endpoint of the receiver: host:port, http://host:port or https://host:port. */
  readonly endpoint: string;
  /** Admin API: host:port or a URL. */
  readonly api: string;
  readonly token?: string;
  /** Bearer token of the receiver (receiver.auth_token), when it requires one. */
  readonly receiverToken?: string;
  readonly wait: boolean;
  /** How long to wait for the violations, in seconds. */
  readonly timeoutSeconds: number;
}

type Attr = string | number | boolean;

interface DemoSpan {
  readonly service: string;
  readonly name: string;
  readonly kind: 1 | 2 | 3;
  /** Milliseconds after the trace's start, and the duration. */
  readonly at: number;
  readonly ms: number;
  /** Index of the parent span in the trace; none: the root. */
  readonly parent?: number;
  readonly attributes?: Readonly<Record<string, Attr>>;
}

export interface DemoTrace {
  readonly traceId: string;
  /** The rule the trace violates; undefined: it keeps every seed rule. */
  readonly violates: string | undefined;
  readonly story: string;
  readonly spans: readonly DemoSpan[];
}

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** The demo traffic: for each seed rule a trace carrying its incident and one that keeps it. */
export function demoTraces(): DemoTrace[] {
  const order = () => `ord-${hex(4)}`;
  const badOrder = order();
  const goodOrder = order();
  const intent = () => `pi_${hex(8)}`;
  const goodIntent = intent();
  const checkout = (orderId: string, confirmed: boolean): DemoSpan[] => [
    { service: 'storefront', name: 'POST /checkout', kind: SERVER, at: 0, ms: 420, attributes: { 'http.request.method': 'POST', 'http.route': '/checkout', 'order.id': orderId } },
    { service: 'checkout', name: 'order.create', kind: INTERNAL, at: 10, ms: 40, parent: 0, attributes: { 'order.id': orderId, 'order.total': 129.9 } },
    ...(confirmed ? [{ service: 'payments', name: 'payment.confirm', kind: INTERNAL, at: 60, ms: 120, parent: 0, attributes: { 'order.id': orderId, payment_intent_id: intent() } } as const] : []),
    { service: 'shipping', name: 'shipment.initiate', kind: INTERNAL, at: 200, ms: 180, parent: 0, attributes: { 'order.id': orderId, carrier: 'dhl' } },
  ];
  const charge = (intents: readonly string[]): DemoSpan[] => [
    { service: 'checkout', name: 'POST /payments', kind: SERVER, at: 0, ms: 900, attributes: { 'http.request.method': 'POST', 'http.route': '/payments' } },
    ...intents.map(
      (id, i): DemoSpan => ({ service: 'payments', name: 'payment.charge', kind: CLIENT, at: 20 + i * 300, ms: 250, parent: 0, attributes: { attempt: i + 1, payment_intent_id: id, amount: 129.9, currency: 'EUR' } }),
    ),
  ];
  const report = (filtered: boolean): DemoSpan[] => [
    { service: 'reports', name: 'GET /reports/invoices', kind: SERVER, at: 0, ms: 300, attributes: { 'http.request.method': 'GET', 'http.route': '/reports/invoices', 'tenant.id': 'acme' } },
    { service: 'reports', name: 'database.query', kind: CLIENT, at: 30, ms: 200, parent: 0, attributes: { 'db.system': 'postgresql', operation: 'select', table: 'tenant_data.invoices', tenant_filter: filtered } },
  ];
  const admin = (audited: boolean): DemoSpan[] => [
    { service: 'admin-console', name: 'POST /admin/users/disable', kind: SERVER, at: 0, ms: 250, attributes: { 'http.request.method': 'POST', 'http.route': '/admin/users/disable', 'user.id': 'ops-17' } },
    { service: 'admin-console', name: 'admin.action', kind: INTERNAL, at: 20, ms: 150, parent: 0, attributes: { action: 'user.disable', 'target.user.id': 'u-4242' } },
    ...(audited ? [{ service: 'audit', name: 'audit.log', kind: INTERNAL, at: 180, ms: 30, parent: 0, attributes: { action: 'user.disable', actor: 'ops-17' } } as const] : []),
  ];
  const traces: Array<Omit<DemoTrace, 'traceId'>> = [
    { violates: 'shipment-requires-payment', story: `order ${badOrder} shipped without a payment confirmation`, spans: checkout(badOrder, false) },
    { violates: undefined, story: `order ${goodOrder} confirmed, then shipped`, spans: checkout(goodOrder, true) },
    { violates: 'payment-idempotency', story: 'a payment retried with a new payment intent (charged twice)', spans: charge([intent(), intent()]) },
    { violates: undefined, story: 'a payment retried with the same payment intent', spans: charge([goodIntent, goodIntent]) },
    { violates: 'cross-tenant-isolation', story: 'an invoice query on tenant data without the tenant filter', spans: report(false) },
    { violates: undefined, story: 'an invoice query with the tenant filter', spans: report(true) },
    { violates: 'admin-audit-log', story: 'an admin disabled a user and no audit log was written', spans: admin(false) },
    { violates: undefined, story: 'an admin action with its audit log', spans: admin(true) },
  ];
  return traces.map((t) => ({ ...t, traceId: hex(16) }));
}

const anyValue = (v: Attr) =>
  typeof v === 'string' ? { stringValue: v } : typeof v === 'boolean' ? { boolValue: v } : Number.isInteger(v) ? { intValue: v } : { doubleValue: v };

/** One ExportTraceServiceRequest holding the traces, ending about now; a resourceSpans per service. */
export function encodeDemoTraces(traces: readonly DemoTrace[], nowMs = Date.now()): Uint8Array {
  const byService = new Map<string, object[]>();
  for (const trace of traces) {
    const spanIds = trace.spans.map(() => hex(8));
    const startNs = BigInt(nowMs - 1000) * 1_000_000n;
    trace.spans.forEach((s, i) => {
      const start = startNs + BigInt(s.at) * 1_000_000n;
      const span = {
        traceId: Buffer.from(trace.traceId, 'hex'),
        spanId: Buffer.from(spanIds[i]!, 'hex'),
        ...(s.parent !== undefined ? { parentSpanId: Buffer.from(spanIds[s.parent]!, 'hex') } : {}),
        name: s.name,
        kind: s.kind,
        startTimeUnixNano: start.toString(),
        endTimeUnixNano: (start + BigInt(s.ms) * 1_000_000n).toString(),
        attributes: Object.entries(s.attributes ?? {}).map(([key, value]) => ({ key, value: anyValue(value) })),
        status: {},
      };
      byService.set(s.service, [...(byService.get(s.service) ?? []), span]);
    });
  }
  return ExportTraceServiceRequest.encode(
    ExportTraceServiceRequest.fromObject({
      resourceSpans: [...byService].map(([service, spans]) => ({
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: service } },
            { key: 'deployment.environment.name', value: { stringValue: 'demo' } },
          ],
        },
        scopeSpans: [{ scope: { name: 'betrace-demo' }, spans }],
      })),
    }),
  ).finish();
}

function grpcTarget(endpoint: string): { target: string; credentials: grpc.ChannelCredentials } {
  const tls = endpoint.startsWith('https://');
  return { target: endpoint.replace(/^https?:\/\//, ''), credentials: tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure() };
}

/** Sends the request; resolves with an error message, or undefined on success. */
async function send(endpoint: string, body: Uint8Array, token: string | undefined): Promise<string | undefined> {
  const { target, credentials } = grpcTarget(endpoint);
  const Client = grpc.makeGenericClientConstructor(TRACE_SERVICE_DEFINITION, 'TraceService');
  const client = new Client(target, credentials) as unknown as {
    Export(body: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
    close(): void;
  };
  const md = new grpc.Metadata();
  if (token !== undefined && token !== '') md.set('authorization', `Bearer ${token}`);
  try {
    return await new Promise<string | undefined>((resolve) => {
      client.Export(Buffer.from(body), md, { deadline: Date.now() + 10_000 }, (err, res) => {
        if (err === null) {
          const decoded = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(res ?? Buffer.alloc(0)), { longs: Number }) as {
            partialSuccess?: { rejectedSpans?: number; errorMessage?: string };
          };
          const rejected = decoded.partialSuccess?.rejectedSpans ?? 0;
          resolve(rejected > 0 ? `${rejected} spans rejected: ${decoded.partialSuccess?.errorMessage ?? ''}` : undefined);
        } else if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
          resolve(`nothing answers OTLP/gRPC at ${target} (${err.details.replace(/\.?\s*Resolution note:.*$/s, '')}): is \`npm start\` running? (--endpoint to change)`);
        } else {
          resolve(`export to ${target} failed: ${grpc.status[err.code]}: ${err.details}`);
        }
      });
    });
  } finally {
    client.close();
  }
}

interface Found {
  readonly rule_id: string;
  readonly severity: string;
  readonly trace_id: string;
  readonly message: string;
}

function apiBase(api: string): string {
  return (/^https?:\/\//.test(api) ? api : `http://${api}`).replace(/\/+$/, '');
}

/** The violations the API holds for a trace; a string when the API cannot be asked. */
async function violationsOf(base: string, traceId: string, token: string | undefined): Promise<Found[] | string> {
  let res: Response;
  try {
    res = await fetch(`${base}/v1/violations?trace_id=${traceId}`, {
      headers: token !== undefined && token !== '' ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(5000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    return `nothing answers at ${base} (${cause}): is \`npm start\` running? (--api to change)`;
  }
  if (!res.ok) return `${base}/v1/violations answered ${res.status}: ${(await res.text()).slice(0, 300)}`;
  return ((await res.json()) as { violations: Found[] }).violations;
}

export async function demoCommand(opts: DemoOptions, out: Output): Promise<number> {
  const traces = demoTraces();
  const body = encodeDemoTraces(traces);
  const spans = traces.reduce((n, t) => n + t.spans.length, 0);
  const failed = await send(opts.endpoint, body, opts.receiverToken);
  if (failed !== undefined) {
    out.stderr(`betrace demo: ${failed}`);
    return ExitCode.inputError;
  }
  const bad = traces.filter((t) => t.violates !== undefined);
  const good = traces.filter((t) => t.violates === undefined);
  out.stdout(`sent ${traces.length} traces (${spans} spans) to ${opts.endpoint}: ${bad.length} carry an incident of the seed rules, ${good.length} keep them`);
  for (const t of traces) out.stdout(`  ${t.traceId}  ${t.violates ?? 'no violation'}: ${t.story}`);
  if (!opts.wait) return ExitCode.ok;

  out.stdout(`waiting for the violations at ${apiBase(opts.api)}/v1/violations (a trace is evaluated once it has been quiet for worker.trace_idle_timeout; up to ${opts.timeoutSeconds}s)`);
  const base = apiBase(opts.api);
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  const found = new Map<string, Found[]>();
  for (;;) {
    for (const t of bad) {
      if (found.has(t.traceId)) continue;
      const vs = await violationsOf(base, t.traceId, opts.token);
      if (typeof vs === 'string') {
        out.stderr(`betrace demo: ${vs}`);
        return ExitCode.inputError;
      }
      if (vs.length > 0) {
        found.set(t.traceId, vs);
        for (const v of vs) out.stdout(`${v.severity.padEnd(8)} ${v.rule_id.padEnd(26)} ${v.trace_id}  ${v.message}`);
      }
    }
    if (found.size === bad.length || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const hits = bad.filter((t) => (found.get(t.traceId) ?? []).some((v) => v.rule_id === t.violates)).length;
  const problems: string[] = [];
  for (const t of bad) {
    const vs = found.get(t.traceId);
    if (vs === undefined) problems.push(`no violation yet for ${t.traceId} (expected ${t.violates})`);
    else for (const v of vs) if (v.rule_id !== t.violates) problems.push(`unexpected ${v.rule_id} on ${t.traceId} (expected ${t.violates})`);
  }
  // The good traces were sent with the bad ones and are evaluated in the same sweep; a moment
  // more lets a violation evaluated with the last bad trace's reach the store before they are read.
  await new Promise((r) => setTimeout(r, 1000));
  for (const t of good) {
    const vs = await violationsOf(base, t.traceId, opts.token);
    if (typeof vs === 'string') problems.push(vs);
    else for (const v of vs) problems.push(`unexpected ${v.rule_id} on ${t.traceId}, a trace that keeps the rules`);
  }
  out.stdout(`${hits} of ${bad.length} expected violations found`);
  if (problems.length === 0) return ExitCode.ok;
  for (const p of problems) out.stderr(`betrace demo: ${p}`);
  if (hits < bad.length) {
    out.stderr(
      'betrace demo: are the seed rules loaded (rules.paths; `npm start` loads config/rules/*.yaml) and is worker.trace_idle_timeout well under --timeout? GET /v1/rules lists the rules betrace runs',
    );
  }
  return ExitCode.inputError;
}
