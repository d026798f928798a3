/**
 * `betrace replay` on the command line (exit statuses, one-line reasons, TIME
 * forms, --emit) and replay jobs as the API runs them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { replayCommand, type ReplayCommandOptions } from '../../src/cli/replay.ts';
import { parseConfig } from '../../src/config/index.ts';
import { parseTime, ReplayJobs, type ReplayReport } from '../../src/replay/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { BASE_MS, DAY_MS, noiseTrace, recordsOf, shopTrace, writeHistoryFiles } from './history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const NOW = BASE_MS + 3600_000;
const notTTY = { isTTY: false, write: () => true };

async function run(opts: ReplayCommandOptions): Promise<{ status: number; stdout: string; stderr: string[] }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const status = await replayCommand({ env: {}, nowMs: NOW, ...opts }, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) }, notTTY);
  return { status, stdout: stdout.join('\n'), stderr };
}

describe('betrace replay', () => {
  let dir = '';
  let files = '';
  let clean = '';
  const bad = shopTrace('cli-bad', BASE_MS - DAY_MS / 2, 'payment-idempotency');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'betrace-replay-cli-'));
    const traces = [bad, ...Array.from({ length: 20 }, (_v, i) => shopTrace(`cli-${i}`, BASE_MS - DAY_MS / 2 + i * 1000)), noiseTrace('cli', BASE_MS - 1000)];
    await writeHistoryFiles(dir, recordsOf(traces), 1000);
    files = join(dir, 'traces-*.pb');
    clean = join(dir, 'clean.pb');
    const cleanDir = join(dir, 'clean');
    await rm(cleanDir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(cleanDir));
    const [cleanFile] = await writeHistoryFiles(cleanDir, recordsOf(traces.slice(1)), 1000);
    clean = cleanFile!;
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('reads-the-time-forms', () => {
    assert.equal(parseTime('now', NOW), NOW);
    assert.equal(parseTime('30d', NOW), NOW - 30 * DAY_MS);
    assert.equal(parseTime('2h', NOW), NOW - 7_200_000);
    assert.equal(parseTime('15m', NOW), NOW - 900_000);
    assert.equal(parseTime('1748736000', NOW), Date.UTC(2025, 5, 1));
    assert.equal(parseTime('2025-06-01T00:00:00Z', NOW), Date.UTC(2025, 5, 1));
    assert.equal(parseTime('2025-06-01T02:00:00+02:00', NOW), Date.UTC(2025, 5, 1));
    assert.equal(parseTime('2025-06-01', NOW), Date.UTC(2025, 5, 1));
    for (const t of ['yesterday', '2025-13-01', '2025-02-30', '30x', '', '-5d']) assert.equal(parseTime(t, NOW), undefined, t);
  });

  it('exits-1-with-a-one-line-reason-on-a-bad-time', async () => {
    const r = await run({ rules: RULES, from: 'last tuesday', to: 'now', source: files });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.length, 1);
    assert.ok(!r.stderr[0]!.includes('\n'));
    assert.match(r.stderr[0]!, /^betrace replay: --from: cannot read "last tuesday" as a time/);
    const reversed = await run({ rules: RULES, from: 'now', to: '2d', source: files });
    assert.equal(reversed.status, 1);
    assert.match(reversed.stderr[0]!, /--from .* must be before --to/);
  });

  it('exits-1-on-other-usage-and-input-errors', async () => {
    const cases: Array<[ReplayCommandOptions, RegExp]> = [
      [{ from: '2d', to: 'now', source: files }, /either --rules FILE or --rule ID/],
      [{ rules: RULES, rule: 'x', from: '2d', to: 'now', source: files }, /either --rules FILE or --rule ID/],
      [{ rules: RULES, from: '2d', to: 'now', source: files, format: 'xml' }, /--format must be table or json/],
      [{ rules: RULES, from: '2d', to: 'now', source: join(dir, 'missing.pb') }, /no such trace file/],
      [{ rules: RULES, from: '2d', to: 'now', source: join(dir, 'none-*.pb') }, /no trace file matches/],
      [{ rules: join(dir, 'no-rules.yaml'), from: '2d', to: 'now', source: files }, /cannot read rule file/],
      [{ rule: 'payment-idempotency', from: '2d', to: 'now', source: files }, /unknown rule payment-idempotency: no rule files configured/],
      [{ rules: RULES, from: '2d', to: 'now', source: files, partitions: '0' }, /--partitions applies to --source kafka only/],
      [{ rules: RULES, from: '2d', to: 'now', source: files, emit: true }, /--emit needs a downstream endpoint/],
      [{ rules: RULES, from: '2d', to: 'now', source: 'kafka', partitions: 'a,b' }, /--partitions must be/],
    ];
    for (const [opts, reason] of cases) {
      const r = await run(opts);
      assert.equal(r.status, 1, JSON.stringify(opts));
      assert.equal(r.stderr.length, 1, r.stderr.join('\n'));
      assert.match(r.stderr[0]!, reason);
    }
  });

  it('exits-2-with-fail-on-violation-when-violations-are-found', async () => {
    const found = await run({ rules: RULES, from: '2d', to: 'now', source: files, failOnViolation: true });
    assert.equal(found.status, 2, found.stderr.join('\n'));
    assert.match(found.stdout, /Total: 1 historical violation$/m);
    assert.ok(found.stdout.includes(bad.traceId));
    const without = await run({ rules: RULES, from: '2d', to: 'now', source: files });
    assert.equal(without.status, 0);
    const none = await run({ rules: RULES, from: '2d', to: 'now', source: clean, failOnViolation: true });
    assert.equal(none.status, 0, none.stderr.join('\n'));
    assert.match(none.stdout, /No violations\./);
  });

  it('looks-rules-up-by-id-in-the-configured-rule-files', async () => {
    const config = join(dir, 'betrace.yaml');
    await writeFile(config, `rules:\n  paths: [${JSON.stringify(RULES)}]\n`);
    const r = await run({ rule: 'payment-idempotency,admin-audit-log', from: '2d', to: 'now', source: files, config, format: 'json' });
    assert.equal(r.status, 0, r.stderr.join('\n'));
    const report = JSON.parse(r.stdout) as ReplayReport;
    assert.deepEqual(report.rules, ['payment-idempotency', 'admin-audit-log']);
    assert.equal(report.total, 1);
    const unknown = await run({ rule: 'nope', from: '2d', to: 'now', source: files, config });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr[0]!, /unknown rule nope: not in 1 rule file of rules.paths/);
  });

  it('shows-progress-only-on-a-terminal', async () => {
    const written: string[] = [];
    const tty = { isTTY: true, write: (s: string) => written.push(s) };
    const status = await replayCommand({ rules: RULES, from: '2d', to: 'now', source: files, env: {}, nowMs: NOW }, { stdout: () => undefined, stderr: () => undefined }, tty);
    assert.equal(status, 0);
    // Under a second: no progress line at all.
    assert.deepEqual(written, []);
    const quick = await replayCommand({ rules: RULES, from: '2d', to: 'now', source: files, env: {}, nowMs: NOW, progressAfterMs: 0 }, { stdout: () => undefined, stderr: () => undefined }, tty);
    assert.equal(quick, 0);
    assert.match(written.join(''), /replay: 100%, \d+ spans, \d+ traces, 1 violations, \d+k? spans\/s, ETA 0 s/);
    assert.equal(written.at(-1), '\r\x1b[K');
    const pipe: string[] = [];
    await replayCommand({ rules: RULES, from: '2d', to: 'now', source: files, env: {}, nowMs: NOW, progressAfterMs: 0 }, { stdout: () => undefined, stderr: () => undefined }, { isTTY: false, write: (s: string) => pipe.push(s) });
    assert.deepEqual(pipe, []);
  });

  it('emits-violation-spans-with-the-live-ids', async () => {
    const sink = await startOtlpSink();
    try {
      const r = await run({ rules: RULES, from: '2d', to: 'now', source: files, emit: true, format: 'json', env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url } });
      assert.equal(r.status, 0, r.stderr.join('\n'));
      const report = JSON.parse(r.stdout) as ReplayReport;
      await sink.waitFor((s) => s.length >= 1, 10_000, 'the violation span');
      const span = sink.spans[0]!;
      assert.equal(span.name, 'betrace.violation');
      assert.equal(span.traceId, bad.traceId);
      assert.equal(span.spanId, report.violations[0]!.violation_id.slice(0, 16));
      assert.equal(span.attributes['betrace.violation.id'], report.violations[0]!.violation_id);
      assert.match(r.stderr.join('\n'), /1 violation span exported/);
    } finally {
      await sink.close();
    }
  });

  it('runs-replay-jobs-for-the-api', async () => {
    const config = parseConfig(`api: { replay_dir: ${JSON.stringify(dir)} }`, { env: {} });
    const jobs = new ReplayJobs({ config, logger: createLogger('silent'), now: () => NOW });
    const started = jobs.start({ rules_yaml: `rules:\n  - id: idem\n    name: idem\n    severity: high\n    condition: trace.has(payment.charge).where(attempt > 1) and trace.count(payment.charge).where(payment_intent_id == unique) == 1\n`, from: '2d', to: 'now', source: 'files', files: [files] });
    assert.ok(started.ok, JSON.stringify(started));
    const job = await jobs.wait(started.id);
    assert.equal(job?.status, 'done', job?.error);
    assert.equal(job.result?.total, 1);
    assert.equal(job.result.violations[0]!.trace_id, bad.traceId);
    assert.ok(job.progress.spans > 0);

    for (const body of [{}, { rule_ids: ['a'], from: 'x', to: 'now' }, { rule_ids: ['a'], from: '2d', to: 'now', source: 'files' }, { rule_ids: ['a'], from: '2d', to: 'now', extra: 1 }]) {
      const r = jobs.start(body);
      assert.ok(!r.ok && r.status === 400, JSON.stringify(body));
    }
    const failing = jobs.start({ rule_ids: ['nope'], from: '2d', to: 'now', source: 'files', files: [files] });
    assert.ok(failing.ok);
    const failed = await jobs.wait(failing.id);
    assert.equal(failed?.status, 'failed');
    assert.match(failed.error ?? '', /unknown rule nope/);
    assert.equal(jobs.get('unknown'), undefined);
    await jobs.shutdown();
  });
});
