/**
 * Fault: the violation store's disk fills up, then space returns. data_dir is a
 * 1 MiB tmpfs filled by a filler file while violating traffic arrives through
 * the OpenTelemetry SDK over OTLP/gRPC. While full: the store is degraded
 * (/ready 200 "degraded" with the reason, counters), the API serves only what the file
 * holds. Once the filler is deleted: the waiting violations and every later one
 * are written, and the API and the file agree.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SpanStatusCode } from '@opentelemetry/api';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { ViolationStore } from '../../src/violations/violation-store.ts';
import type { ViolationRecord } from '../../src/violations/violation-record.ts';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

function mountTmpfs(dir: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`this test needs to mount a 1 MiB tmpfs as data_dir (root or CAP_SYS_ADMIN): mount failed: ${e.stderr?.toString().trim() || e.message}`, { cause: err });
  }
}

/** Fills the filesystem: writes until ENOSPC. */
function fill(path: string): void {
  try {
    writeFileSync(path, Buffer.alloc(2 * 1024 * 1024, 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    return;
  }
  throw new Error('the filler fitted: the tmpfs is larger than expected');
}

function storedIds(dataDir: string): string[] {
  const file = join(dataDir, 'violations.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { violation_id: string }).violation_id);
}

async function servedIds(betrace: TestPipeline): Promise<string[]> {
  const r = await fetch(`${betrace.apiUrl}/v1/violations?limit=1000&start_time=0`);
  assert.equal(r.status, 200);
  return ((await r.json()) as { violations: { violation_id: string }[] }).violations.map((v) => v.violation_id);
}

async function sendFailingTraces(grpcUrl: string, count: number): Promise<void> {
  const app = createTestApp({ service: 'disk-full', exporters: [otlpExporter('grpc', grpcUrl)] });
  for (let i = 0; i < count; i++) {
    const s = app.tracer().startSpan('failing.op', { attributes: { 'pad': 'x'.repeat(200) } });
    s.setStatus({ code: SpanStatusCode.ERROR });
    s.end();
  }
  await app.flush();
  await app.shutdown();
}

describe('violation store on a full disk', () => {
  it('reports the degraded period and stores every violation once space returns', async () => {
    const root = mkdtempSync(join(tmpdir(), 'betrace-diskfull-'));
    const dataDir = join(root, 'data');
    execFileSync('mkdir', ['-p', dataDir]);
    writeFileSync(join(root, 'rules.yaml'), 'rules:\n  - id: no-errors\n    severity: high\n    condition: not trace.has(*).where(span:status == error)\n');
    mountTmpfs(dataDir);
    let betrace: TestPipeline | undefined;
    try {
      const b = await startTestPipeline({ rules: { paths: [join(root, 'rules.yaml')] }, worker: { trace_idle_timeout: '200ms' } }, { dataDir });
      betrace = b;
      const api = b.apiUrl;
      fill(join(dataDir, 'filler'));

      await sendFailingTraces(betrace.grpcUrl, 40);
      await waitUntil(async () => (await metricValue(api, 'betrace_violations_total')) >= 40, 20_000, '40 violations found');
      await waitUntil(async () => (await metricValue(api, 'betrace_violation_store_write_errors_total', { code: 'ENOSPC' })) >= 2, 10_000, 'write errors counted');
      const during = await fetch(`${api}/ready`);
      assert.equal(during.status, 200, 'a store that cannot write leaves the process in service');
      const duringBody = (await during.json()) as { status: string; reasons: Record<string, string> };
      assert.equal(duringBody.status, 'degraded');
      const reasons = duringBody.reasons;
      assert.match(reasons.violation_store ?? '', /ENOSPC/);
      assert.equal(await metricValue(api, 'betrace_violation_store_degraded'), 1);
      const pendingDuring = await metricValue(api, 'betrace_violation_store_pending');
      const inFileDuring = storedIds(dataDir);
      const servedDuring = await servedIds(betrace);
      assert.deepEqual(new Set(servedDuring), new Set(inFileDuring), 'the API serves what the file holds, nothing more');
      assert.equal(pendingDuring + inFileDuring.length, 40, 'every violation is either written or waiting');
      assert.ok(betrace.logs.some((l) => /writing violations failed/.test(l)), 'the failure is logged');
      console.log(`disk full: ${inFileDuring.length} of 40 persisted, ${pendingDuring} waiting, /ready ${during.status} ${duringBody.status}`);

      rmSync(join(dataDir, 'filler'));
      await waitUntil(async () => ((await (await fetch(`${api}/ready`)).json()) as { status: string }).status === 'ready', 15_000, '/ready "ready" after space returns');
      assert.equal(await metricValue(api, 'betrace_violation_store_degraded'), 0);
      await sendFailingTraces(betrace.grpcUrl, 40);
      await waitUntil(() => storedIds(dataDir).length >= 80, 20_000, '80 violations in the file');
      await waitUntil(async () => (await servedIds(b)).length >= 80, 5_000, '80 violations served');
      const inFile = storedIds(dataDir);
      assert.equal(inFile.length, 80);
      assert.equal(new Set(inFile).size, 80, 'no line written twice');
      assert.deepEqual(new Set(await servedIds(betrace)), new Set(inFile));
      assert.equal(await metricValue(api, 'betrace_violation_store_pending'), 0);
      assert.equal(await metricValue(api, 'betrace_violation_store_lost_total'), 0);
      assert.equal(await metricValue(api, 'betrace_violation_store_written_total'), 80);
      assert.ok(betrace.logs.some((l) => /writes resumed/.test(l)));
      console.log(`space freed: ${inFile.length} of 80 persisted (40 found while full, 40 after), errors ${await metricValue(api, 'betrace_violation_store_write_errors_total')}`);
    } finally {
      await betrace?.stop();
      execFileSync('umount', [dataDir]);
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('keeps at most max_pending waiting and counts what it drops, never silently', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'betrace-devfull-'));
    // Every write to /dev/full fails with ENOSPC.
    symlinkSync('/dev/full', join(dataDir, 'violations.jsonl'));
    const logs: string[] = [];
    const metrics = createMetrics();
    const store = new ViolationStore({
      dataDir,
      metrics,
      maxPending: 5,
      logger: createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) })),
    });
    try {
      await store.start();
      const record = (i: number) => ({ violation_id: `v${i}`, rule_id: 'r', severity: 'low' }) as unknown as ViolationRecord;
      for (let i = 0; i < 12; i++) store.append(record(i));
      await waitUntil(() => logs.some((l) => /writing violations failed/.test(l)), 5_000, 'the failure logged');
      const lost = async () => (await metrics.violationStoreLost.get()).values.reduce((a, v) => a + v.value, 0);
      assert.equal(store.pending, 5);
      assert.equal(await lost(), 7, 'what does not fit is counted as lost');
      assert.ok(logs.some((l) => /"reason":"queue_full"[^\n]*were dropped/.test(l)), 'and logged');
      const health = store.health();
      assert.match(health.degraded ? health.reason : 'not degraded', /ENOSPC.*5 waiting, 7 lost/);
      assert.equal(store.query({}).violations.length, 0, 'nothing unwritten is served');
    } finally {
      await store.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    }
    assert.equal((await metrics.violationStoreLost.get()).values.find((v) => v.labels.reason === 'shutdown')?.value, 5, 'the waiting ones at shutdown');
  });
});
