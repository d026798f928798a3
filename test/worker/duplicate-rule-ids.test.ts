/**
 * A rule id defined in two rule files: the pipeline runs the definition of the
 * file whose path sorts first, at start and after every hot reload (also when the
 * file that sorts first appears later, as a restart would pick it), and logs a
 * warning naming both places and the one in force, again on each reload of
 * either file. A rule file's definition shadows an API rule's, with the same warning. `rules check` picks the same one (test/cli/rules-check-duplicate-ids.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';

/** Rule `dup`, violated by a trace holding a span named `span`. */
const rule = (span: string, severity: string, before = '') => `rules:\n${before}  - id: dup\n    severity: ${severity}\n    condition: not trace.has(${span})\n`;
const OTHER = '  - id: other\n    severity: info\n    condition: not trace.has(never.seen)\n';

let next = 1;
/** Sends a one-span trace named `name` over OTLP/HTTP JSON; returns its trace id. */
async function sendTrace(betrace: TestPipeline, name: string): Promise<string> {
  const n = next++;
  const traceId = `dddd${n.toString(16).padStart(28, '0')}`;
  const span = { traceId, spanId: n.toString(16).padStart(16, '0'), name, kind: 1, startTimeUnixNano: `${Date.now()}000000`, endTimeUnixNano: `${Date.now() + 1}000000` };
  const res = await fetch(`${betrace.httpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'dup-test' } }] }, scopeSpans: [{ spans: [span] }] }] }),
  });
  assert.equal(res.status, 200, await res.text());
  return traceId;
}

async function violations(betrace: TestPipeline, traceId: string): Promise<{ rule_id: string; severity: string }[]> {
  const res = await fetch(`${betrace.apiUrl}/v1/violations?trace_id=${traceId}`);
  return ((await res.json()) as { violations: { rule_id: string; severity: string }[] }).violations;
}

/** The duplicate warnings about rule `id` logged so far, as [in force, ignored]. */
function warnings(betrace: TestPipeline, id = 'dup'): Array<[string, string]> {
  return betrace.logs
    .map((l) => JSON.parse(l) as { level: number | string; msg: string; inForce?: string; ignored?: string })
    .filter((l) => l.msg.startsWith(`duplicate rule id ${JSON.stringify(id)}:`))
    .map((l) => {
      assert.match(l.msg, /: the definition at .+:\d+:\d+ is in force, the one at (.+:\d+:\d+|the API) is ignored/);
      return [l.inForce ?? '', l.ignored ?? ''];
    });
}

describe('duplicate rule ids in the pipeline', () => {
  it('the file that sorts first wins at start and after reloads, with a warning naming both places each time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-dup-'));
    const b = join(dir, 'b.yaml');
    const c = join(dir, 'c.yaml');
    // b sorts first; its `dup` is the second rule, at 5:9.
    writeFileSync(b, rule('from.b', 'high', OTHER));
    writeFileSync(c, rule('from.c', 'low'));
    const betrace = await startTestPipeline({ rules: { paths: [join(dir, '*.yaml')] }, worker: { trace_idle_timeout: '300ms' } });
    try {
      assert.deepEqual(warnings(betrace), [[`${b}:5:9`, `${c}:2:9`]], 'warned at start');
      assert.equal(betrace.pipeline.rules.get('dup')?.file, b);

      // The winner's condition is the one evaluated: a trace with from.b violates it, one with from.c does not.
      const byB = await sendTrace(betrace, 'from.b');
      const byC = await sendTrace(betrace, 'from.c');
      await waitUntil(async () => (await violations(betrace, byB)).length === 1, 10_000, 'violation of b.yaml’s dup');
      assert.deepEqual((await violations(betrace, byB)).map((v) => [v.rule_id, v.severity]), [['dup', 'high']]);
      assert.deepEqual(await violations(betrace, byC), [], 'c.yaml’s definition is not evaluated');

      // Rewriting the winner (atomically, as editors do) reloads it: still in force, and the warning again.
      writeFileSync(`${b}.tmp`, rule('from.b', 'critical', OTHER));
      renameSync(`${b}.tmp`, b);
      await waitUntil(() => betrace.pipeline.rules.get('dup')?.definition.severity === 'critical', 10_000, 'b.yaml reloaded');
      await waitUntil(() => warnings(betrace).length === 2, 5_000, 'second warning');
      assert.deepEqual(warnings(betrace)[1], [`${b}:5:9`, `${c}:2:9`]);
      const again = await sendTrace(betrace, 'from.b');
      await waitUntil(async () => (await violations(betrace, again)).length === 1, 10_000, 'violation after the reload');
      assert.equal((await violations(betrace, again))[0]?.severity, 'critical');

      // A file that sorts before both, added while running, takes over: what a restart would run.
      const a = join(dir, 'a.yaml');
      writeFileSync(a, rule('from.a', 'medium'));
      await waitUntil(() => betrace.pipeline.rules.get('dup')?.file === a, 10_000, 'a.yaml in force');
      await waitUntil(() => warnings(betrace).length === 4, 5_000, 'warnings for a.yaml');
      assert.deepEqual(warnings(betrace).slice(2).sort(), [
        [`${a}:2:9`, `${b}:5:9`],
        [`${a}:2:9`, `${c}:2:9`],
      ]);
      const byA = await sendTrace(betrace, 'from.a');
      await waitUntil(async () => (await violations(betrace, byA)).length === 1, 10_000, 'violation of a.yaml’s dup');
      assert.equal((await violations(betrace, byA))[0]?.severity, 'medium');

      // An API rule whose id a rule file takes later: the file's is in force, and the log says so.
      const created = await fetch(`${betrace.apiUrl}/v1/rules`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ id: 'from-api', severity: 'low', condition: 'not trace.has(api.thing)' }),
      });
      assert.equal(created.status, 201, await created.text());
      const d = join(dir, 'd.yaml');
      writeFileSync(d, rule('file.thing', 'high').replace('id: dup', 'id: from-api'));
      await waitUntil(() => betrace.pipeline.rules.get('from-api')?.source === 'file', 10_000, 'd.yaml in force');
      await waitUntil(() => warnings(betrace, 'from-api').length === 1, 5_000, 'warning for the API rule');
      assert.deepEqual(warnings(betrace, 'from-api'), [[`${d}:2:9`, 'the API']]);
    } finally {
      await betrace.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
