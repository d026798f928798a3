/**
 * Notification tests' receivers and violations: a local HTTP server on loopback that records
 * every request (JSON body, headers) and answers as the test says, and violations injected
 * through the OpenTelemetry SDK as failing spans, one trace each.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanStatusCode } from '@opentelemetry/api';
import { createTestApp, otlpExporter } from './sdk.ts';

export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: string;
  readonly body: any;
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  close(): Promise<void>;
}

/**
 * Records each request, then `answer` decides the reply (default 200 `{}`); a reply of
 * 'hang' never answers (the request stays open until the server closes).
 */
export async function startReceiver(answer: (r: Received, res: ServerResponse) => 'hang' | void = () => undefined, port = 0): Promise<Receiver> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const r = { path: req.url ?? '', headers: req.headers, raw, body };
      received.push(r);
      if (answer(r, res) === 'hang' || res.headersSent) return;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const p = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${p}`,
    port: p,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends `count` traces, each one `span` ended with status ERROR (what the tests' rules catch), and flushes. */
export async function injectFailingTraces(grpcUrl: string, count: number, span = 'payment.charge'): Promise<void> {
  const app = createTestApp({ service: 'notify-test', exporters: [otlpExporter('grpc', grpcUrl)] });
  for (let i = 0; i < count; i++) {
    const s = app.tracer().startSpan(span);
    s.setStatus({ code: SpanStatusCode.ERROR });
    s.end();
  }
  await app.flush();
  await app.shutdown();
}

/** A rule catching `span` with status ERROR, with an alert entry routing it to `channels` (YAML lines). */
export function ruleFile(rules: ReadonlyArray<{ id: string; span: string; severity?: string; alert?: string[] }>): string {
  const out = ['rules:'];
  for (const r of rules) {
    out.push(`  - id: ${r.id}`, `    severity: ${r.severity ?? 'critical'}`, `    message: ${r.span} failed`, `    condition: not trace.has(${r.span}).where(span:status == error)`);
  }
  out.push('alerts:');
  for (const r of rules) if (r.alert !== undefined) out.push(`  - rule_id: ${r.id}`, ...r.alert.map((l) => `    ${l}`));
  return `${out.join('\n')}\n`;
}
