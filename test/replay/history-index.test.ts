/**
 * Replay through the local history's trace index: on the same history, the index gives
 * exactly the full scan's report (violations with their ids, per day, per rule, traces and
 * spans counted, late records) while reading only the records of the traces holding a
 * trigger; parts of segments the index does not cover (a chunk lost, an index cut short by
 * a crash, a segment without index, the tail written since the last chunk) are read in full,
 * so a damaged index slows a replay but never changes its answer; a rule without triggers
 * reads everything and says so; an index torn at a crash is cut back at start.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, cp, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { replayCommand } from '../../src/cli/replay.ts';
import type { ReplayReport } from '../../src/replay/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { readIndexChunks, encodeIndexChunk } from '../../src/transport/history-index.ts';
import { LocalHistory, readLocalHistoryIndexed } from '../../src/transport/local-history.ts';
import { BASE_MS, DAY_MS, noiseTrace, recordsOf, shopTrace, replayAnswer, type Breaks, type SimTrace } from './history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const notTTY = { isTTY: false, write: () => true };
const quiet = createLogger('fatal');
const FIRST_MS = BASE_MS - 3 * DAY_MS;
const BREAKS: readonly Breaks[] = ['payment-idempotency', 'admin-audit-log', 'shipment-requires-payment', 'cross-tenant-isolation'];

/** Three days: mostly noise (no trigger of any seed rule), one checkout in 20, a quarter of those breaking a rule. */
function history(): SimTrace[] {
  const traces: SimTrace[] = [];
  for (let i = 0; i < 3000; i++) {
    const startMs = FIRST_MS + i * 86_000 + (i % 7) * 1000;
    if (i % 20 === 3) traces.push(shopTrace(`idx-${i}`, startMs, i % 80 === 3 ? BREAKS[(i / 80) % 4 | 0] : undefined, { admin: i % 40 === 23 }));
    else traces.push(noiseTrace(`idx-${i}`, startMs));
  }
  return traces;
}

async function replay(config: string, extra: { fullScan?: boolean; rules?: string } = {}): Promise<ReplayReport> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const status = await replayCommand(
    { rules: extra.rules ?? RULES, from: new Date(FIRST_MS + DAY_MS / 2).toISOString(), to: new Date(FIRST_MS + 2.5 * DAY_MS).toISOString(), source: 'history', format: 'json', env: {}, config, ...(extra.fullScan === true ? { fullScan: true } : {}) },
    { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) },
    notTTY,
  );
  assert.equal(status, 0, stderr.join('\n'));
  return JSON.parse(stdout.join('\n')) as ReplayReport;
}

