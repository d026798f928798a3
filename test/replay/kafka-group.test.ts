/**
 * Group replay (`betrace replay --group NAME`) on a real broker: replays of one job share
 * the spans topic's partitions through a consumer group. Three members started together
 * report disjoint partitions whose union is the single replay's answer; a member started
 * after the job is done finds nothing left; a member killed (-9) while it exports its
 * violation spans loses none of them: another member takes the partitions it had not
 * marked done once its session ends, and the spans exported are exactly the single
 * replay's violations (those of the partition in flight at most twice, with the same ids).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { replayCommand, type ReplayCommandOptions } from '../../src/cli/replay.ts';
import type { ReplayReport } from '../../src/replay/index.ts';
import { getTestKafka, uniqueName } from '../helpers/kafka.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { spawnBetrace } from '../helpers/process.ts';
import { BASE_MS, DAY_MS, noiseTrace, produceHistory, recordsOf, shopTrace, type Breaks, type SimTrace } from './history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const notTTY = { isTTY: false, write: () => true };
const PARTITIONS = 6;
const FIRST_MS = BASE_MS - 2 * DAY_MS;
const BREAKS: readonly Breaks[] = ['payment-idempotency', 'admin-audit-log', 'shipment-requires-payment', 'cross-tenant-isolation'];
const RANGE = { from: new Date(FIRST_MS).toISOString(), to: new Date(FIRST_MS + 2 * DAY_MS).toISOString() };

function history(count: number): SimTrace[] {
  return Array.from({ length: count }, (_v, i) => {
    const t = FIRST_MS + i * 80_000 + (i % 7) * 1000;
    return i % 10 === 3 ? shopTrace(`kgrp-${i}`, t, i % 30 === 3 ? BREAKS[(i / 30) % 4 | 0] : undefined) : noiseTrace(`kgrp-${i}`, t);
  });
}

/** The violations of a report as comparable lines. */
const lines = (r: ReplayReport): string[] => r.violations.map((v) => `${v.violation_id} ${v.rule_id} ${v.trace_id} ${v.day}`);
const partitionsOf = (r: ReplayReport): number[] => {
  const m = /partitions? ([\d,]+) of group/.exec(r.source);
  return m === null ? [] : m[1]!.split(',').map(Number);
};

describe('group replay: replays of one job share the partitions through a consumer group', () => {
  let dir = '';
  let configFile = '';
  let single: ReplayReport;

  const replay = async (extra: Partial<ReplayCommandOptions>): Promise<ReplayReport> => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const status = await replayCommand(
      { rules: RULES, ...RANGE, source: 'kafka', format: 'json', env: {}, config: configFile, ...extra },
      { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) },
      notTTY,
    );
    assert.equal(status, 0, stderr.join('\n'));
    return JSON.parse(stdout.join('\n')) as ReplayReport;
  };

  before(async () => {
    const { brokers } = await getTestKafka();
    const prefix = uniqueName('kgroup');
    dir = await mkdtemp(join(tmpdir(), 'betrace-kgroup-'));
    configFile = join(dir, 'betrace.yaml');
    const kafka = { brokers, spans_topic: `${prefix}.spans`, rules_topic: `${prefix}.rules`, violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`, client_id: prefix, session_timeout: '3s' };
    await writeFile(configFile, stringify({ transport: { kind: 'kafka', partitions: PARTITIONS, kafka } }));
    await produceHistory(brokers, kafka.spans_topic, PARTITIONS, recordsOf(history(2000)));
    single = await replay({});
    assert.ok(single.total >= 40, `the history breaks rules (${single.total})`);
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('three members started together report disjoint partitions whose union is the single replay', async () => {
    const members = await Promise.all([1, 2, 3].map(() => replay({ group: 'job-1' })));
    const parts = members.map(partitionsOf);
    console.log(`members replayed partitions ${parts.map((p) => `[${p.join(',')}]`).join(' ')}`);
    assert.deepEqual(parts.flat().sort((a, b) => a - b), [0, 1, 2, 3, 4, 5], 'every partition replayed by exactly one member');
    assert.deepEqual(members.flatMap(lines).sort(), lines(single).sort());
    assert.equal(members.reduce((n, m) => n + m.total, 0), single.total);
    assert.equal(members.reduce((n, m) => n + m.traces_scanned, 0), single.traces_scanned);
    assert.equal(members.reduce((n, m) => n + m.spans_scanned, 0), single.spans_scanned);

    const late = await replay({ group: 'job-1' });
    assert.equal(late.total, 0);
    assert.match(late.source, /every partition was replayed by other members/);
    // Another job (here: another range) under the same name is another group.
    const other = await replay({ group: 'job-1', to: new Date(FIRST_MS + DAY_MS).toISOString() });
    assert.deepEqual(partitionsOf(other), [0, 1, 2, 3, 4, 5]);
  });

  it('a member killed while exporting loses no violation span: another takes its partitions', async () => {
    const sink = await startOtlpSink();
    // Each export answered after 1.5 s: the member is still on its first partitions when it is killed.
    sink.delayMs = 1500;
    const config = join(dir, 'emit.yaml');
    const base = parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    await writeFile(config, stringify({ ...base, downstream: { endpoint: sink.url } }));
    try {
      const args = ['replay', '--rules', RULES, '--from', RANGE.from, '--to', RANGE.to, '--source', 'kafka', '--group', 'job-2', '--emit', '--format', 'json', '--config', config];
      const a = spawnBetrace('replay-a', args);
      // A second export arrives only after the first partition was marked done.
      await sink.waitFor(() => sink.calls >= 2, 60_000, 'the first member marks its first partition done');
      await a.kill();
      const before = new Set(sink.spans.map((s) => s.attributes['betrace.violation.id']));
      assert.ok(before.size < single.total, `killed before it exported everything (${before.size} of ${single.total})`);
      sink.delayMs = 0;
      const b = await replay({ group: 'job-2', emit: true, config });
      assert.ok(b.total > 0 && b.total < single.total, `the second member replayed what the first did not mark done (${b.total} of ${single.total})`);
      const exported = sink.spans.map((s) => String(s.attributes['betrace.violation.id']));
      assert.deepEqual([...new Set(exported)].sort(), single.violations.map((v) => v.violation_id).sort(), 'every violation exported');
      const times = new Map<string, number>();
      for (const id of exported) times.set(id, (times.get(id) ?? 0) + 1);
      assert.ok([...times.values()].every((n) => n <= 2), 'none exported more than twice');
      console.log(`${exported.length} violation spans exported for ${single.total} violations (${before.size} before the kill)`);
    } finally {
      await sink.close();
    }
  });
});
