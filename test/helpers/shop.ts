/**
 * A simulated e-commerce system instrumented with the OpenTelemetry JS SDK:
 * four services (frontend, checkout, payments, shipping, plus admin), each its
 * own tracer provider and OTLP exporter, so one trace's spans reach betrace in
 * several export requests, from several services, in no particular order.
 * Some orders break one of the seed invariants on purpose; the scenario knows
 * which, so a test can check betrace found exactly those.
 */
import { context, trace, SpanKind, type Context, type Span } from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createTestApp, type TestApp } from './sdk.ts';

export type Injected = 'shipment-requires-payment' | 'payment-idempotency' | 'cross-tenant-isolation' | 'admin-audit-log';

export interface ShopOrder {
  readonly traceId: string;
  readonly rootSpanId: string;
  /** The rule this order breaks, if any. */
  readonly violates?: Injected;
  /** Span ids that must be the violation's witnesses. */
  readonly witnesses: string[];
}

const SERVICES = ['frontend', 'checkout', 'payments', 'shipping', 'admin'] as const;
type Service = (typeof SERVICES)[number];

export class Shop {
  readonly #apps: Map<Service, TestApp>;
  readonly orders: ShopOrder[] = [];

  /** `exporterFor(service)` gives each service's exporter(s): to betrace, and maybe to a reference sink. */
  constructor(exporterFor: (service: string) => SpanExporter[]) {
    this.#apps = new Map(
      SERVICES.map((s, i) => [s, createTestApp({ service: s, exporters: exporterFor(s), maxExportBatchSize: 16 + i * 7 })]),
    );
  }

  #tracer(service: Service) {
    return this.#apps.get(service)!.tracer(`shop.${service}`);
  }

  #span(service: Service, name: string, parent: Context, attributes: Record<string, string | number | boolean> = {}): Span {
    return this.#tracer(service).startSpan(name, { kind: SpanKind.INTERNAL, attributes }, parent);
  }

  /** One checkout. `violates` injects a violation of that rule. */
  order(n: number, violates?: Injected): ShopOrder {
    const orderId = `order-${n}`;
    const root = this.#tracer('frontend').startSpan('http.request', { kind: SpanKind.SERVER, attributes: { 'http.route': '/checkout', 'order.id': orderId } });
    const rootCtx = trace.setSpan(context.active(), root);
    const witnesses: string[] = [];
    const checkout = this.#span('checkout', 'checkout.process', rootCtx, { 'order.id': orderId });
    const checkoutCtx = trace.setSpan(rootCtx, checkout);

    // Tenant data access.
    const query = this.#span('checkout', 'database.query', checkoutCtx, {
      table: 'tenant_data.orders',
      operation: 'read',
      tenant_filter: violates !== 'cross-tenant-isolation',
    });
    query.end();
    if (violates === 'cross-tenant-isolation') witnesses.push(query.spanContext().spanId);

    // Payment: a retry, reusing the intent id unless the idempotency rule is broken.
    const intent = `pi-${n}`;
    const charges: Span[] = [];
    charges.push(this.#span('payments', 'payment.charge', checkoutCtx, { attempt: 1, payment_intent_id: intent, amount: 42.5 }));
    charges[0]!.end();
    charges.push(
      this.#span('payments', 'payment.charge', checkoutCtx, {
        attempt: 2,
        payment_intent_id: violates === 'payment-idempotency' ? `${intent}-new` : intent,
        amount: 42.5,
      }),
    );
    charges[1]!.end();
    if (violates === 'payment-idempotency') witnesses.push(...charges.map((c) => c.spanContext().spanId));

    // Shipment preceded by payment confirmation, unless broken: then the shipment comes first.
    const confirm = () => {
      const c = this.#span('payments', 'payment.confirm', checkoutCtx, { 'order.id': orderId });
      c.end();
    };
    const ship = () => {
      const s = this.#span('shipping', 'shipment.initiate', checkoutCtx, { 'order.id': orderId });
      s.end();
      if (violates === 'shipment-requires-payment') witnesses.push(s.spanContext().spanId);
    };
    if (violates === 'shipment-requires-payment') {
      ship();
      busyWait(2);
      confirm();
    } else {
      confirm();
      busyWait(2);
      ship();
    }

    // Some orders include an admin action (refund override), audited unless broken.
    if (n % 3 === 0 || violates === 'admin-audit-log') {
      const admin = this.#span('admin', 'admin.action', rootCtx, { action: 'override' });
      admin.end();
      if (violates === 'admin-audit-log') witnesses.push(admin.spanContext().spanId);
      else this.#span('admin', 'audit.log', rootCtx, { action: 'override' }).end();
    }
    checkout.end();
    root.end();
    const o: ShopOrder = {
      traceId: root.spanContext().traceId,
      rootSpanId: root.spanContext().spanId,
      ...(violates ? { violates } : {}),
      witnesses: witnesses.sort(),
    };
    this.orders.push(o);
    return o;
  }

  /** Flushes the services one after another with a pause between, so traces arrive in pieces. */
  async flush(pauseMs = 300): Promise<void> {
    for (const s of [...SERVICES].reverse()) {
      await this.#apps.get(s)!.flush();
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  async shutdown(): Promise<void> {
    for (const app of this.#apps.values()) await app.shutdown();
  }
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Spans are timed by the wall clock: make the order of two spans unambiguous.
  }
}

const RULES: readonly Injected[] = ['shipment-requires-payment', 'payment-idempotency', 'cross-tenant-isolation', 'admin-audit-log'];

/** The rule order `i` of the scenario breaks: one order in five, the rules in turn. */
export function injectedAt(i: number): Injected | undefined {
  return i % 5 === 4 ? RULES[Math.floor(i / 5) % RULES.length] : undefined;
}

/** Orders 0..n-1, with every rule broken on a known share of them. */
export function runScenario(shop: Shop, orders: number): ShopOrder[] {
  const out: ShopOrder[] = [];
  for (let i = 0; i < orders; i++) out.push(shop.order(i, injectedAt(i)));
  return out;
}
