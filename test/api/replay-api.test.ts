/** POST /v1/replay starts a job over trace files; GET /v1/replay/{id} reports progress and result. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPipeline, waitUntil } from '../helpers/pipeline.ts';

function traceJson(traceId: string, names: string[], startMs: number): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'replayed' } }] },
        scopeSpans: [
          {
            spans: names.map((name, i) => ({
              traceId,
              spanId: (i + 1).toString(16).padStart(16, '0'),
              name,
              startTimeUnixNano: `${startMs}000000`,
              endTimeUnixNano: `${startMs + 5}000000`,
            })),
          },
        ],
      },
    ],
  });
}

describe('replay API', () => {
  it('runs a replay job over files and reports its result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-replay-api-'));
    const day = Date.UTC(2026, 9, 14, 12);
    const bad = 'a'.repeat(31) + '1';
    const good = 'b'.repeat(31) + '2';
    writeFileSync(join(dir, 'traces.json'), `${traceJson(bad, ['admin.action'], day)}\n${traceJson(good, ['admin.action', 'audit.log'], day + 1000)}\n`);
    const betrace = await startTestPipeline({ api: { token: 't', replay_dir: dir } });
    const auth = { Authorization: 'Bearer t', 'Content-Type': 'application/json' };
    try {
      const body = {
        rules_yaml: 'rules:\n  - id: audit\n    severity: high\n    condition: trace.has(admin.action) and trace.has(audit.log)\n',
        from: '2026-10-01T00:00:00Z',
        to: '2026-11-01T00:00:00Z',
        source: 'files',
        files: [join(dir, '*.json')],
      };
      assert.equal((await fetch(`${betrace.apiUrl}/v1/replay`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })).status, 401);
      const started = await fetch(`${betrace.apiUrl}/v1/replay`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
      assert.equal(started.status, 202);
      const { id } = (await started.json()) as { id: string };
      let job: any;
      await waitUntil(async () => {
        job = await (await fetch(`${betrace.apiUrl}/v1/replay/${id}`)).json();
        return job.status !== 'running';
      }, 20_000, 'replay job done');
      assert.equal(job.status, 'done', JSON.stringify(job));
      assert.equal(job.result.total, 1);
      assert.deepEqual(job.result.per_day['2026-10-14'].trace_ids, [bad]);
      const invalid = await fetch(`${betrace.apiUrl}/v1/replay`, { method: 'POST', headers: auth, body: JSON.stringify({ ...body, from: 'last tuesday' }) });
      assert.equal(invalid.status, 400);
      assert.equal(((await invalid.json()) as { error: { code: string } }).error.code, 'INVALID_REPLAY');
      const missing = await fetch(`${betrace.apiUrl}/v1/replay/nope`);
      assert.equal(missing.status, 404);
      assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'REPLAY_NOT_FOUND');
    } finally {
      await betrace.stop();
    }
  });
});
