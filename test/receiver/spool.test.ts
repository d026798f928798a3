/**
 * The receiver's disk spool (src/receiver/spool.ts) in front of a fake inner producer (a
 * pure unit test: the inner producer is what the Kafka producer is to it): every record
 * arrives, in append order; a send is acknowledged only once fsynced; a new spool on the
 * same directory after a crash (no shutdown) delivers everything in order; a torn tail is
 * cut; full and failing writes refuse as retryable and lose nothing else; an undeliverable
 * record is skipped and counted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/index.ts';
import { Spool, type SpoolOptions } from '../../src/receiver/spool.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.ts';
import type { ProduceResult, TraceRecord, TransportProducer } from '../../src/transport/transport.ts';
import { waitUntil } from '../helpers/pipeline.ts';

/** An inner producer that records what it is given; `gate` holds its answers while set. */
class FakeInner implements TransportProducer {
  readonly received: TraceRecord[] = [];
  calls = 0;
  gate: Promise<void> | undefined;
  answer: (records: readonly TraceRecord[]) => ProduceResult = () => ({ status: 'success' });
  started = false;
  stopped = false;
  #open: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.#open = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.#open?.();
  }

  start(): Promise<void> {
    this.started = true;
    return Promise.resolve();
  }

  async send(records: readonly TraceRecord[]): Promise<ProduceResult> {
    this.calls++;
    while (this.gate !== undefined) await this.gate;
    const result = this.answer(records);
    if (result.status === 'success') for (const r of records) this.received.push({ ...r, payload: Uint8Array.from(r.payload) });
    return result;
  }

  shutdown(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

function record(i: number, bytes = 200): TraceRecord {
  const payload = new Uint8Array(bytes);
  for (let j = 0; j < bytes; j++) payload[j] = (i * 31 + j) & 0xff;
  return { traceId: i.toString(16).padStart(32, '0'), payload, spanCount: 1 + (i % 7), timestampMs: 1_700_000_000_000 + i, ...(i % 2 === 0 ? { rootSpans: i % 3 } : {}) };
}

function ids(records: readonly TraceRecord[]): number[] {
  return records.map((r) => parseInt(r.traceId, 16));
}

function assertSameRecord(got: TraceRecord, i: number, bytes = 200): void {
  const want = record(i, bytes);
  assert.equal(got.traceId, want.traceId);
  assert.equal(got.spanCount, want.spanCount);
  assert.equal(got.timestampMs, want.timestampMs);
  assert.equal(got.rootSpans, want.rootSpans);
  assert.deepEqual(Buffer.from(got.payload), Buffer.from(want.payload), `payload of record ${i}`);
}

interface Harness {
  readonly dir: string;
  readonly logs: string[];
  readonly metrics: Metrics;
  spool(inner: TransportProducer, options?: Partial<SpoolOptions>): Spool;
}

function harness(dir = mkdtempSync(join(tmpdir(), 'betrace-spool-'))): Harness {
  const logs: string[] = [];
  const metrics = createMetrics();
  const logger = createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }));
  return {
    dir,
    logs,
    metrics,
    spool: (inner, options = {}) => new Spool({ dir, inner, maxBytes: 64 * 1024 * 1024, retryAfterMs: 500, logger, metrics, ...options }),
  };
}

