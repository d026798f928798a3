/**
 * The violation file's retention (violations.max_bytes, violations.max_age) on real
 * files: past max_bytes the oldest lines go, down to three quarters of it; violations
 * evaluated before max_age go at start and while running; the file stays whole lines
 * of records, what the store serves is what the file holds, and a restart reads the same.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { ViolationStore } from '../../src/violations/violation-store.ts';
import type { ViolationRecord } from '../../src/violations/violation-record.ts';
import { violationRecord } from '../helpers/violation-records.ts';

const NOW = 1_800_000_000_000;
const DAY = 86_400_000;

function quietLogger(lines: string[] = []) {
  return createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
}

function fileIds(dir: string): string[] {
  const text = readFileSync(join(dir, 'violations.jsonl'), 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'whole lines');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as ViolationRecord).violation_id);
}

function servedIds(store: ViolationStore): string[] {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = store.query({ limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    ids.push(...page.violations.map((v) => v.violation_id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return ids.reverse();
}

async function written(store: ViolationStore): Promise<void> {
  await store.settled();
  assert.equal(store.pending, 0);
}

describe('violation store retention', () => {
  it('keeps the file under max_bytes by removing the oldest violations, and serves what it keeps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-vretention-'));
    const metrics = createMetrics();
    const log: string[] = [];
    const maxBytes = 20_000;
    const store = new ViolationStore({ dataDir: dir, logger: quietLogger(log), metrics, maxBytes, now: () => NOW });
    await store.start();
    const all: string[] = [];
    for (let n = 0; n < 300; n++) {
      const r = violationRecord(n, { evaluated_at_ms: NOW - 1000 + n }) as unknown as ViolationRecord;
      all.push(r.violation_id);
      store.append(r);
      if (n % 50 === 49) await written(store);
    }
    await written(store);
    const size = statSync(join(dir, 'violations.jsonl')).size;
    assert.ok(size <= maxBytes, `${size} bytes after 300 violations, bound ${maxBytes}`);
    const kept = fileIds(dir);
    assert.ok(kept.length > 0 && kept.length < all.length);
    assert.deepEqual(kept, all.slice(all.length - kept.length), 'the newest violations, in order');
    assert.deepEqual(servedIds(store), kept, 'served = the file');
    const removed = (await metrics.registry.getSingleMetric('betrace_violation_store_removed_total')!.get()).values[0]!.value;
    assert.equal(removed + kept.length, all.length);
    assert.ok(log.some((l) => l.includes('the oldest violations were removed')));
    // A later violation is appended after what was kept, on a line of its own.
    store.append(violationRecord(1000, { evaluated_at_ms: NOW }) as unknown as ViolationRecord);
    await written(store);
    assert.equal(fileIds(dir).at(-1), 'v-1000');
    await store.shutdown();
    assert.ok(!existsSync(join(dir, 'violations.jsonl.compact')));

    const again = new ViolationStore({ dataDir: dir, logger: quietLogger(), maxBytes, now: () => NOW });
    await again.start();
    assert.deepEqual(servedIds(again), fileIds(dir));
    await again.shutdown();
  });

  it('removes violations evaluated before max_age, at start and as time passes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-vretention-'));
    const lines = [
      ...[0, 1, 2].map((n) => violationRecord(n, { evaluated_at_ms: NOW - 100 * DAY })),
      ...[3, 4].map((n) => violationRecord(n, { evaluated_at_ms: NOW - 10 * DAY })),
      ...[5, 6].map((n) => violationRecord(n, { evaluated_at_ms: NOW - DAY })),
    ];
    writeFileSync(join(dir, 'violations.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    let now = NOW;
    const store = new ViolationStore({ dataDir: dir, logger: quietLogger(), maxAgeMs: 90 * DAY, now: () => now });
    await store.start();
    assert.deepEqual(fileIds(dir), ['v-3', 'v-4', 'v-5', 'v-6'], 'older than 90 days: removed at start');
    assert.deepEqual(servedIds(store), fileIds(dir));
    // 85 days later the next write finds v-3 and v-4 past the bound.
    now = NOW + 85 * DAY;
    store.append(violationRecord(7, { evaluated_at_ms: now }) as unknown as ViolationRecord);
    await written(store);
    assert.deepEqual(fileIds(dir), ['v-5', 'v-6', 'v-7']);
    assert.deepEqual(servedIds(store), ['v-5', 'v-6', 'v-7']);
    await store.shutdown();
  });

  it('keeps everything without bounds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-vretention-'));
    const store = new ViolationStore({ dataDir: dir, logger: quietLogger(), now: () => NOW });
    await store.start();
    for (let n = 0; n < 50; n++) store.append(violationRecord(n, { evaluated_at_ms: 0 }) as unknown as ViolationRecord);
    await written(store);
    assert.equal(fileIds(dir).length, 50);
    await store.shutdown();
  });
});
