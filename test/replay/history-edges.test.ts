/**
 * Replay at the edges of history: a range that starts before the history in the
 * source (files, and a Kafka topic read from its first record), and spans whose start
 * time is 0 or implausible (a trace placed by its other spans, or reported apart).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { replayCommand } from '../../src/cli/replay.ts';
import type { ReplayReport } from '../../src/replay/index.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { BASE_MS, DAY_MS, produceHistory, recordsOf, shopTrace, writeHistoryFiles, type SimTrace } from './history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const notTTY = { isTTY: false, write: () => true };
const FIRST_MS = BASE_MS - 2 * DAY_MS; // the history's first trace

async function replay(options: { from: number; to: number; source: string | string[]; config?: string }, format: 'json' | 'table' = 'json'): Promise<{ status: number; out: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const { from, to, ...rest } = options;
  const status = await replayCommand(
    { rules: RULES, from: new Date(from).toISOString(), to: new Date(to).toISOString(), format, env: {}, ...rest },
    { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) },
    notTTY,
  );
  assert.equal(status, 0, stderr.join('\n'));
  return { status, out: stdout.join('\n') };
}

const json = async (options: Parameters<typeof replay>[0]): Promise<ReplayReport> => JSON.parse((await replay(options)).out) as ReplayReport;

/** Two days of checkouts from FIRST_MS, one an hour; every sixth breaks payment idempotency. */
function history(): SimTrace[] {
  return Array.from({ length: 48 }, (_v, i) => shopTrace(`edge-${i}`, FIRST_MS + i * 3_600_000, i % 6 === 1 ? 'payment-idempotency' : undefined));
}

describe('replay at the edges of history', () => {
  let dir = '';
  const traces = history();
  const broken = traces.filter((t) => t.breaks !== undefined).map((t) => t.traceId).sort();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'betrace-history-edges-'));
    await writeHistoryFiles(dir, recordsOf(traces), 1000);
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('says where history starts when the range starts before it, and marks the report incomplete (exit 0)', async () => {
    const files = [join(dir, 'traces-*.pb')];
    const early = await json({ from: FIRST_MS - 10 * DAY_MS, to: BASE_MS, source: files });
    assert.equal(early.incomplete, true);
    assert.equal(early.history_start, new Date(FIRST_MS).toISOString());
    assert.deepEqual(early.violations.map((v) => v.trace_id).sort(), broken, 'what history holds is still reported');
    const { out } = await replay({ from: FIRST_MS - 10 * DAY_MS, to: BASE_MS, source: files }, 'table');
    assert.match(out, new RegExp(`history in the source starts at ${new Date(FIRST_MS).toISOString().replace(/\./g, '\\.')}, after the range's start`));
    const inside = await json({ from: FIRST_MS, to: BASE_MS, source: files });
    assert.equal(inside.incomplete, false);
    assert.equal(inside.history_start, null);
    assert.deepEqual(inside.violations.map((v) => v.trace_id).sort(), broken);
  });

  it('reads a Kafka topic from its first record: a range before it is incomplete, one inside it is not', async () => {
    const { brokers } = await getTestKafka();
    const topic = uniqueName('edge-spans');
    await produceHistory(brokers, topic, 2, recordsOf(traces));
    const config = join(dir, 'betrace.yaml');
    await writeFile(config, ['transport:', '  kind: kafka', '  kafka:', `    brokers: [${brokers.map((b) => JSON.stringify(b)).join(', ')}]`, `    spans_topic: ${topic}`, ''].join('\n'));
    const early = await json({ from: FIRST_MS - 10 * DAY_MS, to: BASE_MS, source: 'kafka', config });
    assert.equal(early.incomplete, true);
    assert.equal(early.history_start, new Date(FIRST_MS).toISOString());
    assert.deepEqual(early.violations.map((v) => v.trace_id).sort(), broken);
    const inside = await json({ from: FIRST_MS + DAY_MS, to: BASE_MS, source: 'kafka', config });
    assert.equal(inside.incomplete, false);
    assert.equal(inside.history_start, null);
  });

  it('places a trace by its plausible span starts, and reports traces without any apart', async () => {
    const start = BASE_MS - DAY_MS / 2;
    // A breaking trace whose root span's start is 1970-01-01T00:00:00.005Z (a clock unset), another with one span at 0.
    const skewed = shopTrace('skewed', start, 'payment-idempotency');
    skewed.spans[0]!.startMs = 5;
    const zero = shopTrace('zero', start + 60_000, 'payment-idempotency');
    zero.spans[1]!.startMs = 0;
    // A trace none of whose spans has a plausible start.
    const untimed = shopTrace('untimed', start + 120_000, 'payment-idempotency');
    for (const s of untimed.spans) s.startMs = 0;
    const sub = await mkdtemp(join(dir, 'untimed-'));
    await writeHistoryFiles(sub, recordsOf([skewed, zero, untimed]), 1000);
    const r = await json({ from: BASE_MS - DAY_MS, to: BASE_MS, source: [join(sub, 'traces-*.pb')] });
    assert.deepEqual(r.violations.map((v) => v.trace_id).sort(), [skewed.traceId, zero.traceId].sort());
    for (const v of r.violations) assert.equal(v.day, new Date(BASE_MS - DAY_MS).toISOString().slice(0, 10), 'in the day of their plausible spans, not 1970');
    assert.equal(r.traces_without_time, 1);
    assert.deepEqual(r.untimed_trace_ids, [untimed.traceId]);
    assert.equal(r.spans_without_time, 2 + untimed.spans.length);
    const { out } = await replay({ from: BASE_MS - DAY_MS, to: BASE_MS, source: [join(sub, 'traces-*.pb')] }, 'table');
    assert.match(out, new RegExp(`1 trace without a plausible start time .* \\(trace ${untimed.traceId}\\)`));
  });
});
