/**
 * Acceptance: `kill -9` between the violation and its notification, then a restart: the
 * notification arrives, once more at most, with the same idempotency key. The webhook holds
 * betrace's first request open (never answers), so the process dies with the notification
 * sent but not acknowledged; after the restart the outbox sends it again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Outbox } from '../../src/notify/outbox.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { spawnBetrace } from '../helpers/process.ts';
import { injectFailingTraces, ruleFile, startReceiver } from '../helpers/notify.ts';
import { waitUntil } from '../helpers/pipeline.ts';

describe('notification outbox', () => {
  it('sends after kill -9 and restart what was not acknowledged, with the same key', async () => {
    let answer = false;
    const hook = await startReceiver((_r, res) => {
      if (!answer) return 'hang';
      res.writeHead(200).end();
    });
    const dir = mkdtempSync(join(tmpdir(), 'betrace-notify-restart-'));
    writeFileSync(join(dir, 'rules.yaml'), ruleFile([{ id: 'payment-idempotency', span: 'payment.retry', alert: ['notification: webhook'] }]));
    const config = join(dir, 'betrace.yaml');
    writeFileSync(
      config,
      [
        'receiver: { grpc: { endpoint: "127.0.0.1:0" }, http: { endpoint: "127.0.0.1:0" } }',
        'api: { endpoint: "127.0.0.1:0" }',
        'worker: { trace_idle_timeout: 200ms }',
        'rules: { paths: [rules.yaml] }',
        `notifications: { group_window: 0s, webhooks: { default: { url: "${hook.url}/hook", secret: s } } }`,
        'data_dir: data',
      ].join('\n'),
    );
    const start = async () => {
      const b = spawnBetrace('betrace', ['run', '--config', config]);
      const grpc = await b.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/);
      await b.waitFor(/betrace started/);
      return { b, grpc: `http://${grpc}` };
    };
    try {
      const first = await start();
      await injectFailingTraces(first.grpc, 1, 'payment.retry');
      await waitUntil(() => hook.received.length === 1, 30_000, 'the first send');
      const key = hook.received[0]!.headers['idempotency-key'];
      assert.match(String(key), /^[0-9a-f]{32}$/);
      await first.b.kill();

      answer = true;
      const second = await start();
      await waitUntil(() => hook.received.length === 2, 30_000, 'the send after the restart');
      assert.equal(hook.received[1]!.headers['idempotency-key'], key, 'the same idempotency key');
      assert.equal(hook.received[1]!.raw, hook.received[0]!.raw, 'the same message');
      const stored = readFileSync(join(dir, 'data', 'violations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { violation_id: string });
      assert.deepEqual(stored.map((v) => v.violation_id), [key], 'the key is the violation id');
      assert.equal(await second.b.stop(), 0);
      assert.equal(hook.received.length, 2, 'sent once more, not again');

      // Acknowledged: nothing left for a third start.
      const outbox = new Outbox({ dir: join(dir, 'data', 'notifications'), logger: createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })) });
      assert.deepEqual(await outbox.open(), []);
      await outbox.close();
    } finally {
      await hook.close();
    }
  });
});
