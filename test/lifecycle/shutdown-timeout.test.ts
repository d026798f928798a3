/**
 * Acceptance: shutdown is bounded by shutdown_timeout even with the downstream unreachable (the
 * forwarder would otherwise retry for downstream.max_retry_time, 5 min). With the embedded
 * transport what is still queued then is dropped, counted (reason shutdown) and said in one log
 * line with the count; the process exits within shutdown_timeout and a little.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { freePorts } from '../helpers/kafka.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { metricValue, startTestPipeline, waitUntil } from '../helpers/pipeline.ts';
import { spawnBetrace } from '../helpers/process.ts';
import { registryValue } from '../helpers/telemetry.ts';

const SPANS = 40;
const SHUTDOWN_TIMEOUT_MS = 2000;
/** Process start aside: from SIGTERM to exit, past shutdown_timeout. */
const SLACK_MS = 6000;

const spanIds = (n: number) => Array.from({ length: n }, () => [randomBytes(16).toString('hex'), randomBytes(8).toString('hex')] as const);

/** Sends SPANS spans to the receiver and waits until the forwarder holds them all for export. */
async function sendAndWaitQueued(grpcUrl: string, apiUrl: string): Promise<void> {
  const client = rawTraceClient(grpcUrl);
  for (let i = 0; i < 4; i++) {
    const { err } = await client.export(paddedRequest('shutdown', spanIds(SPANS / 4)));
    assert.equal(err, null);
  }
  client.close();
  await waitUntil(async () => (await metricValue(apiUrl, 'betrace_exporter_queue_spans', { exporter: 'forwarder' })) === SPANS, 10_000, 'the spans queued for export');
}

