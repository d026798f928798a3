/**
 * Replay through the Kafka trace index (transport.kafka.index_topic), on a real broker:
 * a betrace worker reads three days of history from the spans topic and writes an index
 * record per trace; replay through the index then gives the full scan's report while
 * fetching only the records of the traces holding a trigger; records written after the
 * worker stopped (never indexed) are read in full in their place, so the answer stays the
 * full scan's; and traces a Collector wrote with its send time as the records' timestamp
 * (two days after the spans) are found by when they happened, where the full scan of the
 * spans' window finds none of them. A worker acknowledges a trace's records only once its
 * index record is written: while the index topic refuses the writes, nothing is committed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { stringify } from 'yaml';
import { replayCommand } from '../../src/cli/replay.ts';
import type { ReplayReport } from '../../src/replay/index.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { metricValue, startTestPipeline } from '../helpers/pipeline.ts';
import { BASE_MS, DAY_MS, noiseTrace, produceHistory, recordsOf, shopTrace, type Breaks, type SimRecord, replayAnswer, type SimTrace } from './history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const notTTY = { isTTY: false, write: () => true };
const FIRST_MS = BASE_MS - 3 * DAY_MS;
const BREAKS: readonly Breaks[] = ['payment-idempotency', 'admin-audit-log', 'shipment-requires-payment', 'cross-tenant-isolation'];
const RANGE = { from: FIRST_MS + DAY_MS / 2, to: FIRST_MS + 2.5 * DAY_MS };
/** Spans of the Collector's traces: a day, five days before the history; their records stamped two days later. */
const COLLECTOR = { from: FIRST_MS - 5 * DAY_MS, to: FIRST_MS - 4 * DAY_MS, sendDelayMs: 2 * DAY_MS };

function history(prefix: string, count: number, startMs: number, stepMs: number): SimTrace[] {
  const traces: SimTrace[] = [];
  for (let i = 0; i < count; i++) {
    const t = startMs + i * stepMs + (i % 7) * 1000;
    if (i % 20 === 3) traces.push(shopTrace(`${prefix}-${i}`, t, i % 80 === 3 ? BREAKS[(i / 80) % 4 | 0] : undefined, { admin: i % 40 === 23 }));
    else traces.push(noiseTrace(`${prefix}-${i}`, t));
  }
  return traces;
}

