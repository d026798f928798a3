/**
 * Acceptance: a real Prometheus Alertmanager (v0.35.0, built from the Go module proxy) takes
 * betrace's alerts and routes them to a webhook receiver, grouped by rule_id as configured:
 * each injected violation is one alert and reaches the receiver; a silence created through
 * Alertmanager's API stops a rule's alerts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAlertmanager, type Alertmanager } from '../helpers/alertmanager.ts';
import { startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { injectFailingTraces, ruleFile, startReceiver, type Receiver } from '../helpers/notify.ts';

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  status?: { state: string; silencedBy: string[] };
}

describe('Alertmanager', () => {
  let hook: Receiver;
  let am: Alertmanager;
  let betrace: TestPipeline;

  before(async () => {
    hook = await startReceiver();
    am = await startAlertmanager({ webhookUrl: `${hook.url}/alertmanager`, groupBy: ['rule_id'] });
    const dir = mkdtempSync(join(tmpdir(), 'betrace-notify-am-'));
    writeFileSync(
      join(dir, 'rules.yaml'),
      ruleFile([
        { id: 'payment-idempotency', span: 'payment.retry', alert: ['notification: alertmanager'] },
        { id: 'admin-audit-log', span: 'admin.action', severity: 'high', alert: ['notification: alertmanager'] },
      ]),
    );
    betrace = await startTestPipeline({
      worker: { trace_idle_timeout: '200ms' },
      rules: { paths: [join(dir, 'rules.yaml')] },
      notifications: { trace_url: 'http://grafana.example/explore?trace={trace_id}', group_window: '1s', alertmanager: { url: am.url } },
    });
  });

  after(async () => {
    await betrace?.stop();
    await am?.close();
    await hook?.close();
  });

  /** The alerts of the receiver's notifications for one rule's group. */
  const notified = (ruleId: string): AmAlert[][] =>
    hook.received.filter((r) => r.body?.groupLabels?.rule_id === ruleId).map((r) => r.body.alerts as AmAlert[]);
  const amAlerts = async (ruleId: string): Promise<AmAlert[]> =>
    (await (await fetch(`${am.url}/api/v2/alerts?filter=${encodeURIComponent(`rule_id="${ruleId}"`)}`)).json()) as AmAlert[];
  const ids = (rule: string) => betrace.pipeline.violations!.query({ ruleId: rule, limit: 100 }).violations.map((v) => v.violation_id).sort();

  it('routes each violation, once, as one alert of its rule\'s group', async () => {
    await injectFailingTraces(betrace.grpcUrl, 5, 'payment.retry');
    await waitUntil(() => ids('payment-idempotency').length === 5, 30_000, '5 violations stored');
    const seen = () => new Set(notified('payment-idempotency').flat().map((a) => a.labels.violation_id));
    await waitUntil(() => seen().size === 5, 30_000, 'the receiver told of 5 alerts');
    assert.deepEqual([...seen()].sort(), ids('payment-idempotency'));
    for (const alerts of notified('payment-idempotency')) {
      const inOne = alerts.map((a) => a.labels.violation_id);
      assert.equal(new Set(inOne).size, inOne.length, 'no violation twice in one notification');
      for (const a of alerts) {
        assert.equal(a.labels.alertname, 'payment-idempotency');
        assert.equal(a.labels.severity, 'critical');
        assert.equal(a.labels.service, 'notify-test');
        assert.equal(a.annotations.witness_names, 'payment.retry');
        assert.match(a.annotations.trace_id!, /^[0-9a-f]{32}$/);
        assert.equal(a.annotations.trace_url, `http://grafana.example/explore?trace=${a.annotations.trace_id}`);
        assert.equal(a.annotations.message, 'payment.retry failed');
      }
    }
    assert.equal((await amAlerts('payment-idempotency')).length, 5, 'one alert per violation in Alertmanager');
  });

  it('stops a rule\'s alerts under a silence created through Alertmanager\'s API', async () => {
    const now = Date.now();
    const res = await fetch(`${am.url}/api/v2/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        matchers: [{ name: 'rule_id', value: 'admin-audit-log', isRegex: false, isEqual: true }],
        startsAt: new Date(now - 1000).toISOString(),
        endsAt: new Date(now + 3_600_000).toISOString(),
        createdBy: 'betrace test',
        comment: 'maintenance',
      }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const { silenceID } = (await res.json()) as { silenceID: string };

    await injectFailingTraces(betrace.grpcUrl, 1, 'admin.action');
    await waitUntil(async () => (await amAlerts('admin-audit-log')).length === 1, 30_000, 'the silenced rule\'s alert in Alertmanager');
    const [silenced] = await amAlerts('admin-audit-log');
    assert.equal(silenced!.status!.state, 'suppressed');
    assert.deepEqual(silenced!.status!.silencedBy, [silenceID]);
    assert.equal(silenced!.labels.violation_id, ids('admin-audit-log')[0]);

    // A 6th violation of the other rule, sent after the silenced alert was in: its notification comes
    // after the silenced group's would have.
    await injectFailingTraces(betrace.grpcUrl, 1, 'payment.retry');
    await waitUntil(() => ids('payment-idempotency').length === 6, 30_000, '6th violation stored');
    const sixth = ids('payment-idempotency').find((id) => !notified('payment-idempotency').flat().some((a) => a.labels.violation_id === id))!;
    await waitUntil(() => notified('payment-idempotency').some((alerts) => alerts.some((a) => a.labels.violation_id === sixth)), 30_000, 'the 6th violation notified');
    assert.deepEqual(notified('admin-audit-log'), [], 'the silenced rule reached no receiver');
  });
});
