/**
 * `betrace demo`: the first-hour path. Against `betrace run` on the example
 * config (trace_idle_timeout 5s), `npx betrace demo` sends traces carrying the
 * seed's four incidents and four that keep the rules, finds the four violations
 * in the admin API and exits 0; with nothing listening it says to start betrace.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runProgram } from '../helpers/cli.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { demoTraces, encodeDemoTraces } from '../../src/cli/demo.ts';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import { requestToSpans } from '../helpers/otlp-oracle.ts';
import type { PbExportRequest } from '../../src/otlp/schema.ts';
import { createRuleSet, loadRuleFile } from '../../src/rules/index.ts';
import { startExampleBetrace, type BetraceProcess } from '../helpers/process.ts';

const root = join(import.meta.dirname, '..', '..');
const seedRules = join(root, 'config', 'rules', 'seed-invariants.yaml');
const env = { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` };

/** `npx betrace ARGS`, or with `direct` the launcher without npx's start-up. */
function npxBetrace(args: string[], direct = false): Promise<{ code: number; stdout: string; stderr: string }> {
  return direct ? runProgram(process.execPath, [join(root, 'bin', 'betrace.js'), ...args], { cwd: root, env }) : runProgram('npx', ['betrace', ...args], { cwd: root, env });
}

describe('betrace demo', () => {
  it('sends, for each seed rule, a trace that violates exactly it and one that keeps every rule', async () => {
    const loaded = await loadRuleFile(seedRules);
    assert.deepEqual(loaded.errors, []);
    const set = createRuleSet(loaded.rules);
    const traces = demoTraces();
    const spans = requestToSpans(ExportTraceServiceRequest.decode(encodeDemoTraces(traces)) as unknown as PbExportRequest);
    assert.deepEqual(traces.map((t) => t.violates).filter((r) => r !== undefined).sort(), loaded.rules.map((r) => r.definition.id).sort(), 'one incident per seed rule');
    for (const t of traces) {
      const result = set.evaluate(spans.filter((s) => s.traceId === t.traceId));
      assert.deepEqual(result.violations.map((v) => v.ruleId), t.violates === undefined ? [] : [t.violates], t.story);
    }
    assert.equal(traces.filter((t) => t.violates === undefined).length, 4);
  });

  describe('against betrace run on the example config', () => {
    let dataDir = '';
    let b: BetraceProcess;
    let grpc = '';
    let api = '';
    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'betrace-demo-'));
      ({ b, grpc, api } = await startExampleBetrace('demo', dataDir));
    });
    after(async () => {
      await b.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('npx betrace demo finds the 4 violations, exit 0; the API holds exactly those, none on the good traces', async () => {
      const r = await npxBetrace(['demo', '--endpoint', grpc, '--api', `http://${api}`]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${b.output().slice(-2000)}`);
      assert.match(r.stdout, /^4 of 4 expected violations found$/m);
      const sent = [...r.stdout.matchAll(/^ {2}([0-9a-f]{32}) {2}([a-z-]+|no violation): /gm)].map((m) => ({ traceId: m[1]!, rule: m[2]! }));
      assert.equal(sent.length, 8, r.stdout);
      for (const { traceId, rule } of sent) {
        const body = (await (await fetch(`http://${api}/v1/violations?trace_id=${traceId}`)).json()) as { violations: Array<{ rule_id: string }> };
        assert.deepEqual(body.violations.map((v) => v.rule_id), rule === 'no violation' ? [] : [rule], traceId);
        if (rule !== 'no violation') assert.match(r.stdout, new RegExp(`^(critical|high) +${rule} +${traceId}  \\S`, 'm'), 'printed with severity, rule, trace id and message');
      }
      const all = (await (await fetch(`http://${api}/v1/violations`)).json()) as { violations: Array<{ rule_id: string }> };
      assert.deepEqual(all.violations.map((v) => v.rule_id).sort(), ['admin-audit-log', 'cross-tenant-isolation', 'payment-idempotency', 'shipment-requires-payment']);
    });
  });

  it('with nothing listening: exit 1, saying to start betrace', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    const r = await npxBetrace(['demo', '--endpoint', `127.0.0.1:${port}`], true);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^betrace demo: nothing answers OTLP/gRPC at 127\\.0\\.0\\.1:${port} .*: is \`npm start\` running\\? \\(--endpoint to change\\)$`, 'm'));
  });
});
