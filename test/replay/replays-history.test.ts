/**
 * Issue 7's acceptance: 30 simulated days of shop traces, with known violations
 * on known days, written to a real Kafka broker (records exactly as the receiver
 * writes them) and to trace files. Replaying days 1–29 reports exactly those
 * violations, per day, with their trace ids; day 30 and today are outside.
 * Replay's verdicts and violation ids are those of live evaluation, and traces
 * straddling the range's edges are evaluated whole. The same traces, sent by the
 * OpenTelemetry SDK to a real Jaeger v2, replayed through Jaeger's query API with a search
 * depth under the corpus (so the searches are sliced), give the report of Kafka; a
 * Jaeger serving its query API over TLS gives the same, verified against the test CA.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { replayCommand } from '../../src/cli/replay.ts';
import { decodeSpans } from '../../src/otlp/index.ts';
import type { ReplayReport } from '../../src/replay/index.ts';
import { createRuleSet, loadRuleFile, type SpanRecord } from '../../src/rules/index.ts';
import { makeTestCerts } from '../helpers/certs.ts';
import { startJaeger, type Jaeger } from '../helpers/jaeger.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { startTestPipeline, waitUntil } from '../helpers/pipeline.ts';
import {
  BASE_MS,
  DAY_MS,
  dayName,
  dayStart,
  noiseTrace,
  produceHistory,
  recordsOf,
  shopTrace,
  writeHistoryFiles,
  type Breaks,
  type SimRecord,
  type SimTrace,
} from './history.ts';
import { sendWithSdk } from './sdk-history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const PARTITIONS = 4;
const FROM_MS = dayStart(29);
const TO_MS = BASE_MS;

/** Known violations: day → rules broken that day (one trace each). */
const INJECTED: ReadonlyArray<readonly [number, Breaks, number]> = [
  [5, 'payment-idempotency', 3],
  [12, 'payment-idempotency', 4],
  [12, 'admin-audit-log', 3],
  [18, 'shipment-requires-payment', 2],
  [23, 'cross-tenant-isolation', 1],
  [30, 'payment-idempotency', 2], // before the range
  [0, 'admin-audit-log', 1], // today: after the range
];

/** Deterministic pseudo-random numbers. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Expected {
  readonly day: string;
  readonly rule: string;
  readonly traceId: string;
}

function buildHistory(): { traces: SimTrace[]; expected: Expected[] } {
  const rand = rng(7);
  const traces: SimTrace[] = [];
  const expected: Expected[] = [];
  // Inside a day, away from its edges (the edges have their own traces below).
  const at = (day: number) => dayStart(day) + 10 * 60_000 + Math.floor(rand() * (DAY_MS - 20 * 60_000));
  for (let day = 0; day <= 30; day++) {
    for (let i = 0; i < 24; i++) traces.push(shopTrace(`d${day}-${i}`, at(day), undefined, { admin: i % 3 === 0 }));
    for (let i = 0; i < 8; i++) traces.push(noiseTrace(`d${day}-${i}`, at(day)));
  }
  for (const [day, rule, count] of INJECTED) {
    for (let i = 0; i < count; i++) {
      const t = shopTrace(`bad-${day}-${rule}-${i}`, at(day), rule);
      traces.push(t);
      if (day >= 1 && day <= 29) expected.push({ day: dayName(day), rule, traceId: t.traceId });
    }
  }
  // Edges. A violating trace starting 2 s after `from`: reported (day 29).
  const inside = shopTrace('edge-inside', FROM_MS + 2000, 'admin-audit-log');
  traces.push(inside);
  expected.push({ day: dayName(29), rule: 'admin-audit-log', traceId: inside.traceId });
  // A violating trace starting 2 s before `from`: its day is day 30, not reported.
  traces.push(shopTrace('edge-before', FROM_MS - 2000, 'payment-idempotency'));
  traces.push(straddling('edge-from', FROM_MS - 20_000, 25_000));
  traces.push(straddling('edge-to', TO_MS - 5000, 35_000));
  return { traces, expected };
}

/**
 * A trace that holds (admin.action with its audit.log) only when whole: the audit
 * log is exported early, the admin action `laterMs` later, in another record.
 * Assembled from the later record alone it would break admin-audit-log.
 */
