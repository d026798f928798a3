/** Acceptance: killing and restarting the process keeps earlier violations in the store. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ViolationStore } from '../../src/violations/violation-store.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { Writable } from 'node:stream';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

async function startBetrace(configFile: string) {
  const child = spawn(process.execPath, [cli, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 20_000;
  let grpc: string | undefined;
  while (grpc === undefined && Date.now() < deadline) {
    grpc = /"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/.exec(out)?.[1];
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(grpc, out);
  return { child, grpcUrl: `http://${grpc}`, output: () => out };
}

describe('violation store', () => {
  it('keeps violations after kill -9 and restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-restart-'));
    writeFileSync(
      join(dir, 'rules.yaml'),
      'rules:\n  - id: no-errors\n    severity: high\n    condition: not trace.has(*).where(span:status == error)\n',
    );
    const config = join(dir, 'betrace.yaml');
    writeFileSync(
      config,
      [
        'receiver: { grpc: { endpoint: "127.0.0.1:0" }, http: { endpoint: "127.0.0.1:0" } }',
        'api: { endpoint: "127.0.0.1:0" }',
        'worker: { trace_idle_timeout: 300ms }',
        'rules: { paths: [rules.yaml] }',
        'data_dir: data',
        'log: { level: debug }',
      ].join('\n'),
    );
    const first = await startBetrace(config);
    const app = createTestApp({ service: 'restart', exporters: [otlpExporter('grpc', first.grpcUrl)] });
    for (let i = 0; i < 3; i++) {
      const s = app.tracer().startSpan('failing.op');
      s.setStatus({ code: 2 });
      s.end();
    }
    await app.flush();
    await app.shutdown();
    const deadline = Date.now() + 15_000;
    while (!/"msg":"violation"[\s\S]*"msg":"violation"[\s\S]*"msg":"violation"/.test(first.output()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    // Give the append a moment to reach the file, then kill without a chance to flush anything else.
    await new Promise((r) => setTimeout(r, 300));
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.on('exit', r));

    const store = new ViolationStore({ dataDir: join(dir, 'data'), logger: createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })) });
    await store.start();
    const page = store.query({ limit: 10 });
    assert.equal(page.violations.length, 3);
    assert.ok(page.violations.every((v) => v.rule_id === 'no-errors' && v.severity === 'high'));
    await store.shutdown();

    const second = await startBetrace(config);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.on('exit', r));
    const again = new ViolationStore({ dataDir: join(dir, 'data'), logger: createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })) });
    await again.start();
    assert.equal(again.query({ limit: 10 }).violations.length, 3, 'a restart neither loses nor duplicates');
    await again.shutdown();
  });
});
