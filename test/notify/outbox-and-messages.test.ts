/**
 * Unit: the outbox file read back after a crash (done entries gone, a torn last line skipped
 * and counted, the file rewritten), and the channels' payloads within their documented limits
 * for a large group with long texts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Outbox, type OutboxEntry } from '../../src/notify/outbox.ts';
import { slackMessage } from '../../src/notify/channels/slack.ts';
import { pagerdutyEvent } from '../../src/notify/channels/pagerduty.ts';
import { alertmanagerAlerts } from '../../src/notify/channels/alertmanager.ts';
import { summary, traceLink, type Notification } from '../../src/notify/message.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import type { ViolationRecord } from '../../src/violations/index.ts';

const silent = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const hex = (n: number, len: number) => n.toString(16).padStart(len, '0');

function record(i: number, message = 'shipment without payment'): ViolationRecord {
  return {
    violation_id: hex(i, 32),
    rule_id: 'shipment-requires-payment',
    rule_name: 'Shipment requires payment',
    severity: 'critical',
    tags: [],
    message,
    trace_id: hex(i + 1_000_000, 32),
    root_span_id: hex(i, 16),
    span_ids: [hex(i, 16)],
    witness_count: 1,
    span_count: 3,
    partial: false,
    root_missing: false,
    start_time_unix_nano: '1',
    end_time_unix_nano: '2',
    evaluated_at_ms: 1_700_000_000_000 + i * 1000,
    services: ['shipping'],
    witness_names: ['shipment.initiate'],
  };
}

const entry = (i: number): OutboxEntry => ({ id: `${hex(i, 32)} webhook`, destination: { channel: 'webhook', to: '' }, severity: 'critical', at: i, record: record(i) });

describe('notification outbox file', () => {
  it('reads back what is not done, skips a torn line, and rewrites the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-outbox-'));
    const first = new Outbox({ dir, logger: silent });
    assert.deepEqual(await first.open(), []);
    await first.add([entry(1), entry(2), entry(3)]);
    await first.done([entry(2).id]);
    await first.close();
    // A crash in the middle of a write.
    appendFileSync(join(dir, 'outbox.jsonl'), '{"add":{"id":"torn');
    const metrics = createMetrics();
    const again = new Outbox({ dir, logger: silent, metrics });
    assert.deepEqual((await again.open()).map((e) => e.id), [entry(1).id, entry(3).id]);
    assert.equal((await metrics.notificationsDamagedLines.get()).values[0]!.value, 1);
    assert.equal(readFileSync(join(dir, 'outbox.jsonl'), 'utf8').trim().split('\n').length, 2, 'rewritten with the pending entries only');
    await again.close();
  });
});

describe('channel payloads', () => {
  const long = 'x'.repeat(5000);
  const n: Notification = {
    key: hex(0, 32),
    ruleId: 'shipment-requires-payment',
    ruleName: 'n'.repeat(400),
    severity: 'high',
    violations: Array.from({ length: 1000 }, (_, i) => record(i, long)),
    maxTraces: 50,
    traceUrl: traceLink(`http://jaeger:16686/trace/{trace_id}?${'q'.repeat(200)}`),
  };

  it('Slack: at most 50 blocks, every text within its limit', () => {
    const m = slackMessage(n);
    assert.ok(m.blocks.length <= 50);
    assert.ok(m.text.length <= 3000);
    const traces = (m.blocks as any[]).find((b) => b.text?.text.startsWith('*Traces*')).text.text as string;
    assert.match(traces, /\n• and \d+ more$/);
    assert.ok(traces.split('\n').slice(1, -1).every((l) => /^• <http:\/\/jaeger:16686\/trace\/[0-9a-f]{32}\?q+\|[0-9a-f]{32}> at /.test(l)), 'whole links only');
    for (const b of m.blocks as any[]) {
      if (b.type === 'header') assert.ok(b.text.text.length <= 150);
      for (const t of [b.text, ...(b.fields ?? []), ...(b.elements ?? [])].filter(Boolean)) assert.ok(t.text.length <= 3000 && t.text.length > 0, `${b.type}: ${t.text.length}`);
    }
  });

  it('PagerDuty: summary within 1,024 characters, severity mapped, dedup_key the first violation', () => {
    const one = pagerdutyEvent({ ...n, violations: [record(7, long)] }, 'key') as any;
    assert.ok(one.payload.summary.length <= 1024);
    assert.equal(one.payload.severity, 'error');
    assert.equal(one.dedup_key, n.key);
    assert.equal(one.payload.source, 'shipping');
    const group = pagerdutyEvent(n, 'key') as any;
    assert.equal(group.payload.summary, '[high] 1000 violations of shipment-requires-payment in 17 min');
    assert.equal(group.links.length, 50);
  });

  it('Alertmanager: one alert per violation, each with its own violation_id', () => {
    const alerts = alertmanagerAlerts(n, 300_000);
    assert.equal(new Set(alerts.map((a) => a.labels.violation_id)).size, 1000);
    assert.ok(alerts.every((a) => a.annotations.summary!.length <= 1024 && a.labels.service === 'shipping'));
  });

  it('one violation: the rule\'s message; a group: the count and how long it spans', () => {
    assert.equal(summary({ ...n, violations: [record(1)] }), `[high] shipment-requires-payment: shipment without payment (trace ${hex(1_000_001, 32)})`);
    assert.equal(summary({ ...n, violations: [record(0), record(23)] }), '[high] 2 violations of shipment-requires-payment in 23s');
  });
});
