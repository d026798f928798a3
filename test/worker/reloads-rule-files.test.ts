/**
 * Rules from rules.paths are reloaded on change without a restart; a file that
 * no longer compiles leaves the previous rules in force and shows in the log
 * and in betrace_rules_reload_failing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPipeline, metricValue, waitUntil } from '../helpers/pipeline.ts';

const ruleA = 'rules:\n  - id: rule-a\n    severity: low\n    condition: not trace.has(bad.thing)\n';
const ruleB = 'rules:\n  - id: rule-b\n    severity: low\n    condition: not trace.has(other.thing)\n';

describe('rule files', () => {
  it('reloads on change, keeps the previous rules when a file breaks, and reports it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-rules-'));
    const file = join(dir, 'team.yaml');
    writeFileSync(file, ruleA);
    const betrace = await startTestPipeline({ rules: { paths: [join(dir, '*.yaml')] } });
    try {
      const ids = () => betrace.pipeline.rules.all().map((r) => r.rule.definition.id);
      assert.deepEqual(ids(), ['rule-a']);
      // Replace atomically, as editors and ConfigMap updates do.
      writeFileSync(`${file}.tmp`, ruleB);
      renameSync(`${file}.tmp`, file);
      await waitUntil(() => ids().includes('rule-b'), 10_000, 'rule-b loaded');
      assert.deepEqual(ids(), ['rule-b']);

      writeFileSync(file, 'rules:\n  - id: rule-b\n    severity: low\n    condition: trace.has(\n');
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_rules_reload_failing')) === 1, 10_000, 'failure reported');
      assert.deepEqual(ids(), ['rule-b'], 'previous rules stay in force');
      assert.ok(betrace.logs.some((l) => /does not compile/.test(l) && /team\.yaml:4:/.test(l)), 'log names the file and position');
      assert.ok((await metricValue(betrace.apiUrl, 'betrace_rules_reload_errors_total')) >= 1);

      writeFileSync(join(dir, 'second.yaml'), ruleA);
      await waitUntil(() => ids().includes('rule-a'), 10_000, 'new file picked up');
      writeFileSync(file, ruleB.replace('low', 'high'));
      await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_rules_reload_failing')) === 0, 10_000, 'recovered');
      assert.equal(betrace.pipeline.rules.get('rule-b')?.rule.definition.severity, 'high');
      assert.ok(betrace.pipeline.rules.get('rule-b')!.version >= 2, 'version grows on change');
    } finally {
      await betrace.stop();
    }
  });
});