async function metric(metrics: Metrics, name: keyof Metrics, labels: Record<string, string> = {}): Promise<number> {
  const m = metrics[name] as { get(): Promise<{ values: { value: number; labels: Record<string, string | number> }[] }> };
  return (await m.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

describe('receiver spool', () => {
  it('delivers every record of concurrent sends, in append order, each whole', async () => {
    const h = harness();
    const inner = new FakeInner();
    const spool = h.spool(inner, { maxBatchBytes: 8 * 1024 });
    try {
      await spool.start();
      assert.equal(inner.started, true, 'the spool starts its inner producer');
      const sends: Promise<ProduceResult>[] = [];
      for (let i = 0; i < 300; i++) sends.push(spool.send(i % 3 === 0 ? [record(i), record(i + 100_000)] : [record(i)]));
      for (const r of await Promise.all(sends)) assert.deepEqual(r, { status: 'success' });
      await waitUntil(() => inner.received.length === 400, 10_000, 'every record delivered');
      const want = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? [i, i + 100_000] : [i])).flat();
      assert.deepEqual(ids(inner.received), want, 'in append order');
      for (const r of inner.received) assertSameRecord(r, parseInt(r.traceId, 16));
      assert.ok(inner.calls < 300, `consecutive frames batched (${inner.calls} inner calls for 300 frames)`);
      const syncs = await metric(h.metrics, 'receiverSpoolSyncs');
      assert.ok(syncs >= 1 && syncs < 300, `group commit: ${syncs} fdatasyncs for 300 concurrent sends`);
      assert.equal(await metric(h.metrics, 'receiverSpoolDelivered'), 400);
      await waitUntil(async () => (await metric(h.metrics, 'receiverSpoolPendingRecords')) === 0, 5_000, 'nothing pending');
      assert.equal(await metric(h.metrics, 'receiverSpoolPendingBytes'), 0);
      assert.equal(await metric(h.metrics, 'receiverSpoolOldestAge'), 0);
    } finally {
      await spool.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
    assert.equal(inner.stopped, true, 'the spool shuts its inner producer down');
  });

  it('acknowledges a send only once its bytes are fdatasynced', async () => {
    const h = harness();
    const inner = new FakeInner();
    const spool = h.spool(inner);
    // The FileHandle class is not exported: patch its prototype through an instance.
    const probe = await open(join(h.dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const datasync = proto.datasync;
    let gate: (() => void) | undefined;
    let syncing = 0;
    try {
      await spool.start();
      proto.datasync = async function (this: unknown) {
        syncing++;
        await new Promise<void>((resolve) => (gate = resolve));
        return datasync.call(this);
      };
      let answered = false;
      const sent = spool.send([record(1)]).then((r) => ((answered = true), r));
      await waitUntil(() => syncing === 1, 5_000, 'the fdatasync started');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(answered, false, 'not acknowledged while the fdatasync is under way');
      assert.equal(inner.calls, 0, 'nor handed to the inner producer');
      proto.datasync = datasync;
      gate!();
      assert.deepEqual(await sent, { status: 'success' });
      await waitUntil(() => inner.received.length === 1, 5_000, 'delivered after the sync');
    } finally {
      proto.datasync = datasync;
      gate?.();
      await spool.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('acknowledges while the inner producer is blocked, and a new spool on the directory after a crash delivers everything in order', async () => {
    const h = harness();
    const blocked = new FakeInner();
    blocked.hold();
    // Frames read back span several segments; the memory bound forces reading back even before the crash.
    const crashed = h.spool(blocked, { segmentBytes: 64 * 1024, memoryBytes: 32 * 1024, cursorIntervalMs: 10 });
    await crashed.start();
    for (let wave = 0; wave < 8; wave++) {
      const acks = await Promise.all(Array.from({ length: 25 }, (_, i) => crashed.send([record(wave * 25 + i, 1000)])));
      assert.ok(acks.every((r) => r.status === 'success'), 'acknowledged with the inner producer blocked');
    }
    assert.equal(blocked.received.length, 0);
    assert.equal(await metric(h.metrics, 'receiverSpoolPendingRecords'), 200);
    assert.ok(readdirSync(h.dir).filter((f) => f.endsWith('.seg')).length >= 3, 'several segments');
    // The age gauge is refreshed every second: it shows a second once a refresh comes after the first second.
    await waitUntil(async () => (await metric(h.metrics, 'receiverSpoolOldestAge')) >= 1, 3_000, 'the oldest frame to age');
    assert.match(crashed.health().degraded ? '' : 'healthy', /healthy/, 'not degraded within behindMs');
    // A crash: `crashed` is never shut down (its inner producer stays blocked for good).

    const h2 = harness(h.dir);
    const inner = new FakeInner();
    const restarted = h2.spool(inner, { segmentBytes: 64 * 1024, memoryBytes: 32 * 1024 });
    try {
      await restarted.start();
      assert.equal(await metric(h2.metrics, 'receiverSpoolPendingRecords'), 200, 'what was spooled is found again');
      const later = await Promise.all(Array.from({ length: 50 }, (_, i) => restarted.send([record(200 + i, 1000)])));
      assert.ok(later.every((r) => r.status === 'success'));
      await waitUntil(() => inner.received.length === 250, 10_000, 'all 250 delivered');
      assert.deepEqual(ids(inner.received), Array.from({ length: 250 }, (_, i) => i), 'old frames first, then new ones, in order');
      for (const r of inner.received) assertSameRecord(r, parseInt(r.traceId, 16), 1000);
      await waitUntil(() => readdirSync(h.dir).filter((f) => f.endsWith('.seg')).length === 1, 5_000, 'delivered segments deleted');
    } finally {
      await restarted.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('resumes at the cursor after a shutdown: delivered frames are not delivered again', async () => {
    const h = harness();
    const inner = new FakeInner();
    // Only the cursor written at shutdown records the progress.
    const spool = h.spool(inner, { shutdownTimeoutMs: 200, cursorIntervalMs: 60_000 });
    await spool.start();
    await Promise.all(Array.from({ length: 20 }, (_, i) => spool.send([record(i)])));
    await waitUntil(() => inner.received.length === 20, 5_000, '20 delivered');
    inner.hold();
    await Promise.all(Array.from({ length: 10 }, (_, i) => spool.send([record(20 + i)])));
    await spool.shutdown();
    inner.release();
    assert.deepEqual(await spool.send([record(99)]), { status: 'retryable', retryInMillis: 500, error: 'the spool is not accepting records (not started, or shutting down)' });
    assert.equal(await metric(h.metrics, 'receiverSpoolRefused', { reason: 'shutting_down' }), 1);
    assert.ok(h.logs.some((l) => /stay spooled for the next start/.test(l)), 'what stays spooled is logged');

    const next = new FakeInner();
    const again = harness(h.dir).spool(next);
    try {
      await again.start();
      await waitUntil(() => next.received.length >= 10, 5_000, 'the rest delivered');
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(ids(next.received).slice(-10), Array.from({ length: 10 }, (_, i) => 20 + i));
      // At least once: the frames of the batch in flight at shutdown may come again, nothing before them.
      assert.ok(next.received.length <= 11, `only the undelivered frames again (${next.received.length})`);
    } finally {
      await again.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('cuts a torn tail at start, logs and counts it, and delivers every whole frame', async () => {
    const h = harness();
    const blocked = new FakeInner();
    blocked.hold();
    const crashed = h.spool(blocked);
    await crashed.start();
    await Promise.all(Array.from({ length: 5 }, (_, i) => crashed.send([record(i)])));
    const segment = join(h.dir, readdirSync(h.dir).find((f) => f.endsWith('.seg'))!);
    const whole = statSync(segment).size;
    // A write cut short by the crash: the start of a frame header and some of its body.
    appendFileSync(segment, Buffer.concat([Buffer.from('BTSP\x01\x00\x00\x00', 'latin1'), Buffer.alloc(4, 0xff), Buffer.alloc(37, 7)]));

    const h2 = harness(h.dir);
    const inner = new FakeInner();
    const restarted = h2.spool(inner);
    try {
      await restarted.start();
      assert.equal(statSync(segment).size, whole, 'cut back to the last whole frame');
      assert.equal(await metric(h2.metrics, 'receiverSpoolTornBytes'), 49);
      assert.ok(h2.logs.some((l) => /torn tail/.test(l) && /"bytes":49/.test(l)), 'logged with its size');
      await restarted.send([record(5)]);
      await waitUntil(() => inner.received.length === 6, 5_000, '6 delivered');
      assert.deepEqual(ids(inner.received), [0, 1, 2, 3, 4, 5]);
      for (const r of inner.received) assertSameRecord(r, parseInt(r.traceId, 16));
    } finally {
      await restarted.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('refuses as retryable when full, reports it, and loses nothing it acknowledged', async () => {
    const h = harness();
    const inner = new FakeInner();
    inner.hold();
    const spool = h.spool(inner, { maxBytes: 256 * 1024, segmentBytes: 64 * 1024 });
    try {
      await spool.start();
      const accepted: number[] = [];
      let refused: ProduceResult | undefined;
      for (let i = 0; i < 1000 && refused === undefined; i++) {
        const r = await spool.send([record(i, 4000)]);
        if (r.status === 'success') accepted.push(i);
        else refused = r;
      }
      assert.equal(refused?.status, 'retryable');
      assert.match(refused.status === 'retryable' ? refused.error : '', /the spool is full: \d+ of 262144 bytes \(receiver\.spool\.max_bytes\)/);
      assert.ok(accepted.length > 50, `${accepted.length} accepted before full`);
      assert.ok(spool.diskBytes <= 256 * 1024, 'the files stay within max_bytes');
      assert.equal(await metric(h.metrics, 'receiverSpoolRefused', { reason: 'full' }), 1);
      const health = spool.health();
      assert.match(health.degraded ? health.reason : 'not degraded', /the spool is full/);
      assert.equal((await spool.send([record(5000, 4000)])).status, 'retryable', 'still full');

      inner.release();
      await waitUntil(() => inner.received.length === accepted.length, 10_000, 'every accepted record delivered');
      assert.deepEqual(ids(inner.received), accepted, 'nothing acknowledged is lost, in order');
      assert.deepEqual(await spool.send([record(6000, 4000)]), { status: 'success' }, 'accepted again once Kafka took the spool');
      assert.equal(spool.health().degraded, false);
    } finally {
      await spool.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('refuses as retryable when a write fails (ENOSPC), keeps every earlier frame, and accepts again once space returns', async () => {
    const root = mkdtempSync(join(tmpdir(), 'betrace-spool-full-'));
    const dir = join(root, 'spool');
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    const h = harness(dir);
    const inner = new FakeInner();
    inner.hold();
    const spool = h.spool(inner, { segmentBytes: 64 * 1024 });
    try {
      await spool.start();
      const before = await Promise.all(Array.from({ length: 10 }, (_, i) => spool.send([record(i, 2000)])));
      assert.ok(before.every((r) => r.status === 'success'));
      // Fill the filesystem (a 1 MiB tmpfs) but for 8 KiB: the next frame is written in part, then ENOSPC.
      const filler = join(dir, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024, 1));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
      truncateSync(filler, statSync(filler).size - 8192);
      const failed = await spool.send([record(10, 20_000)]);
      assert.equal(failed.status, 'retryable');
      assert.match(failed.status === 'retryable' ? failed.error : '', /ENOSPC.*nothing of this request was kept/);
      assert.equal(await metric(h.metrics, 'receiverSpoolRefused', { reason: 'write_failed' }), 1);
      const health = spool.health();
      assert.match(health.degraded ? health.reason : 'not degraded', /the spool refuses exports: writing .*\.seg failed: ENOSPC/);

      rmSync(join(dir, 'filler'));
      // Less than the part written of the refused frame: what is left of it past them must be gone.
      const after = await Promise.all(Array.from({ length: 2 }, (_, i) => spool.send([record(11 + i, 2000)])));
      assert.ok(after.every((r) => r.status === 'success'), 'accepted again once space returns');
      assert.equal(spool.health().degraded, false);
    } finally {
      // A crash with the inner producer blocked: what a restart finds is what was acknowledged.
      const h2 = harness(dir);
      const next = new FakeInner();
      const restarted = h2.spool(next);
      await restarted.start();
      await waitUntil(() => next.received.length === 12, 5_000, '12 delivered after the restart');
      assert.deepEqual(ids(next.received), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12], 'earlier frames intact, the refused one absent');
      assert.equal(await metric(h2.metrics, 'receiverSpoolTornBytes'), 0, 'the failed write was cut back, no torn tail left');
      await restarted.shutdown();
      inner.release();
      execFileSync('umount', ['-l', dir]);
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('skips a record the inner producer refuses as never deliverable, counts and logs it, and delivers the rest in order', async () => {
    const h = harness();
    const inner = new FakeInner();
    inner.hold();
    const poison = record(7).traceId;
    inner.answer = (records) => (records.some((r) => r.traceId === poison) ? { status: 'failure', error: 'record too large for the topic' } : { status: 'success' });
    const spool = h.spool(inner);
    try {
      await spool.start();
      await Promise.all(Array.from({ length: 12 }, (_, i) => spool.send(i === 6 ? [record(6), record(7), record(8)] : [record(i < 6 ? i : i + 2)])));
      inner.release();
      await waitUntil(() => inner.received.length === 13, 5_000, '13 delivered');
      assert.deepEqual(ids(inner.received), [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]);
      assert.equal(await metric(h.metrics, 'receiverSpoolUndeliverable'), 1);
      assert.ok(h.logs.some((l) => /never deliverable/.test(l) && l.includes(poison) && /record too large for the topic/.test(l)), 'logged with the reason');
    } finally {
      await spool.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('retries what the inner producer refuses as retryable, in order, and reports Kafka behind', async () => {
    const h = harness();
    const inner = new FakeInner();
    let refusals = 3;
    inner.answer = () => (refusals-- > 0 ? { status: 'retryable', retryInMillis: 20, error: 'Kafka produce failed: broker down' } : { status: 'success' });
    const spool = h.spool(inner, { behindMs: 0 });
    try {
      await spool.start();
      await Promise.all(Array.from({ length: 5 }, (_, i) => spool.send([record(i)])));
      await waitUntil(() => spool.health().degraded, 2_000, 'degraded while behind');
      const health = spool.health();
      assert.match(health.degraded ? health.reason : '', /Kafka is behind: \d+ records/);
      await waitUntil(() => inner.received.length === 5, 5_000, 'delivered after the retries');
      assert.deepEqual(ids(inner.received), [0, 1, 2, 3, 4]);
      assert.ok(inner.calls >= 4);
    } finally {
      await spool.shutdown();
      rmSync(h.dir, { recursive: true, force: true });
    }
  });

  it('fails start with the directory named when it cannot be created', async () => {
    const root = mkdtempSync(join(tmpdir(), 'betrace-spool-bad-'));
    writeFileSync(join(root, 'file'), '');
    const h = harness(join(root, 'file', 'spool'));
    const inner = new FakeInner();
    const spool = h.spool(inner);
    try {
      await assert.rejects(spool.start(), /receiver\.spool\.dir .*file\/spool cannot be used as the spool directory: ENOTDIR/);
      assert.equal(inner.started, false);
    } finally {
      await spool.shutdown();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('config: receiver.spool defaults, its directory under data_dir, and a precise error with the embedded transport', () => {
    const kafka = parseConfig('transport: { kind: kafka }\nreceiver: { spool: { enabled: true } }\ndata_dir: /var/lib/betrace\n', { env: {} });
    assert.deepEqual(kafka.receiver.spool, { enabled: true, dir: '/var/lib/betrace/spool', maxBytes: 1024 ** 3, segmentBytes: 16 * 1024 ** 2, shutdownTimeoutMs: 10_000, degradedAfterMs: 10_000 });
    const custom = parseConfig('transport: { kind: kafka }\nreceiver: { spool: { enabled: true, dir: spool-here, max_bytes: 64MiB, segment_bytes: 4MiB } }\n', { env: {}, baseDir: '/etc/b' });
    assert.equal(custom.receiver.spool.dir, '/etc/b/spool-here');
    assert.throws(() => parseConfig('receiver:\n  spool:\n    enabled: true\n', { env: {}, source: 'b.yaml' }), /^ConfigError: b\.yaml:3:14: receiver\.spool\.enabled needs transport\.kind kafka, got "embedded"/);
    assert.throws(() => parseConfig('transport: { kind: kafka }\nreceiver: { spool: { max_bytes: 16MiB } }\n', { env: {} }), /receiver\.spool\.max_bytes must be at least 4 × receiver\.spool\.segment_bytes/);
  });
});
