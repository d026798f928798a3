/**
 * Fault: replay jobs started through the API probing the filesystem. File
 * replays read only inside api.replay_dir; a path outside it, a path that does
 * not exist, a directory, `..` or a symbolic link out of it all fail the same
 * way, so the answer tells nothing about which files exist.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPipeline, waitUntil } from '../helpers/pipeline.ts';

const trace = JSON.stringify({
  resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'a'.repeat(32), spanId: '1'.repeat(16), name: 'op', startTimeUnixNano: '1760443200000000000', endTimeUnixNano: '1760443200005000000' }] }] }],
});

describe('replay API and the filesystem', () => {
  it('reads only inside api.replay_dir and fails alike for what is outside or missing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'betrace-replay-fs-'));
    const allowed = join(root, 'replay');
    const outside = join(root, 'secret');
    mkdirSync(join(allowed, 'sub'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(allowed, 'sub', 'in.json'), `${trace}\n`);
    writeFileSync(join(outside, 'exists.json'), `${trace}\n`);
    symlinkSync(join(outside, 'exists.json'), join(allowed, 'link.json'));
    const betrace = await startTestPipeline({ api: { token: 't', replay_dir: allowed } });
    const replay = async (files: string[]) => {
      const body = { rules_yaml: 'rules:\n  - id: r\n    severity: low\n    condition: not trace.has(x)\n', from: '2025-10-01T00:00:00Z', to: '2025-11-01T00:00:00Z', source: 'files', files };
      const r = await fetch(`${betrace.apiUrl}/v1/replay`, { method: 'POST', headers: { Authorization: 'Bearer t', 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, 202);
      const { id } = (await r.json()) as { id: string };
      let job: { status: string; error?: string; result?: { records_read: number } } = { status: 'running' };
      await waitUntil(async () => {
        job = (await (await fetch(`${betrace.apiUrl}/v1/replay/${id}`)).json()) as typeof job;
        return job.status !== 'running';
      }, 10_000, 'replay job finished');
      return job;
    };
    try {
      const ok = await replay(['sub/*.json']);
      assert.equal(ok.status, 'done', JSON.stringify(ok));
      assert.equal(ok.result?.records_read, 1, JSON.stringify(ok.result));
      assert.equal((await replay([join(allowed, 'sub', 'in.json')])).status, 'done', 'an absolute path inside is fine');

      const probes: Array<[string, string]> = [
        ['an existing file outside', join(outside, 'exists.json')],
        ['a missing file outside', join(outside, 'missing.json')],
        ['an existing file through ..', '../secret/exists.json'],
        ['a missing file through ..', '../secret/missing.json'],
        ['a glob outside', join(outside, '*.json')],
        ['a symbolic link out', 'link.json'],
        ['a missing file inside', 'sub/missing.json'],
        ['a directory inside', 'sub'],
      ];
      for (const [what, path] of probes) {
        const job = await replay([path]);
        assert.equal(job.status, 'failed', what);
        assert.equal(job.error, `no trace file matches ${JSON.stringify(path)} in the replay directory`, what);
        assert.ok(!job.error.includes('ENOENT') && !job.error.includes('exists.json" exists'), what);
      }
      // Braces and extglobs could expand to `..` inside the glob library and crawl outside.
      for (const path of ['{..,x}/secret/*.json', '{..,x}/**/*.json', '@(..)/secret/exists.json']) {
        const job = await replay([path]);
        assert.equal(job.status, 'failed', path);
        assert.match(job.error ?? '', /may use \*, \?, \[\.\.\.\] and \*\* \(no braces or parentheses\)/, path);
      }
    } finally {
      await betrace.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses file replays through the API when no api.replay_dir is set', async () => {
    const betrace = await startTestPipeline({ api: { token: 't' } });
    try {
      const body = { rules_yaml: 'rules:\n  - id: r\n    severity: low\n    condition: not trace.has(x)\n', from: '1d', to: 'now', source: 'files', files: ['/etc/passwd'] };
      const r = await fetch(`${betrace.apiUrl}/v1/replay`, { method: 'POST', headers: { Authorization: 'Bearer t', 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, 400);
      const e = ((await r.json()) as { error: { code: string; message: string } }).error;
      assert.equal(e.code, 'INVALID_REPLAY');
      assert.match(e.message, /set api\.replay_dir/);
    } finally {
      await betrace.stop();
    }
  });
});
