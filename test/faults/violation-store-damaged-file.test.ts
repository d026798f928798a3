/**
 * Fault: a damaged violations.jsonl. A torn last line (a crash mid-write) is cut
 * off at start, so the first record written after the restart is not swallowed;
 * lines that are JSON but not violation records, and lines that are not JSON,
 * are skipped with a warning and a count and never served, and a time-filtered
 * query still answers 200. Also: a cursor the API did not give out is refused.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SpanStatusCode } from '@opentelemetry/api';
import { createLogger } from '../../src/telemetry/logger.ts';
import { ViolationStore } from '../../src/violations/violation-store.ts';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';
import { violationRecord } from '../helpers/violation-records.ts';


function fileLines(dataDir: string): string[] {
  return readFileSync(join(dataDir, 'violations.jsonl'), 'utf8').split('\n');
}

const silent = () => createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

describe('damaged violation store file', () => {
  let root: string;
  let dataDir: string;
  let betrace: TestPipeline;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'betrace-damaged-'));
    dataDir = join(root, 'data');
    mkdirSync(dataDir);
    writeFileSync(join(root, 'rules.yaml'), 'rules:\n  - id: no-errors\n    severity: high\n    condition: not trace.has(*).where(span:status == error)\n');
    const torn = JSON.stringify(violationRecord(9)).slice(0, 60);
    writeFileSync(
      join(dataDir, 'violations.jsonl'),
      [
        JSON.stringify(violationRecord(1)),
        JSON.stringify({ hello: 'world' }),
        JSON.stringify({ violation_id: 'fake', start_time_unix_nano: 'abc' }),
        JSON.stringify({ ...violationRecord(5), severity: 'apocalyptic' }),
        'not json at all',
        JSON.stringify(violationRecord(2)),
        torn,
      ].join('\n'),
    );
    betrace = await startTestPipeline({ rules: { paths: [join(root, 'rules.yaml')] }, worker: { trace_idle_timeout: '200ms' } }, { dataDir });
  });
  after(async () => {
    await betrace.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves only the records, counts and logs what it skipped and cut', async () => {
    for (const query of ['', '?start_time=0', '?start_time=1600000000&end_time=1800000000', '?severity=low']) {
      const r = await fetch(`${betrace.apiUrl}/v1/violations${query}`);
      assert.equal(r.status, 200, query);
      const ids = ((await r.json()) as { violations: { violation_id: string }[] }).violations.map((v) => v.violation_id);
      assert.deepEqual(ids, ['v-2', 'v-1'], query);
    }
    assert.equal(await metricValue(betrace.apiUrl, 'betrace_violation_store_damaged_lines_total', { reason: 'torn' }), 1);
    assert.equal(await metricValue(betrace.apiUrl, 'betrace_violation_store_damaged_lines_total', { reason: 'not_a_record' }), 3);
    assert.equal(await metricValue(betrace.apiUrl, 'betrace_violation_store_damaged_lines_total', { reason: 'not_json' }), 1);
    const logs = betrace.logs.join('');
    assert.match(logs, /"level":40[^\n]*torn last line/);
    assert.match(logs, /"level":40[^\n]*"skipped":4[^\n]*not violation records/);
    assert.equal((await fetch(`${betrace.apiUrl}/ready`)).status, 200);
  });

  it('writes the first violation after the restart on a line of its own', async () => {
    const app = createTestApp({ service: 'damaged', exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
    const s = app.tracer().startSpan('failing.op');
    s.setStatus({ code: SpanStatusCode.ERROR });
    s.end();
    await app.flush();
    await app.shutdown();
    await waitUntil(
      () => fileLines(dataDir).some((l) => l.includes('"rule_id":"no-errors"')),
      15_000,
      'violation written',
    );
    const last = fileLines(dataDir).filter((l) => l !== '').at(-1)!;
    assert.equal((JSON.parse(last) as { rule_id: string }).rule_id, 'no-errors');
    // Read back as after a restart: the new record is there, the torn one gone.
    const again = new ViolationStore({ dataDir, logger: silent() });
    await again.start();
    assert.deepEqual(
      again.query({}).violations.map((v) => v.rule_id),
      ['no-errors', 'old-rule', 'old-rule'],
    );
    await again.shutdown();
  });

  it('refuses a cursor it did not give out instead of restarting the paging', async () => {
    for (const cursor of ['garbage', 'zz', '0', '%%%']) {
      const r = await fetch(`${betrace.apiUrl}/v1/violations?limit=1&cursor=${cursor}`);
      assert.equal(r.status, 400, cursor);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'INVALID_PARAMETER');
      assert.match(body.error.message, /cursor/);
    }
    const first = (await (await fetch(`${betrace.apiUrl}/v1/violations?limit=1`)).json()) as { next_cursor: string };
    const next = await fetch(`${betrace.apiUrl}/v1/violations?limit=1&cursor=${first.next_cursor}`);
    assert.equal(next.status, 200);
  });
});

describe('a last line whose newline was lost', () => {
  it('is kept, and the next record starts on a new line', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'betrace-nonewline-'));
    try {
      writeFileSync(join(dataDir, 'violations.jsonl'), `${JSON.stringify(violationRecord(1))}\n${JSON.stringify(violationRecord(2))}`);
      const store = new ViolationStore({ dataDir, logger: silent() });
      await store.start();
      store.append(violationRecord(3) as never);
      await store.shutdown();
      const lines = fileLines(dataDir);
      assert.deepEqual(
        lines.filter((l) => l !== '').map((l) => (JSON.parse(l) as { violation_id: string }).violation_id),
        ['v-1', 'v-2', 'v-3'],
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
