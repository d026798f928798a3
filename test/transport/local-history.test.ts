/**
 * The embedded transport's local history: segments on a real directory (append, close
 * and range, reopen, torn tail, retention by size and age, reading while appending),
 * and the quick start's acceptance: after `betrace run` on the example config and a
 * few orders from the OpenTelemetry SDK, the README's replay command over the last
 * hour reports exactly the violations live evaluation found.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { LocalHistory, readLocalHistory } from '../../src/transport/local-history.ts';
import type { TraceRecord } from '../../src/transport/transport.ts';
import { runProgram } from '../helpers/cli.ts';
import { startExampleBetrace, type BetraceProcess } from '../helpers/process.ts';
import { otlpExporter } from '../helpers/sdk.ts';
import { Shop, runScenario } from '../helpers/shop.ts';

const root = join(import.meta.dirname, '..', '..');
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 1);
const quiet = createLogger('fatal');

/** A record of about 1 KiB whose payload names it, at `timestampMs`. */
function record(n: number, timestampMs: number): TraceRecord {
  const payload = Buffer.alloc(1000, n % 251);
  payload.writeUInt32LE(n, 0);
  return { traceId: n.toString(16).padStart(32, '0'), timestampMs, spanCount: 1 + (n % 3), payload };
}

async function readAll(dir: string, fromMs = -Infinity, toMs = Infinity): Promise<{ ids: number[]; segments: number; damaged: number }> {
  const ids: number[] = [];
  const r = await readLocalHistory(dir, fromMs, toMs, (records) => {
    for (const rec of records) ids.push(Buffer.from(rec.payload).readUInt32LE(0));
  });
  return { ids, segments: r.segments, damaged: r.damaged };
}

const segmentsIn = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith('.seg')).sort();

describe('local history', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'betrace-history-'));
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('appends records to segments, reopens where it stopped, and reads a range without the segments outside it', async () => {
    const d = join(dir, 'append');
    const open = (now = T0 + 72 * HOUR) => new LocalHistory({ dir: d, maxAgeMs: 0, maxBytes: 1 << 30, segmentBytes: 64 * 1024, flushIntervalMs: 5, logger: quiet, now: () => now });
    const h = open();
    await h.start();
    // Three days, a record every 36 s, in sends of 10.
    for (let n = 0; n < 7200; n += 10) h.append(Array.from({ length: 10 }, (_v, i) => record(n + i, T0 + (n + i) * 36_000)));
    await h.stop();
    const segments = await segmentsIn(d);
    assert.ok(segments.length > 20, `${segments.length} segments`);
    assert.deepEqual((await readAll(d)).ids, Array.from({ length: 7200 }, (_v, i) => i), 'every record, in append order');
    const day2 = await readAll(d, T0 + 24 * HOUR, T0 + 48 * HOUR);
    assert.ok(day2.segments < segments.length / 2, `read ${day2.segments} of ${segments.length} segments for one day of three`);
    for (let n = 2400; n < 4800; n++) assert.ok(day2.ids.includes(n), `record ${n} of day 2`);
    // Reopened: appends go on after what is there.
    const again = open();
    await again.start();
    again.append([record(7200, T0 + 72 * HOUR)]);
    await again.stop();
    const all = (await readAll(d)).ids;
    assert.equal(all.length, 7201);
    assert.equal(all.at(-1), 7200);
  });

  it('cuts a torn tail at start, and readers stop at the last whole frame while a write is under way', async () => {
    const d = join(dir, 'torn');
    const h = new LocalHistory({ dir: d, maxAgeMs: 0, maxBytes: 1 << 30, segmentBytes: 1 << 20, flushIntervalMs: 5, logger: quiet });
    await h.start();
    h.append([record(1, T0), record(2, T0 + 1)]);
    h.append([record(3, T0 + 2)]);
    await h.stop();
    const [last] = (await segmentsIn(d)).slice(-1);
    const file = join(d, last!);
    const whole = (await stat(file)).size;
    // Half a frame: what a crash (or a writer mid-write) leaves.
    await appendFile(file, Buffer.from('BTSP\x01\x00\x00\x00\xff\xff\x00\x00', 'latin1'));
    const during = await readAll(d);
    assert.deepEqual(during.ids, [1, 2, 3]);
    assert.equal(during.damaged, 0, 'the last frame being written is not damage');
    const reopened = new LocalHistory({ dir: d, maxAgeMs: 0, maxBytes: 1 << 30, segmentBytes: 1 << 20, flushIntervalMs: 5, logger: quiet });
    await reopened.start();
    assert.equal((await stat(file)).size, whole, 'the torn tail is cut');
    reopened.append([record(4, T0 + 3)]);
    await reopened.stop();
    assert.deepEqual((await readAll(d)).ids, [1, 2, 3, 4]);
  });

  it('deletes the oldest segments past max_bytes and past max_age, and says what it keeps', async () => {
    const d = join(dir, 'retention');
    let now = T0;
    const metrics = createMetrics();
    const h = new LocalHistory({ dir: d, maxAgeMs: 24 * HOUR, maxBytes: 256 * 1024, segmentBytes: 64 * 1024, flushIntervalMs: 5, metrics, logger: quiet, now: () => now });
    await h.start();
    for (let n = 0; n < 1000; n += 5) {
      h.append(Array.from({ length: 5 }, (_v, i) => record(n + i, T0 + (n + i) * 1000)));
      await h.flush();
    }
    assert.ok(h.bytes <= 256 * 1024 + 64 * 1024, `${h.bytes} bytes kept`);
    const kept = (await readAll(d)).ids;
    assert.ok(kept.length < 1000 && kept.length > 150, `${kept.length} records kept`);
    assert.deepEqual(kept, Array.from({ length: kept.length }, (_v, i) => 1000 - kept.length + i), 'the newest, the oldest deleted');
    const gauge = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]!.value;
    assert.equal(await gauge('betrace_history_bytes'), h.bytes);
    assert.equal(await gauge('betrace_history_oldest_timestamp_seconds'), (T0 + kept[0]! * 1000) / 1000);
    // A day later, records a day newer: the old ones age out.
    now = T0 + 48 * HOUR;
    for (let n = 0; n < 200; n += 5) {
      h.append(Array.from({ length: 5 }, (_v, i) => record(5000 + n + i, now + (n + i) * 1000)));
      await h.flush();
    }
    await h.stop();
    const fresh = (await readAll(d)).ids;
    // Whole segments go: of the old records, at most those sharing a segment with the first new ones remain.
    const old = fresh.filter((n) => n < 5000);
    assert.ok(old.length < 64, `${old.length} old records left of ${kept.length}`);
    assert.equal(fresh.filter((n) => n >= 5000).length, 200);
  });
});