describe('replay through the local history\'s trace index', () => {
  let dir = '';
  let config = '';
  let full: ReplayReport;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'betrace-index-'));
    config = join(dir, 'betrace.yaml');
    await writeFile(config, `data_dir: ${JSON.stringify(dir)}\n`);
    const h = new LocalHistory({ dir: join(dir, 'history'), maxAgeMs: 0, maxBytes: 1 << 30, segmentBytes: 96 * 1024, flushIntervalMs: 1, logger: quiet });
    await h.start();
    const records = recordsOf(history());
    // Sends of up to 8 records, each flushed on its own so that segments hold many index chunks.
    for (let i = 0; i < records.length; i += 8) {
      h.append(records.slice(i, i + 8).map((r) => ({ traceId: r.key, payload: r.value, spanCount: 0, timestampMs: r.timestampMs })));
      if (i % 64 === 0) await h.flush();
    }
    await h.stop();
    full = await replay(config, { fullScan: true });
    assert.ok(full.total >= 20, `the history breaks rules (${full.total} violations)`);
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('gives the full scan\'s report, reading only the records of traces holding a trigger', async () => {
    const indexed = await replay(config);
    assert.deepEqual(replayAnswer(indexed), replayAnswer(full));
    // The same records, in the same order, as the full scan: the same counts of what was read.
    assert.deepEqual([indexed.records_read, indexed.spans_read, indexed.history_start], [full.records_read, full.spans_read, full.history_start]);
    assert.match(indexed.source, /through its trace index/);
    assert.match(full.source, /full scan/);
    assert.equal(indexed.records_indexed, full.records_read, 'every record is known from the index');
    assert.equal(full.records_indexed, 0);
    // Checkouts are one trace in 20; their records are about a quarter of all.
    assert.ok(indexed.records_fetched > 0 && indexed.records_fetched < full.records_read / 3, `${indexed.records_fetched} of ${full.records_read} records read`);
    assert.match(indexed.source, / 0 not indexed/);
  });

  it('reads what the index does not cover in full: a lost chunk, an index cut short, a segment without index, the unindexed tail', async () => {
    const damaged = join(dir, 'damaged');
    await cp(join(dir, 'history'), join(damaged, 'history'), { recursive: true });
    const historyDir = join(damaged, 'history');
    const indexes = (await readdir(historyDir)).filter((f) => f.endsWith('.idx')).sort();
    assert.ok(indexes.length >= 7, `${indexes.length} segments`);
    // The middle segments: the first ones hold only the time before the range.
    const chunksOf = async (file: string) => readIndexChunks(await readFile(join(historyDir, file))).chunks;
    // 1: a chunk in the middle lost (its names kept in the next, as a writer does after a failed write).
    const first = await chunksOf(indexes[3]!);
    assert.ok(first.length >= 4);
    const lost = first[2]!;
    const rest = first.filter((_c, i) => i !== 2).map((c, i) => (i === 2 ? { ...c, newNames: [...lost.newNames, ...c.newNames] } : c));
    await writeFile(join(historyDir, indexes[3]!), Buffer.concat(rest.map(encodeIndexChunk)));
    // 2: an index cut in the middle of a chunk (a crash).
    const second = await readFile(join(historyDir, indexes[4]!));
    await writeFile(join(historyDir, indexes[4]!), second.subarray(0, Math.floor(second.length / 2)));
    // 3: no index at all.
    await unlink(join(historyDir, indexes[5]!));
    // 4: the last segment's last chunks not written yet.
    const lastFile = indexes.at(-1)!;
    const last = await chunksOf(lastFile);
    await writeFile(join(historyDir, lastFile), Buffer.concat(last.slice(0, Math.ceil(last.length / 2)).map(encodeIndexChunk)));
    const damagedConfig = join(damaged, 'betrace.yaml');
    await writeFile(damagedConfig, `data_dir: ${JSON.stringify(damaged)}\n`);
    const r = await replay(damagedConfig);
    assert.deepEqual(replayAnswer(r), replayAnswer(full));
    const gaps = /(\d+) not indexed/.exec(r.source);
    assert.ok(gaps !== null && Number(gaps[1]) > 0, r.source);
    assert.ok(r.records_indexed < full.records_read, 'the gaps\' records are read, not known from the index');
  });

  it('reads every record when a rule has no triggers, and says so', async () => {
    const rules = join(dir, 'no-triggers.yaml');
    // A bare trace.has fails without its span: every trace must be read.
    await writeFile(rules, ['rules:', '  - id: has-cache-get', '    name: A cache is read', '    severity: low', '    condition: trace.has(cache.get)', ''].join('\n'));
    const r = await replay(config, { rules });
    assert.match(r.source, /full scan: some rule has no triggers/);
    assert.equal(r.records_indexed, 0);
    assert.equal(r.records_read, full.records_read);
  });

  it('cuts an index torn by a crash back at start, and indexes what follows', async () => {
    const d = join(dir, 'torn');
    const open = () => new LocalHistory({ dir: d, maxAgeMs: 0, maxBytes: 1 << 30, segmentBytes: 1 << 20, flushIntervalMs: 1, logger: quiet });
    const records = recordsOf(history().slice(0, 200)).map((r) => ({ traceId: r.key, payload: r.value, spanCount: 0, timestampMs: r.timestampMs }));
    let h = open();
    await h.start();
    h.append(records.slice(0, 100));
    await h.stop();
    const idx = (await readdir(d)).find((f) => f.endsWith('.idx'))!;
    await appendFile(join(d, idx), Buffer.from('BTIX\u0001torn'));
    h = open();
    await h.start();
    h.append(records.slice(100));
    await h.stop();
    let entries = 0;
    const read = await readLocalHistoryIndexed(d, 0, Date.UTC(2100, 0, 1), { onChunk: (_s, chunk) => void (entries += chunk.count), onRecords: () => undefined });
    assert.equal(read.gapRecords, 0);
    assert.equal(entries, records.length);
  });
});
