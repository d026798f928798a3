/**
 * Recording traces for `betrace rules test` as src/rules/README.md says: an
 * application instrumented with the OpenTelemetry SDK exports to a Collector whose
 * file exporter writes OTLP/JSON; `rules test` on that file finds the violation,
 * and only that one. The README's Collector configuration is one the Collector takes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { runBetrace } from '../helpers/cli.ts';
import { ensureOtelCollector, startOtelCollector } from '../helpers/otelcol.ts';
import { runTool } from '../helpers/tools.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

const RULES = `rules:
  - id: shipment-requires-payment
    severity: critical
    condition: trace.every(shipment.initiate).preceded_by(payment.confirm)
`;

describe('rules test on traces recorded by the Collector file exporter', () => {
  it('the Collector configuration of src/rules/README.md validates', { timeout: 240_000 }, async () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'src', 'rules', 'README.md'), 'utf8');
    const snippet = /### Recording traces[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(snippet?.includes('exporters:\n  file:'), 'the README shows a file exporter configuration');
    const dir = mkdtempSync(join(tmpdir(), 'betrace-recorded-'));
    try {
      writeFileSync(join(dir, 'otelcol.yaml'), snippet ?? '');
      const { code, output } = await runTool(await ensureOtelCollector(), ['validate', '--config', `file:${join(dir, 'otelcol.yaml')}`], process.env);
      assert.equal(code, 0, output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });


  it('finds the violation of the recorded trace', { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-recorded-'));
    const traces = join(dir, 'traces.json');
    // The first use builds the test Collector (test/helpers/otelcol/builder.yaml).
    const collector = await startOtelCollector({ toFile: traces });
    let unpaid: string | undefined;
    try {
      const app = createTestApp({ service: 'shop', exporters: [otlpExporter('grpc', collector.url)] });
      const tracer = app.tracer();
      const order = async (pays: boolean): Promise<string> => {
        const root = tracer.startSpan('checkout');
        const ctx = trace.setSpan(context.active(), root);
        if (pays) tracer.startSpan('payment.confirm', {}, ctx).end();
        await new Promise((r) => setTimeout(r, 5));
        tracer.startSpan('shipment.initiate', {}, ctx).end();
        root.end();
        return root.spanContext().traceId;
      };
      unpaid = await order(false);
      await order(true);
      await app.shutdown();
    } finally {
      // The file exporter's file is complete once the Collector has stopped.
      await collector.close();
    }
    try {
      assert.match(readFileSync(traces, 'utf8'), /^\{"resourceSpans":/, 'the file exporter wrote OTLP/JSON');
      writeFileSync(join(dir, 'rules.yaml'), RULES);
      const r = await runBetrace(['rules', 'test', '--rules', 'rules.yaml', '--traces', 'traces.json', '--fail-on-violation'], { cwd: dir });
      assert.equal(r.status, 2, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^traces\.json: OTLP JSON, \d+ requests?, 5 spans; ids in the OTLP\/JSON \(hex\) form\n$/);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 2, r.stdout);
      assert.match(lines[0] ?? '', new RegExp(`^${unpaid ?? '?'} shipment-requires-payment critical `));
      assert.equal(lines[1], '1 violation in 2 traces (1 rule)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
