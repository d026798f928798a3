/**
 * Fault (issue's first case, end to end): a rule with a polynomial regex and one span
 * whose attribute holds 4,000 `a`s once froze evaluation for good, and the process
 * ignored SIGTERM. Whatever the regex engine makes of it now (a linear engine: quick;
 * a backtracking one: the watchdog stops the thread), the other traces' violations
 * arrive within 10 s, /ready stays answering, and SIGTERM stops the process.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { spawnBetrace } from '../helpers/process.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';
import { emitTrace } from '../helpers/stall.ts';

describe('a polynomial regex on a long attribute', () => {
  it('does not stop evaluation of other traces, and SIGTERM stops the process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-regex-'));
    const config = join(dir, 'betrace.yaml');
    writeFileSync(
      config,
      stringify({
        receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
        api: { endpoint: '127.0.0.1:0' },
        worker: { trace_idle_timeout: '200ms', evaluation_stall_margin: '1s' },
        data_dir: join(dir, 'data'),
      }),
    );
    const betrace = spawnBetrace('regex', ['run', '--config', config]);
    try {
      await betrace.waitFor(/betrace started/);
      const api = `http://${await betrace.waitFor(/"address":"([^"]+)","msg":"admin API listening"/)}`;
      const http = `http://${await betrace.waitFor(/"address":"([^"]+)","msg":"OTLP\/HTTP receiver listening"/)}`;
      for (const rule of [
        { id: 'polynomial', severity: 'low', condition: 'not trace.has(*).where(payload =~ "a.*a.*a.*a.*a.*a.*!")' },
        { id: 'ordinary', severity: 'high', condition: 'not trace.has(bad)' },
      ]) {
        const res = await fetch(`${api}/v1/rules`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(rule) });
        assert.equal(res.status, 201, await res.text());
      }
      const app = createTestApp({ service: 'regex', exporters: [otlpExporter('http', http)] });
      app.tracer().startSpan('bad', { attributes: { payload: 'a'.repeat(4000) } }).end();
      await app.flush();
      await new Promise((r) => setTimeout(r, 500));
      const others: string[] = [];
      for (let i = 0; i < 20; i++) others.push(emitTrace(app, ['bad']));
      await app.flush();
      await app.shutdown();
      await waitUntil(
        async () => {
          const found = new Set(
            ((await (await fetch(`${api}/v1/violations?rule_id=ordinary&limit=1000`)).json()) as { violations: Array<{ trace_id: string }> }).violations.map((v) => v.trace_id),
          );
          return others.every((t) => found.has(t));
        },
        10_000,
        'the 20 other traces evaluated within 10 s',
      );
      assert.equal((await fetch(`${api}/ready`)).status, 200);
      // And once more stuck, then SIGTERM.
      const again = createTestApp({ service: 'regex', exporters: [otlpExporter('http', http)] });
      again.tracer().startSpan('bad', { attributes: { payload: 'a'.repeat(4000) } }).end();
      await again.flush();
      await again.shutdown();
      await new Promise((r) => setTimeout(r, 400));
      const t0 = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([betrace.stop(), new Promise<string>((r) => (timer = setTimeout(() => r('still running'), 20_000)))]);
      clearTimeout(timer);
      assert.equal(code, 0, `exit status after SIGTERM (${Date.now() - t0} ms)`);
    } finally {
      await betrace.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