function straddling(seed: string, startMs: number, laterMs: number): SimTrace {
  const t = shopTrace(seed, startMs);
  const root = t.spans[0]!;
  t.spans.push(
    { service: 'audit', spanId: `${t.traceId.slice(0, 14)}a1`, parentSpanId: root.spanId, name: 'audit.log', startMs: startMs + 100, durationMs: 5, attributes: { action: 'override' } },
    { service: 'admin', spanId: `${t.traceId.slice(0, 14)}a2`, parentSpanId: root.spanId, name: 'admin.action', startMs: startMs + laterMs, durationMs: 5, attributes: { action: 'override' } },
  );
  return t;
}

function capture(): { out: { stdout(s: string): void; stderr(s: string): void }; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { out: { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) }, stdout, stderr };
}

const notTTY = { isTTY: false, write: () => true };

/** A cold build of Jaeger takes minutes (test/helpers/jaeger.ts); a file's watchdog still bounds it. */
const JAEGER_BUILD_TIMEOUT_MS = 14 * 60_000;
/** Under the traces of one search (about 750 hold payment.charge): Jaeger's answers are capped, so replay must slice. */
const SEARCH_DEPTH = 40;

/** A report's answer: what does not depend on the source (not the evaluation times, the elapsed time, what was read). */
function answerOf(r: ReplayReport) {
  return { violations: r.violations.map(({ evaluated_at_ms: _e, ...v }) => v), per_day: r.per_day, per_rule: r.per_rule };
}

function violationsByDay(report: ReplayReport): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const v of report.violations) out.set(v.day, [...(out.get(v.day) ?? []), `${v.rule_id} ${v.trace_id}`].sort());
  return out;
}

function expectedByDay(expected: readonly Expected[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of expected) out.set(e.day, [...(out.get(e.day) ?? []), `${e.rule} ${e.traceId}`].sort());
  return out;
}