describe('shutdown_timeout', { concurrency: true }, () => {
  const held: Socket[] = [];
  let silent: Server;
  let silentPort = 0;
  before(async () => {
    // Accepts connections and never answers a byte.
    silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
  });
  after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });

  const stopsWithin = async (name: string, downstreamPort: number): Promise<void> => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-shutdown-'));
    const config = join(dir, 'betrace.yaml');
    writeFileSync(
      config,
      stringify({
        receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
        api: { endpoint: '127.0.0.1:0' },
        downstream: { endpoint: `http://127.0.0.1:${downstreamPort}` },
        shutdown_timeout: `${SHUTDOWN_TIMEOUT_MS}ms`,
        data_dir: join(dir, 'data'),
      }),
    );
    const betrace = spawnBetrace(name, ['run', '--config', config], { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', BETRACE_DOWNSTREAM_ENDPOINT: '' });
    try {
      await betrace.waitFor(/betrace started/);
      const api = `http://${await betrace.waitFor(/"address":"([^"]+)","msg":"admin API listening"/)}`;
      const grpc = `http://${await betrace.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/)}`;
      await sendAndWaitQueued(grpc, api);
      const t0 = Date.now();
      betrace.child.kill('SIGTERM');
      const code = await Promise.race([
        new Promise<number | null>((resolve) => betrace.child.once('exit', resolve)),
        new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), SHUTDOWN_TIMEOUT_MS + SLACK_MS)),
      ]);
      const took = Date.now() - t0;
      assert.notEqual(code, 'late', `${name}: still running ${SHUTDOWN_TIMEOUT_MS + SLACK_MS} ms after SIGTERM:\n${betrace.output().slice(-2000)}`);
      assert.equal(code, 0, betrace.output().slice(-2000));
      assert.ok(took >= SHUTDOWN_TIMEOUT_MS - 100, `${name}: delivered for shutdown_timeout before giving up (${took} ms)`);
      assert.match(
        betrace.output(),
        new RegExp(`"spansDropped":${SPANS},.*"msg":"shutdown_timeout \\(2s\\) passed: ${SPANS} spans not yet delivered downstream are dropped \\(betrace_exporter_spans_dropped_total, reason shutdown\\)"`),
      );
    } finally {
      await betrace.kill();
    }
  };

  it('stops within it with a downstream that accepts connections and never answers: the queued spans dropped, said in one line', async () => {
    await stopsWithin('silent-downstream', silentPort);
  });

  it('stops within it with a downstream that refuses connections', async () => {
    // A port found free: nothing listens there, connections are refused.
    await stopsWithin('refusing-downstream', (await freePorts(1))[0]!);
  });

  it('counts what it dropped in betrace_exporter_spans_dropped_total{reason="shutdown"}, as the log line says', async () => {
    const b = await startTestPipeline({ downstream: { endpoint: `http://127.0.0.1:${silentPort}` }, shutdown_timeout: '1s' });
    await sendAndWaitQueued(b.grpcUrl, b.apiUrl);
    await b.stop();
    assert.equal(await registryValue(b.pipeline.metrics, 'betrace_exporter_spans_dropped_total', { exporter: 'forwarder', reason: 'shutdown' }), SPANS);
    assert.equal(await registryValue(b.pipeline.metrics, 'betrace_exporter_queue_spans', { exporter: 'forwarder' }), 0);
    const lines = b.logs.filter((l) => l.includes('shutdown_timeout (1s) passed'));
    assert.equal(lines.length, 1, 'one line');
    const line = JSON.parse(lines[0]!) as { spansDropped: number; byExporter: Record<string, number> };
    assert.equal(line.spansDropped, SPANS);
    assert.deepEqual(line.byExporter, { forwarder: SPANS, violations: 0 });
  });

  it('forwards at shutdown what the receiver accepted and the forwarder had not read yet (embedded)', async () => {
    const sink = await startOtlpSink();
    sink.delayMs = 1500;
    const b = await startTestPipeline({ downstream: { endpoint: sink.url, max_queue_spans: 10 }, shutdown_timeout: '20s' });
    try {
      const client = rawTraceClient(b.grpcUrl);
      // The first request fills the export queue (its call held by the sink); the forwarder waits for
      // room, and what arrives after stays in the transport, unread.
      assert.equal((await client.export(paddedRequest('unread', spanIds(10)))).err, null);
      await waitUntil(async () => (await metricValue(b.apiUrl, 'betrace_exporter_queue_spans', { exporter: 'forwarder' })) === 10, 10_000, 'the export queue full');
      for (let i = 0; i < 3; i++) assert.equal((await client.export(paddedRequest('unread', spanIds(10)))).err, null);
      client.close();
      await b.stop();
      assert.equal(await registryValue(b.pipeline.metrics, 'betrace_exporter_spans_dropped_total', { exporter: 'forwarder' }), 0, 'none dropped');
      assert.equal(sink.spans.length, 40, 'every accepted span downstream');
    } finally {
      await sink.close();
    }
  });

  it('evaluates at shutdown what the receiver accepted and the worker had not read yet (embedded)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'betrace-unread-'));
    // Traces stay open (long idle timeout) and the worker pauses at 5 of them: the rest stays unread.
    const b = await startTestPipeline({ worker: { max_live_traces: 5, trace_idle_timeout: '60s' } }, { dataDir });
    const res = await fetch(`${b.apiUrl}/v1/rules`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'every-trace', severity: 'low', condition: 'not trace.has(*)' }),
    });
    assert.equal(res.status, 201);
    const client = rawTraceClient(b.grpcUrl);
    const traces = spanIds(20);
    for (const t of traces) assert.equal((await client.export(paddedRequest('unread', [t]))).err, null);
    client.close();
    await waitUntil(async () => (await metricValue(b.apiUrl, 'betrace_worker_paused')) === 1, 10_000, 'the worker paused');
    await b.stop();
    const found = new Set(
      readFileSync(join(dataDir, 'violations.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { trace_id: string }).trace_id),
    );
    assert.deepEqual(traces.filter(([traceId]) => !found.has(traceId)), [], 'every accepted trace evaluated');
    rmSync(dataDir, { recursive: true, force: true });
  });
});
