/**
 * Acceptance: delivery under failure and load, through the real pipeline and a local webhook.
 * A channel that is down (connection refused) gets every notification once it is back; a burst
 * of 1,000 violations of one rule is at most max_messages messages per rate window; a rule
 * disabled while its violations wait is not notified.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { injectFailingTraces, ruleFile, startReceiver, type Receiver } from '../helpers/notify.ts';

async function withPipeline(notifications: Record<string, unknown>, run: (b: TestPipeline) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-notify-delivery-'));
  writeFileSync(join(dir, 'rules.yaml'), ruleFile([{ id: 'shipment-requires-payment', span: 'shipment.initiate', alert: ['notification: webhook'] }]));
  const b = await startTestPipeline({ worker: { trace_idle_timeout: '200ms' }, rules: { paths: [join(dir, 'rules.yaml')] }, notifications });
  try {
    await run(b);
  } finally {
    await b.stop();
  }
}

/** Violation ids across the webhook's messages. */
const delivered = (r: Receiver): string[] => r.received.flatMap((m) => (m.body.violations as Array<{ violation_id: string }>).map((v) => v.violation_id));
const storedIds = (b: TestPipeline): string[] => b.pipeline.violations!.query({ limit: 1000 }).violations.map((v) => v.violation_id).sort();

describe('notification delivery', () => {
  it('a channel that is down gets every notification, once, after it is back', async () => {
    // A port nothing listens on: connection refused until the receiver starts on it.
    const probe = await startReceiver();
    const port = probe.port;
    await probe.close();
    await withPipeline({ group_window: '0s', webhooks: { default: { url: `http://127.0.0.1:${port}/hook` } } }, async (b) => {
      await injectFailingTraces(b.grpcUrl, 5, 'shipment.initiate');
      await waitUntil(() => (b.pipeline.violations?.size ?? 0) === 5, 30_000, '5 violations stored');
      // Down long enough for several retries with backoff (the outage path: refused, retried, backed off).
      await waitUntil(async () => (await metricValue(b.apiUrl, 'betrace_notifications_retried_total', { channel: 'webhook' })) >= 4, 60_000, '4 retries');
      assert.equal(await metricValue(b.apiUrl, 'betrace_notifications_queued', { channel: 'webhook' }), 5, 'all 5 wait in the outbox');
      assert.ok((await metricValue(b.apiUrl, 'betrace_notifications_oldest_pending_seconds', { channel: 'webhook' })) > 0);
      const hook = await startReceiver(undefined, port);
      try {
        await waitUntil(() => delivered(hook).length >= 5, 60_000, 'every notification after the channel is back');
        await waitUntil(async () => (await metricValue(b.apiUrl, 'betrace_notifications_queued', { channel: 'webhook' })) === 0, 10_000, 'outbox drained');
        assert.deepEqual(delivered(hook).sort(), storedIds(b), 'each violation once');
        assert.equal(await metricValue(b.apiUrl, 'betrace_notifications_failed_total'), 0, 'nothing dead-lettered');
      } finally {
        await hook.close();
      }
    });
  });

  it('a burst of 1,000 violations of one rule is at most max_messages messages in the rate window', async () => {
    const hook = await startReceiver();
    try {
      await withPipeline({ group_window: '0s', max_messages: 3, rate_window: '1h', max_traces_per_message: 3, webhooks: { default: { url: `${hook.url}/hook` } } }, async (b) => {
        await injectFailingTraces(b.grpcUrl, 1000, 'shipment.initiate');
        await waitUntil(() => (b.pipeline.violations?.size ?? 0) === 1000, 120_000, '1,000 violations stored');
        // Every violation is either delivered or still waiting for a slot in the window.
        const accounted = async () => delivered(hook).length + (await metricValue(b.apiUrl, 'betrace_notifications_queued', { channel: 'webhook' }));
        await waitUntil(async () => hook.received.length > 0 && (await accounted()) === 1000, 60_000, 'all 1,000 delivered or queued');
        const ids = delivered(hook);
        assert.equal(new Set(ids).size, ids.length, 'no violation twice');
        assert.ok(hook.received.length <= 3, `${hook.received.length} messages for one rule in one window, at most 3`);
        for (const m of hook.received) {
          assert.equal(m.body.count, m.body.violations.length);
          assert.ok(m.body.traces.length <= 3, 'max_traces_per_message');
        }
        // A message of one violation has the rule's message; one of many, the count.
        const group = hook.received.find((m) => m.body.count > 1)!;
        assert.match(group.body.summary, new RegExp(`^\\[critical\\] ${group.body.count} violations of shipment-requires-payment in `));
      });
    } finally {
      await hook.close();
    }
  });

  it('a rule disabled while its violations wait for their group stops notifying', async () => {
    const hook = await startReceiver();
    try {
      await withPipeline({ group_window: '1h', webhooks: { default: { url: `${hook.url}/hook` } } }, async (b) => {
        await injectFailingTraces(b.grpcUrl, 4, 'shipment.initiate');
        await waitUntil(async () => (await metricValue(b.apiUrl, 'betrace_notifications_queued', { channel: 'webhook' })) === 4, 30_000, '4 queued');
        const res = await fetch(`${b.apiUrl}/v1/rules/shipment-requires-payment/disable`, { method: 'POST' });
        assert.equal(res.status, 200, await res.text());
        await waitUntil(async () => (await metricValue(b.apiUrl, 'betrace_notifications_suppressed_total', { reason: 'rule_disabled' })) === 4, 10_000, '4 suppressed');
        assert.equal(await metricValue(b.apiUrl, 'betrace_notifications_queued', { channel: 'webhook' }), 0);
        assert.equal(hook.received.length, 0, 'nothing sent for the disabled rule');
      });
    } finally {
      await hook.close();
    }
  });
});
