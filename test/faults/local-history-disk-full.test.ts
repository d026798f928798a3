/**
 * Fault: the local history's disk fills up, then space returns. The history directory is
 * a 1 MiB tmpfs holding a filler file. While full, appends are dropped, counted
 * (betrace_history_dropped_records_total) and logged once with the error; nothing throws.
 * A write the disk takes only part of (a short write, no error) is a failure too. The
 * segment is cut back to its last whole frame, so once the filler is deleted the next
 * appends are written after it, and a replay read gives exactly the records kept, with no
 * damaged segment.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { LocalHistory, readLocalHistory } from '../../src/transport/local-history.ts';
import type { TraceRecord } from '../../src/transport/transport.ts';

function mountTmpfs(dir: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`this test needs to mount a 1 MiB tmpfs (root or CAP_SYS_ADMIN): mount failed: ${e.stderr?.toString().trim() || e.message}`, { cause: err });
  }
}

const record = (n: number): TraceRecord => ({
  traceId: n.toString(16).padStart(32, '0'),
  payload: Buffer.alloc(2000, n & 0xff),
  spanCount: 1,
  timestampMs: Date.UTC(2026, 11, 1) + n,
});

describe('local history on a full disk', () => {
  it('drops and counts what does not fit, stays readable, and writes again once there is room', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-history-full-'));
    mountTmpfs(dir);
    const lines: string[] = [];
    const logger = createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
    const metrics = createMetrics();
    const historyDir = join(dir, 'history');
    const history = new LocalHistory({ dir: historyDir, maxAgeMs: 0, maxBytes: 64 * 1024 * 1024, segmentBytes: 16 * 1024 * 1024, logger, metrics, flushIntervalMs: 10 });
    try {
      await history.start();
      // 300 KiB fit before the filler takes the rest.
      for (let n = 0; n < 150; n++) history.append([record(n)]);
      await history.flush();
      const filler = join(dir, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024, 1));
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
      for (let n = 150; n < 300; n++) {
        history.append([record(n)]);
        if (n % 10 === 9) await history.flush();
      }
      await history.flush();
      const dropped = (await metrics.registry.getSingleMetric('betrace_history_dropped_records_total')!.get()).values[0]?.value ?? 0;
      assert.ok(dropped > 0, 'appends past the full disk are dropped and counted');
      // The disk may take part of a write without an error (a short write) before it refuses with ENOSPC.
      assert.ok(lines.some((l) => l.includes('writing to the local history failed') && /ENOSPC|short write/.test(l)), 'logged with the error');

      rmSync(filler);
      for (let n = 300; n < 310; n++) history.append([record(n)]);
      await history.flush();

      const read: string[] = [];
      const result = await readLocalHistory(historyDir, 0, Date.UTC(2100, 0, 1), (batch) => {
        for (const r of batch) read.push(r.traceId);
      });
      assert.equal(result.damaged, 0, 'whole frames only: the failed write was cut back');
      assert.equal(read.length + dropped, 310, `${read.length} read + ${dropped} dropped = every append`);
      assert.deepEqual(read.slice(0, 150), Array.from({ length: 150 }, (_, n) => record(n).traceId), 'what was written before the disk filled');
      assert.deepEqual(read.slice(-10), Array.from({ length: 10 }, (_, n) => record(300 + n).traceId), 'written again once there is room');
    } finally {
      await history.stop();
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