describe('replay through the Kafka trace index', () => {
  let dir = '';
  let configFile = '';
  let brokers: string[] = [];
  let spansTopic = '';
  let traces = 0;

  const replay = async (range: { from: number; to: number }, fullScan = false): Promise<ReplayReport> => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const status = await replayCommand(
      { rules: RULES, from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString(), source: 'kafka', format: 'json', env: {}, config: configFile, ...(fullScan ? { fullScan } : {}) },
      { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) },
      notTTY,
    );
    assert.equal(status, 0, stderr.join('\n'));
    return JSON.parse(stdout.join('\n')) as ReplayReport;
  };

  before(async () => {
    ({ brokers } = await getTestKafka());
    const prefix = uniqueName('kindex');
    spansTopic = `${prefix}.spans`;
    dir = await mkdtemp(join(tmpdir(), 'betrace-kindex-'));
    const kafka = { brokers, spans_topic: spansTopic, rules_topic: `${prefix}.rules`, violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`, worker_group: `${prefix}-w`, session_timeout: '6s' };
    configFile = join(dir, 'betrace.yaml');
    await writeFile(configFile, stringify({ transport: { kind: 'kafka', partitions: 4, kafka } }));
    const main = history('kidx', 1500, FIRST_MS, 172_000);
    // The Collector's: every one breaks payment idempotency; records stamped with the send time.
    const collector = Array.from({ length: 50 }, (_v, i) => shopTrace(`kcol-${i}`, COLLECTOR.from + 1000 + i * 1_500_000, 'payment-idempotency'));
    const collectorRecords: SimRecord[] = recordsOf(collector).map((r) => ({ ...r, timestampMs: r.timestampMs + COLLECTOR.sendDelayMs }));
    traces = main.length + collector.length;
    await produceHistory(brokers, spansTopic, 4, [...collectorRecords, ...recordsOf(main)]);
    const worker = await startTestPipeline({ transport: { kind: 'kafka', partitions: 4, kafka }, worker: { trace_idle_timeout: '300ms' } }, { roles: ['worker', 'api'] });
    try {
      const deadline = Date.now() + 120_000;
      while ((await metricValue(worker.apiUrl, 'betrace_index_records_written_total')) < traces) {
        assert.ok(Date.now() < deadline, 'every trace indexed within 2 minutes');
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await worker.stop();
    }
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('gives the full scan\'s report, fetching only the records of traces holding a trigger', async () => {
    const full = await replay(RANGE, true);
    const indexed = await replay(RANGE);
    assert.ok(full.total >= 10, `the history breaks rules (${full.total})`);
    assert.deepEqual(replayAnswer(indexed), replayAnswer(full));
    assert.match(indexed.source, /through the index .*; 0 not indexed/);
    assert.match(full.source, /\(full scan\)/);
    assert.ok(indexed.records_fetched > 0 && indexed.records_fetched < full.records_read / 3, `${indexed.records_fetched} of ${full.records_read} records fetched`);
  });

  it('finds the traces of a Collector-written topic by when they happened', async () => {
    const indexed = await replay(COLLECTOR);
    assert.equal(indexed.per_rule['payment-idempotency'], 50);
    assert.equal(indexed.traces_scanned, 50);
    const full = await replay(COLLECTOR, true);
    assert.equal(full.total, 0, 'the spans records are stamped two days later: outside the window the full scan reads');
  });

  it('reads records no worker indexed in full, in their place: the answer stays the full scan\'s', async () => {
    // Written after the worker stopped: never indexed. Ten more checkouts breaking rules, after the history's last trace.
    const late = Array.from({ length: 10 }, (_v, i) => shopTrace(`klate-${i}`, FIRST_MS + 3 * DAY_MS + i * 600_000, BREAKS[i % 4]));
    await produceHistory(brokers, spansTopic, 4, recordsOf(late));
    const range = { from: FIRST_MS + 2 * DAY_MS, to: FIRST_MS + 4 * DAY_MS };
    const full = await replay(range, true);
    const indexed = await replay(range);
    assert.deepEqual(replayAnswer(indexed), replayAnswer(full));
    const gaps = /(\d+) not indexed/.exec(indexed.source);
    assert.ok(gaps !== null && Number(gaps[1]) >= recordsOf(late).length, indexed.source);
    for (const t of late) assert.ok(indexed.violations.some((v) => v.trace_id === t.traceId), `late trace ${t.traceId} found`);
  });

  it('commits a trace\'s records only once its index record is written', async () => {
    const prefix = uniqueName('kindex-ack');
    const kafka = { brokers, spans_topic: `${prefix}.spans`, rules_topic: `${prefix}.rules`, violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`, worker_group: `${prefix}-w`, session_timeout: '6s' };
    const client = new Kafka({ clientId: 'kindex-ack', brokers, logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    try {
      const sim = history('kack', 40, Date.now() - 3_600_000, 1000);
      const committed = async (): Promise<number> => {
        const offsets = await admin.fetchOffsets({ groupId: kafka.worker_group, topics: [kafka.spans_topic] });
        return offsets[0]!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
      };
      const worker = await startTestPipeline({ transport: { kind: 'kafka', partitions: 2, kafka }, worker: { trace_idle_timeout: '200ms', late_span_grace: '1s' } }, { roles: ['worker', 'api'] });
      try {
        // The index topic gone while traffic flows: every write refused (retryable) until it is back.
        await admin.deleteTopics({ topics: [kafka.index_topic] });
        await produceHistory(brokers, kafka.spans_topic, 2, recordsOf(sim));
        const until = async (what: string, ok: () => Promise<boolean>) => {
          const deadline = Date.now() + 60_000;
          while (!(await ok())) {
            assert.ok(Date.now() < deadline, what);
            await new Promise((r) => setTimeout(r, 250));
          }
        };
        await until('index writes fail', async () => (await metricValue(worker.apiUrl, 'betrace_index_writes_failed_total')) >= 3);
        // Every trace evaluated and past its grace period: only the index holds the commit back.
        await new Promise((r) => setTimeout(r, 3000));
        assert.equal(await committed(), 0, 'nothing committed while the index cannot be written');
        await until('the index topic created again', async () => admin.createTopics({ waitForLeaders: true, topics: [{ topic: kafka.index_topic, numPartitions: 2, replicationFactor: 1 }] }).catch(() => false));
        const records = recordsOf(sim).length;
        await until('the records committed once indexed', async () => (await committed()) === records);
        assert.ok((await metricValue(worker.apiUrl, 'betrace_index_records_written_total')) >= sim.length);
      } finally {
        await worker.stop();
      }
    } finally {
      await admin.disconnect();
    }
  });

  it('gives up an index record the topic can never take: the records are committed, and replay reads them in full', async () => {
    const prefix = uniqueName('kindex-big');
    const kafka = { brokers, spans_topic: `${prefix}.spans`, rules_topic: `${prefix}.rules`, violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`, worker_group: `${prefix}-w`, session_timeout: '6s' };
    const client = new Kafka({ clientId: 'kindex-big', brokers, logLevel: logLevel.NOTHING });
    const admin = client.admin();
    await admin.connect();
    try {
      // max.message.bytes below any index record: a batch is halved down to single records, each refused for good.
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: kafka.index_topic, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '64' }] }] });
      const startMs = Date.now() - 3_600_000;
      const sim = history('kbig', 60, startMs, 1000);
      const records = recordsOf(sim).length;
      await produceHistory(brokers, kafka.spans_topic, 2, recordsOf(sim));
      const config = join(dir, `${prefix}.yaml`);
      await writeFile(config, stringify({ transport: { kind: 'kafka', partitions: 2, kafka } }));
      const worker = await startTestPipeline({ transport: { kind: 'kafka', partitions: 2, kafka }, worker: { trace_idle_timeout: '200ms', late_span_grace: '1s' } }, { roles: ['worker', 'api'] });
      try {
        const deadline = Date.now() + 60_000;
        for (;;) {
          const offsets = await admin.fetchOffsets({ groupId: kafka.worker_group, topics: [kafka.spans_topic] });
          if (offsets[0]!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0) === records) break;
          assert.ok(Date.now() < deadline, 'every record committed although no index record could be written');
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.equal(await metricValue(worker.apiUrl, 'betrace_index_records_given_up_total'), sim.length);
        assert.equal(await metricValue(worker.apiUrl, 'betrace_index_records_written_total'), 0);
      } finally {
        await worker.stop();
      }
      const range = { from: startMs - 60_000, to: startMs + 120_000 };
      const saved = configFile;
      configFile = config;
      try {
        const full = await replay(range, true);
        const indexed = await replay(range);
        assert.ok(full.total > 0);
        assert.deepEqual(replayAnswer(indexed), replayAnswer(full));
        assert.match(indexed.source, new RegExp(`0 index records; .* ${records} not indexed, read in full`));
      } finally {
        configFile = saved;
      }
    } finally {
      await admin.disconnect();
    }
  });
});
