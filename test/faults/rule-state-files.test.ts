/**
 * Fault: the files rules come from go wrong. A torn api-rules.json stops the start
 * with a message naming the file, what is wrong and what to do; a rule file that
 * disappears takes its rules out of force with a warning naming the file and the
 * rule ids, and a count.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../../src/cli/run.ts';
import { metricValue, startTestPipeline, waitUntil } from '../helpers/pipeline.ts';

describe('rule state files', () => {
  it('refuses to start on a torn api-rules.json, naming the file and what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-apirules-'));
    try {
      mkdirSync(join(dir, 'data'));
      const file = join(dir, 'data', 'api-rules.json');
      writeFileSync(file, '{"rules": [{"kind": "rule", "id": "a", "version": 1, "defin');
      writeFileSync(
        join(dir, 'betrace.yaml'),
        'receiver: { grpc: { endpoint: "127.0.0.1:0" }, http: { endpoint: "127.0.0.1:0" } }\napi: { endpoint: "127.0.0.1:0" }\ndata_dir: data\nlog: { level: silent }\n',
      );
      const stderr: string[] = [];
      const status = await runCommand({ config: join(dir, 'betrace.yaml') }, { stdout: () => undefined, stderr: (t) => stderr.push(t) });
      assert.equal(status, 1);
      const text = stderr.join('\n');
      assert.ok(text.includes(file), text);
      assert.match(text, /is not valid JSON/);
      assert.match(text, /restore it from a backup or repair it; or move it aside/);

      writeFileSync(file, '{"rules": [{"kind": "mystery", "id": "a"}]}');
      stderr.length = 0;
      assert.equal(await runCommand({ config: join(dir, 'betrace.yaml') }, { stdout: () => undefined, stderr: (t) => stderr.push(t) }), 1);
      assert.match(stderr.join('\n'), /api-rules\.json .*has an entry 1 that is neither a rule nor an override/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('warns, naming the file and its rule ids, when a rule file is deleted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-rulefile-'));
    const rules = join(dir, 'team-a.yaml');
    writeFileSync(
      rules,
      'rules:\n  - id: a-one\n    severity: low\n    condition: not trace.has(x)\n  - id: a-two\n    severity: low\n    condition: not trace.has(y)\n',
    );
    const betrace = await startTestPipeline({ rules: { paths: [join(dir, '*.yaml')] } });
    try {
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rules_loaded', { source: 'file' }), 2);
      unlinkSync(rules);
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_rules_loaded', { source: 'file' })) === 0, 10_000, 'rules out of force');
      const line = betrace.logs.map((l) => JSON.parse(l) as { level: number; msg: string; file?: string; removedRuleIds?: string[] }).find((l) => l.file === rules && /is gone/.test(l.msg));
      assert.ok(line, betrace.logs.join(''));
      assert.equal(line.level, 40, 'warn');
      assert.ok(line.msg.includes(rules));
      assert.deepEqual(line.removedRuleIds, ['a-one', 'a-two']);
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_rule_files_removed_total'), 1);
    } finally {
      await betrace.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
