/**
 * The composition root stops a process's components by phase: intake (receivers, then the
 * producer they hand to), consumers and workers (their evaluation threads after them), the
 * exporters they flushed, the stores, and the admin API last, each phase in the reverse of start
 * order; a failed start stops what started, and only that.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import { ALL_ROLES, createPipeline } from '../../src/cli/pipeline.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startOtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline } from '../helpers/pipeline.ts';

/** The components named by the debug line each gets as it is stopped, in order. */
function stopped(logs: readonly string[]): string[] {
  return logs
    .map((l) => JSON.parse(l) as { msg: string; component?: string; phase?: string })
    .filter((l) => l.msg === 'stopping' && l.component !== undefined)
    .map((l) => `${l.phase}: ${l.component}`);
}

describe('shutdown order', () => {
  it('stops intake, then consumers, exporters, stores, and the admin API last', async () => {
    const sink = await startOtlpSink();
    try {
      const p = await startTestPipeline({ downstream: { endpoint: sink.url }, log: { level: 'debug' } });
      await p.stop();
      assert.deepEqual(stopped(p.logs), [
        'intake: http receiver',
        'intake: grpc receiver',
        'intake: producer',
        'consumers: replay jobs',
        'consumers: forwarder',
        'consumers: worker',
        'consumers: evaluator pool',
        'exporters: forwarder exporter',
        'exporters: violations exporter',
        'exporters: notifier',
        'stores: violation store',
        'stores: rule store',
        'stores: rule files',
        'stores: local history',
        'api: admin api',
      ]);
      await p.pipeline.shutdown();
      assert.equal(stopped(p.logs).length, 15, 'a second shutdown stops nothing again');
    } finally {
      await sink.close();
    }
  });

  it('a failed start stops what started, the failed part included, by phase', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    const dataDir = mkdtempSync(join(tmpdir(), 'betrace-order-'));
    const logs: string[] = [];
    const logger = createLogger('debug', new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }));
    try {
      const config = parseConfig(
        stringify({ data_dir: dataDir, receiver: { grpc: { endpoint: `127.0.0.1:${port}` }, http: { endpoint: '127.0.0.1:0' } }, api: { endpoint: '127.0.0.1:0' } }),
        { source: 'test-config', env: {}, baseDir: dataDir },
      );
      const pipeline = createPipeline({ config, roles: [...ALL_ROLES], logger });
      await assert.rejects(pipeline.start(), /EADDRINUSE|address already in use/i);
      // The gRPC receiver failed: what comes after it in start order (the HTTP receiver, the replay jobs, the admin API) never started.
      assert.deepEqual(stopped(logs), [
        'intake: grpc receiver',
        'intake: producer',
        'consumers: worker',
        'consumers: evaluator pool',
        'exporters: notifier',
        'stores: violation store',
        'stores: rule store',
        'stores: rule files',
        'stores: local history',
      ]);
    } finally {
      taken.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