describe('replay after the quick start', () => {
  let dataDir = '';
  let b: BetraceProcess;
  let grpc = '';
  let api = '';
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` };
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'betrace-quick-history-'));
    ({ b, grpc, api } = await startExampleBetrace('quick-history', dataDir));
  });
  after(async () => {
    await b.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('the README\'s replay command over the last hour reports exactly the violations live evaluation found', async () => {
    const shop = new Shop(() => [otlpExporter('grpc', `http://${grpc}`)]);
    const orders = runScenario(shop, 40);
    await shop.flush(200);
    await shop.shutdown();
    const injected = orders.filter((o) => o.violates !== undefined);
    assert.ok(injected.length >= 8);
    type Listed = { violations: Array<{ violation_id: string; rule_id: string; trace_id: string }> };
    let live: Listed['violations'] = [];
    const deadline = Date.now() + 60_000;
    while (live.length < injected.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      live = ((await (await fetch(`http://${api}/v1/violations?limit=1000`)).json()) as Listed).violations;
    }
    assert.deepEqual(live.map((v) => `${v.rule_id} ${v.trace_id}`).sort(), injected.map((o) => `${o.violates} ${o.traceId}`).sort(), 'live evaluation found the injected violations');
    // The README's command, as written there (the data directory set through the environment, as for betrace run).
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const line = /^npx betrace replay --rules config\/rules\/seed-invariants\.yaml --from 1h --to now --config config\/betrace\.yaml$/m.exec(readme)?.[0];
    assert.ok(line, 'the README shows the quick start\'s replay command');
    const args = [...line.split(' ').slice(1), '--format', 'json'];
    const r = await runProgram('npx', args, { cwd: root, env: { ...env, BETRACE_DATA_DIR: dataDir } });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const report = JSON.parse(r.stdout) as { violations: Array<{ violation_id: string }>; source: string; incomplete: boolean };
    assert.match(report.source, /local history/);
    assert.deepEqual(report.violations.map((v) => v.violation_id).sort(), live.map((v) => v.violation_id).sort(), 'the same violations, the same ids');
  });
});
