/**
 * Every component shares one lifecycle: shutdown() is safe before start(),
 * start() then shutdown() works, and shutdown() twice is harmless.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Component } from '../../src/component.ts';
import { ApiServer } from '../../src/api/index.ts';
import { Forwarder, QueuedExporter, type PayloadSender } from '../../src/exporter/index.ts';
import { GrpcReceiver, HttpReceiver, Ingest } from '../../src/receiver/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createEmbeddedTransport } from '../../src/transport/embedded.ts';
import { RuleFiles, RuleRegistry } from '../../src/ruleset/index.ts';
import { ViolationStore } from '../../src/violations/index.ts';
import { EvaluatorPool, Worker } from '../../src/worker/index.ts';
import { FileRuleStore } from '../../src/ruleset/rule-store.ts';

const logger = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

function fixtures() {
  const metrics = createMetrics();
  const transport = createEmbeddedTransport({ partitions: 2, partitioner: 'sarama', maxQueuedBytes: 1 << 20, retryAfterMs: 100, metrics });
  const sender: PayloadSender = { send: () => Promise.resolve({ status: 'success' }), shutdown: () => Promise.resolve() };
  const exporter = () =>
    new QueuedExporter({
      name: 'forwarder',
      sender,
      config: { maxQueueSpans: 100, maxBatchSpans: 10, batchTimeoutMs: 5, maxRetryTimeMs: 100 },
      metrics,
      logger,
      whenFull: 'wait_while_delivering',
    });
  const dataDir = mkdtempSync(join(tmpdir(), 'betrace-lifecycle-'));
  const ingest = new Ingest({ producer: transport.createProducer(), metrics, maxInFlightBytes: 1 << 20, retryAfterMs: 100 });
  const registry = new RuleRegistry();
  const components: Record<string, () => Component> = {
    'grpc receiver': () => new GrpcReceiver({ host: '127.0.0.1', port: 0, maxRequestBytes: 1 << 20, ingest, metrics, logger }),
    'http receiver': () => new HttpReceiver({ host: '127.0.0.1', port: 0, maxRequestBytes: 1 << 20, ingest, metrics, logger }),
    'admin api': () => new ApiServer({ host: '127.0.0.1', port: 0, metrics, logger }),
    'export queue': exporter,
    forwarder: () => new Forwarder({ transport, exporter: exporter(), logger, group: 'f' }),
    'evaluator pool': () => new EvaluatorPool({ threads: 1, logger }),
    worker: () =>
      new Worker({
        transport,
        group: 'w',
        pool: new EvaluatorPool({ threads: 1, logger }),
        windows: { idleMs: 100, maxDurationMs: 1000, rootIdleMs: 0, maxSpans: 100, graceMs: 100 },
        maxLiveTraces: 100,
        evaluationBudgetMs: 100,
        exporter: undefined,
        sinks: [],
        metrics,
        logger,
        evaluateOnShutdown: true,
      }),
    'rule files': () => new RuleFiles({ patterns: [join(dataDir, '*.yaml')], registry, logger, metrics }),
    'violation store': () => new ViolationStore({ dataDir, logger }),
    'rule store': () => new FileRuleStore({ dataDir, registry, logger }),
  };
  return components;
}

describe('component lifecycle', () => {
  for (const [name, make] of Object.entries(fixtures())) {
    it(`${name}: shutdown before start, start, shutdown twice`, async () => {
      await assert.doesNotReject(make().shutdown(), 'shutdown before start');
      const c = make();
      await assert.doesNotReject(c.start(), 'start');
      const port = (c as { port?: number }).port;
      if (port !== undefined) assert.ok(port > 0, 'listening on a port');
      await assert.doesNotReject(c.shutdown(), 'shutdown');
      await assert.doesNotReject(c.shutdown(), 'second shutdown');
      if (port !== undefined) {
        const refused = await new Promise<boolean>((resolve) => {
          const socket = createConnection({ host: '127.0.0.1', port }, () => {
            socket.destroy();
            resolve(false);
          });
          socket.on('error', () => resolve(true));
        });
        assert.ok(refused, 'the port is closed after shutdown');
      }
    });
  }
});
