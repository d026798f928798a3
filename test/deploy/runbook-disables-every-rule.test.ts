/**
 * The runbooks' "Disable every rule" command, as written in deploy/runbooks/README.md, run by
 * bash against a pipeline that requires the API token: with the token every rule (API and file
 * rules) ends disabled; without it, or with a wrong one, it exits non-zero having changed nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

const runbooks = readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'runbooks', 'README.md'), 'utf8');
const TOKEN = 'runbook-token';

/** The first bash block after the "Disable every rule" paragraph. */
function disableAllCommand(): string {
  const m = /\*\*Disable every rule\*\*[\s\S]*?```bash\n([\s\S]*?)```/.exec(runbooks);
  assert.ok(m, 'deploy/runbooks/README.md has a "Disable every rule" command');
  return m[1]!;
}

function bash(script: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe('the runbook command that disables every rule', () => {
  let betrace: TestPipeline;
  const rules = async () => ((await (await fetch(`${betrace.apiUrl}/v1/rules`)).json()) as { rules: Array<{ id: string; enabled: boolean }> }).rules;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-runbook-'));
    writeFileSync(join(dir, 'file-rules.yaml'), 'rules:\n  - id: from-file\n    severity: low\n    condition: trace.has(x)\n');
    betrace = await startTestPipeline({ api: { token: TOKEN }, rules: { paths: [join(dir, 'file-rules.yaml')] } }, { dataDir: dir });
  });
  after(async () => {
    await betrace.stop();
    rmSync(betrace.dataDir, { recursive: true, force: true });
  });

  it('disables API and file rules with the token; fails loudly, changing nothing, without it', async () => {
    for (const id of ['api-one', 'api-two']) {
      const res = await fetch(`${betrace.apiUrl}/v1/rules`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ id, severity: 'high', condition: 'trace.has(y)' }),
      });
      assert.equal(res.status, 201);
    }
    assert.deepEqual((await rules()).map((r) => [r.id, r.enabled]).sort(), [['api-one', true], ['api-two', true], ['from-file', true]]);
    const command = disableAllCommand();

    const unset = await bash(command, { API: betrace.apiUrl });
    assert.notEqual(unset.code, 0, `token unset: must fail, got 0 with ${unset.stdout}`);
    const wrong = await bash(command, { API: betrace.apiUrl, BETRACE_API_TOKEN: 'not-the-token' });
    assert.notEqual(wrong.code, 0, 'wrong token: must fail');
    assert.match(wrong.stderr, /403/, 'curl says why');
    assert.ok((await rules()).every((r) => r.enabled), 'nothing disabled without the token');

    const ok = await bash(command, { API: betrace.apiUrl, BETRACE_API_TOKEN: TOKEN });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual((await rules()).map((r) => [r.id, r.enabled]).sort(), [['api-one', false], ['api-two', false], ['from-file', false]]);
    assert.equal((await bash(command, { API: betrace.apiUrl, BETRACE_API_TOKEN: TOKEN })).code, 0, 'again: nothing left to change, still succeeds');
  });
});