describe('replay over 30 days of history', () => {
  const { traces, expected } = buildHistory();
  const records: SimRecord[] = recordsOf(traces);
  let dir = '';
  let configFile = '';
  let kafkaReport: ReplayReport;
  let fileReport: ReplayReport;
  const ranges = { from: new Date(FROM_MS).toISOString(), to: new Date(TO_MS).toISOString() };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'betrace-replay-'));
    const { brokers } = await getTestKafka();
    const topic = uniqueName('replay-spans');
    await produceHistory(brokers, topic, PARTITIONS, records);
    configFile = join(dir, 'betrace.yaml');
    await writeFile(
      configFile,
      [
        'transport:',
        '  kind: kafka',
        '  kafka:',
        `    brokers: [${brokers.map((b) => JSON.stringify(b)).join(', ')}]`,
        `    spans_topic: ${topic}`,
        'rules:',
        `  paths: [${JSON.stringify(RULES)}]`,
        '',
      ].join('\n'),
    );
    const files = await writeHistoryFiles(dir, records, 500);
    assert.ok(files.length > 1);
    const k = capture();
    const status = await replayCommand({ rules: RULES, ...ranges, source: 'kafka', format: 'json', config: configFile, env: {} }, k.out, notTTY);
    assert.equal(status, 0, k.stderr.join('\n'));
    kafkaReport = JSON.parse(k.stdout.join('\n')) as ReplayReport;
    const f = capture();
    const fstatus = await replayCommand({ rules: RULES, ...ranges, source: [join(dir, 'traces-*.pb')], format: 'json', env: {} }, f.out, notTTY);
    assert.equal(fstatus, 0, f.stderr.join('\n'));
    fileReport = JSON.parse(f.stdout.join('\n')) as ReplayReport;
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('reports-exactly-the-known-violations-per-day-from-kafka', () => {
    assert.deepEqual(violationsByDay(kafkaReport), expectedByDay(expected));
    assert.equal(kafkaReport.total, expected.length);
    const days = Object.keys(kafkaReport.per_day);
    assert.deepEqual(days, [...new Set(expected.map((e) => e.day))].sort());
    assert.equal(kafkaReport.per_day[dayName(5)]!.violations, 3);
    assert.equal(kafkaReport.per_day[dayName(12)]!.violations, 7);
    assert.equal(kafkaReport.per_day[dayName(18)]!.violations, 2);
    assert.deepEqual([...kafkaReport.per_day[dayName(5)]!.trace_ids].sort(), expected.filter((e) => e.day === dayName(5)).map((e) => e.traceId).sort());
    assert.equal(kafkaReport.per_rule['payment-idempotency'], 7);
    assert.equal(kafkaReport.late_records, 0);
    assert.equal(kafkaReport.traces_partial, 0);
  });

  it('reads-only-the-range-plus-margins-from-kafka', () => {
    const inRange = traces.filter((t) => t.startMs >= FROM_MS && t.startMs < TO_MS);
    assert.equal(kafkaReport.traces_scanned, inRange.length);
    assert.equal(kafkaReport.spans_scanned, inRange.reduce((n, t) => n + t.spans.length, 0));
    assert.ok(kafkaReport.records_read < records.length, `${kafkaReport.records_read} of ${records.length} records read`);
    assert.ok(kafkaReport.traces_skipped >= 29 * 8, 'noise traces skipped undecoded');
  });

  it('reports-the-same-from-trace-files', () => {
    assert.deepEqual(violationsByDay(fileReport), expectedByDay(expected));
    const strip = (r: ReplayReport) => r.violations.map(({ evaluated_at_ms: _e, ...v }) => v);
    assert.deepEqual(strip(fileReport), strip(kafkaReport));
    assert.equal(fileReport.traces_scanned, kafkaReport.traces_scanned);
  });

  it('does-not-report-day-30-or-today', () => {
    const outside = traces.filter((t) => t.breaks !== undefined && (t.startMs < FROM_MS || t.startMs >= TO_MS)).map((t) => t.traceId);
    assert.ok(outside.length >= 4);
    const reported = new Set(kafkaReport.violations.map((v) => v.trace_id));
    for (const id of outside) assert.ok(!reported.has(id), `trace ${id} is outside the range`);
    assert.ok(!(dayName(30) in kafkaReport.per_day));
  });

  it('evaluates-traces-straddling-the-range-edges-whole', () => {
    // edge-from starts before `from` (not reported) and holds only when whole; edge-to
    // starts before `to` and ends after it: reported, and whole (no violation).
    const edgeTo = traces.find((t) => t.spans.some((s) => s.startMs >= TO_MS))!;
    assert.ok(kafkaReport.violations.every((v) => v.trace_id !== edgeTo.traceId));
    assert.equal(kafkaReport.violations.filter((v) => v.day === dayName(29)).length, 1);
    assert.ok(!(dayName(30) in fileReport.per_day));
  });

  it('gives-the-verdicts-and-violation-ids-of-live-evaluation', async () => {
    const loaded = await loadRuleFile(RULES);
    const set = createRuleSet(loaded.rules);
    const live: string[] = [];
    const byTrace = new Map<string, SpanRecord[]>();
    for (const r of records) {
      const spans = decodeSpans(r.value);
      byTrace.set(r.key, [...(byTrace.get(r.key) ?? []), ...spans]);
    }
    for (const t of traces) {
      if (t.startMs < FROM_MS || t.startMs >= TO_MS) continue;
      for (const v of set.evaluate(byTrace.get(t.traceId)!).violations) live.push(`${v.violationId} ${v.ruleId} ${v.traceId} ${v.witnessSpanIds.join(',')}`);
    }
    const replayed = kafkaReport.violations.map((v) => `${v.violation_id} ${v.rule_id} ${v.trace_id} ${v.span_ids.join(',')}`);
    assert.deepEqual(replayed.sort(), live.sort());
  });

  it('prints-violations-per-day-as-a-table', async () => {
    const c = capture();
    const status = await replayCommand({ rule: 'payment-idempotency', ...ranges, source: 'kafka', config: configFile, env: {} }, c.out, notTTY);
    assert.equal(status, 0, c.stderr.join('\n'));
    const text = c.stdout.join('\n');
    const payment = expected.filter((e) => e.rule === 'payment-idempotency');
    assert.match(text, new RegExp(`^${dayName(5)}: 3 violations \\(trace [0-9a-f]{32}, [0-9a-f]{32}, [0-9a-f]{32}\\)$`, 'm'));
    assert.match(text, new RegExp(`^${dayName(12)}: 4 violations \\(trace `, 'm'));
    assert.match(text, /^Total: 7 historical violations$/m);
    for (const e of payment) assert.ok(text.includes(e.traceId), `${e.traceId} listed`);
    assert.equal(c.stderr.length, 0, 'no progress output when stderr is not a terminal');
  });

  it('splits-a-kafka-replay-by-partition', async () => {
    const ids: string[] = [];
    for (const partitions of ['0,1', '2,3']) {
      const c = capture();
      const status = await replayCommand({ rules: RULES, ...ranges, format: 'json', config: configFile, partitions, env: {} }, c.out, notTTY);
      assert.equal(status, 0, c.stderr.join('\n'));
      for (const v of (JSON.parse(c.stdout.join('\n')) as ReplayReport).violations) ids.push(v.violation_id);
    }
    assert.deepEqual(ids.sort(), kafkaReport.violations.map((v) => v.violation_id).sort());
  });

  describe('from a real Jaeger v2 (query API v3), loaded with the OpenTelemetry SDK', { timeout: JAEGER_BUILD_TIMEOUT_MS + 300_000 }, () => {
    let jaeger: Jaeger;
    let source = '';

    before(
      async () => {
        jaeger = await startJaeger({ maxTraces: 10_000 });
        await sendWithSdk(traces, jaeger.otlpGrpcUrl);
        source = `jaeger://${jaeger.queryGrpcAddress}?search_depth=${SEARCH_DEPTH}`;
      },
      { timeout: JAEGER_BUILD_TIMEOUT_MS + 120_000 },
    );

    after(async () => {
      await jaeger?.close();
    });

    it('gives-the-per-day-report-of-kafka-over-days-1-29', async () => {
      const c = capture();
      const status = await replayCommand({ rules: RULES, ...ranges, source, format: 'json', env: {} }, c.out, notTTY);
      assert.equal(status, 0, c.stderr.join('\n'));
      const report = JSON.parse(c.stdout.join('\n')) as ReplayReport;
      assert.deepEqual(answerOf(report), answerOf(kafkaReport));
      assert.deepEqual(violationsByDay(report), expectedByDay(expected));
      assert.equal(report.incomplete, false, 'Jaeger holds traces from before the range');
      // Searched by the rules' trigger span names, in slices: more searches than (service, operation) pairs.
      const m = /trigger spans searched in (\d+) service\/operation pairs, (\d+) searches of depth 40, (\d+) traces fetched/.exec(report.source);
      assert.ok(m, report.source);
      assert.ok(Number(m[2]) > Number(m[1]) * 4, report.source);
      // Only the traces holding a trigger are fetched (not the noise traces), and every trace of the range holding one is evaluated.
      const triggered = traces.filter((t) => t.spans.some((s) => s.name !== 'http.request' && s.name !== 'GET /health' && s.name !== 'cache.get'));
      assert.ok(Number(m[3]) <= triggered.length, report.source);
      assert.equal(report.traces_scanned, triggered.filter((t) => t.startMs >= FROM_MS && t.startMs < TO_MS).length);
    });

    it('reads-every-trace-when-a-rule-has-no-triggers-and-says-how-long-it-took', async () => {
      // A bare trace.has fails without its span: every trace must be read (the noise traces break it).
      const rulesFile = join(dir, 'no-triggers.yaml');
      await writeFile(
        rulesFile,
        ['rules:', '  - id: has-http-request', '    name: A request is traced', '    severity: low', '    condition: trace.has(http.request)', ''].join('\n'),
      );
      const j = capture();
      assert.equal(await replayCommand({ rules: rulesFile, ...ranges, source, format: 'json', env: {} }, j.out, notTTY), 0, j.stderr.join('\n'));
      const fromJaeger = JSON.parse(j.stdout.join('\n')) as ReplayReport;
      const k = capture();
      assert.equal(await replayCommand({ rules: rulesFile, ...ranges, source: 'kafka', format: 'json', config: configFile, env: {} }, k.out, notTTY), 0, k.stderr.join('\n'));
      const fromKafka = JSON.parse(k.stdout.join('\n')) as ReplayReport;
      assert.deepEqual(answerOf(fromJaeger), answerOf(fromKafka));
      assert.equal(fromJaeger.traces_scanned, fromKafka.traces_scanned);
      assert.equal(fromJaeger.spans_scanned, fromKafka.spans_scanned);
      const noise = traces.filter((t) => t.startMs >= FROM_MS && t.startMs < TO_MS && !t.spans.some((s) => s.name === 'http.request'));
      assert.equal(fromJaeger.total, noise.length);
      assert.ok(noise.length >= 29 * 8);
      assert.match(fromJaeger.source, /a full scan \(some rule has no triggers\): every trace of \d+ services read, in \d+\.\d s/);
    });

    it('runs-as-an-api-job-on-the-jaegers-the-configuration-names', async () => {
      const betrace = await startTestPipeline({ api: { token: 't', replay_jaeger: [jaeger.queryGrpcAddress] } });
      const auth = { Authorization: 'Bearer t', 'Content-Type': 'application/json' };
      try {
        const body = { rules_yaml: await readFile(RULES, 'utf8'), ...ranges, source: 'jaeger', jaeger: source };
        const started = await fetch(`${betrace.apiUrl}/v1/replay`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
        assert.equal(started.status, 202, await started.clone().text());
        const { id } = (await started.json()) as { id: string };
        let job: { status: string; result?: ReplayReport; error?: string } = { status: 'running' };
        await waitUntil(async () => {
          job = (await (await fetch(`${betrace.apiUrl}/v1/replay/${id}`)).json()) as typeof job;
          return job.status !== 'running';
        }, 60_000, 'replay job done');
        assert.equal(job.status, 'done', JSON.stringify(job));
        assert.deepEqual(answerOf(job.result!), answerOf(kafkaReport));
        const elsewhere = await fetch(`${betrace.apiUrl}/v1/replay`, { method: 'POST', headers: auth, body: JSON.stringify({ ...body, jaeger: 'jaeger://127.0.0.1:1' }) });
        assert.equal(elsewhere.status, 400);
        assert.match(((await elsewhere.json()) as { error: { message: string } }).error.message, /^jaeger 127\.0\.0\.1:1 is not one of api\.replay_jaeger/);
      } finally {
        await betrace.stop();
      }
    });

    it('says-clearly-when-jaeger-cannot-be-reached-or-the-url-is-wrong', async () => {
      const down = capture();
      const status = await replayCommand({ rules: RULES, ...ranges, source: 'jaeger://127.0.0.1:1', env: {} }, down.out, notTTY);
      assert.equal(status, 1);
      assert.match(down.stderr.join('\n'), /^betrace replay: cannot reach Jaeger's query API at jaeger:\/\/127\.0\.0\.1:1: UNAVAILABLE /);
      for (const [url, message] of [
        ['jaeger://127.0.0.1', /give the host and port/],
        [`jaeger://${jaeger.queryGrpcAddress}?depth=3`, /unknown parameter depth/],
        [`jaeger://${jaeger.queryGrpcAddress}?search_depth=0`, /search_depth must be a positive integer/],
      ] as const) {
        const c = capture();
        assert.equal(await replayCommand({ rules: RULES, ...ranges, source: url, env: {} }, c.out, notTTY), 1, url);
        assert.match(c.stderr.join('\n'), message, url);
      }
      // A depth Jaeger refuses (above its memory storage's max_traces): Jaeger's own words.
      const deep = capture();
      assert.equal(await replayCommand({ rules: RULES, ...ranges, source: `jaeger://${jaeger.queryGrpcAddress}?search_depth=20000`, env: {} }, deep.out, notTTY), 1);
      assert.match(deep.stderr.join('\n'), /^betrace replay: Jaeger FindTraces failed: .*search depth/);
    });

    it('says-where-jaegers-history-starts-when-the-range-begins-before-it', async () => {
      // Ten days before the corpus to three days into it: Jaeger holds nothing before its first span.
      const earliest = Math.min(...traces.flatMap((t) => t.spans.map((sp) => sp.startMs)));
      const early = { from: new Date(earliest - 10 * DAY_MS).toISOString(), to: new Date(earliest + 3 * DAY_MS).toISOString() };
      const c = capture();
      assert.equal(await replayCommand({ rules: RULES, ...early, source, format: 'json', env: {} }, c.out, notTTY), 0, c.stderr.join('\n'));
      const report = JSON.parse(c.stdout.join('\n')) as ReplayReport;
      assert.equal(report.incomplete, true);
      assert.equal(report.history_start, new Date(earliest).toISOString());
      const table = capture();
      assert.equal(await replayCommand({ rules: RULES, ...early, source, env: {} }, table.out, notTTY), 0);
      assert.match(table.stdout.join('\n'), new RegExp(`history in the source starts at ${new Date(earliest).toISOString().replace(/\./g, '\\.')}, after the range's start`));
    });

    it('reads-a-jaeger-over-tls-verified-against-the-given-ca', async () => {
      const certs = makeTestCerts();
      const secure = await startJaeger({ maxTraces: 10_000, tls: { cert: certs.serverCert, key: certs.serverKey } });
      try {
        // Days 13 and 12 only (violations on day 12), replayed from both Jaegers over those days.
        const days = { from: new Date(dayStart(13)).toISOString(), to: new Date(dayStart(11)).toISOString() };
        await sendWithSdk(traces.filter((t) => t.startMs >= dayStart(13) - DAY_MS && t.startMs < dayStart(11) + DAY_MS), secure.otlpGrpcUrl);
        const plain = capture();
        assert.equal(await replayCommand({ rules: RULES, ...days, source, format: 'json', env: {} }, plain.out, notTTY), 0, plain.stderr.join('\n'));
        const expectedReport = JSON.parse(plain.stdout.join('\n')) as ReplayReport;
        assert.ok(expectedReport.total >= 7, `day 12's violations (${expectedReport.total})`);
        const tls = capture();
        const tlsSource = `jaegers://${secure.queryGrpcAddress}?search_depth=${SEARCH_DEPTH}&ca=${encodeURIComponent(certs.ca)}`;
        assert.equal(await replayCommand({ rules: RULES, ...days, source: tlsSource, format: 'json', env: {} }, tls.out, notTTY), 0, tls.stderr.join('\n'));
        assert.deepEqual(answerOf(JSON.parse(tls.stdout.join('\n')) as ReplayReport), answerOf(expectedReport));
        for (const [url, message] of [
          // Plaintext to the TLS listener, TLS without the CA that issued its certificate, a CA file that is not there.
          [`jaeger://${secure.queryGrpcAddress}`, /^betrace replay: cannot reach Jaeger's query API at jaeger:\/\/127\.0\.0\.1:\d+: UNAVAILABLE/],
          [`jaegers://${secure.queryGrpcAddress}`, /^betrace replay: cannot reach Jaeger's query API at jaegers:\/\/127\.0\.0\.1:\d+: UNAVAILABLE .*certificate/i],
          [`jaegers://${secure.queryGrpcAddress}?ca=${encodeURIComponent(join(certs.dir, 'missing.pem'))}`, /^betrace replay: cannot read the CA of jaegers:\/\/127\.0\.0\.1:\d+ \(ca=.*missing\.pem\): ENOENT/],
          [`jaeger://${secure.queryGrpcAddress}?ca=x`, /ca is for TLS/],
        ] as const) {
          const c = capture();
          assert.equal(await replayCommand({ rules: RULES, ...days, source: url, env: {} }, c.out, notTTY), 1, url);
          assert.match(c.stderr.join('\n'), message, url);
        }
      } finally {
        await secure.close();
        await rm(certs.dir, { recursive: true, force: true });
      }
    });
  });
});
