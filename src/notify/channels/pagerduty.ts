/**
 * PagerDuty Events API v2: one `trigger` event per message, `dedup_key` the idempotency key
 * (PagerDuty folds a repeat into the same incident). Severities map critical → critical,
 * high → error, medium → warning, low and info → info; the summary is cut to the API's 1,024
 * characters; `source` is the first service of the violations (else `betrace`).
 */
import type { Severity } from '../../rules/index.ts';
import { cut, listedTraces, servicesOf, summary, witnessNamesOf, type Notification } from '../message.ts';
import { postJson, type Channel, type SendResult } from './channel.ts';

const SEVERITY: Record<Severity, 'critical' | 'error' | 'warning' | 'info'> = { critical: 'critical', high: 'error', medium: 'warning', low: 'info', info: 'info' };

export function pagerdutyEvent(n: Notification, routingKey: string): Record<string, unknown> {
  const first = n.violations[0]!;
  const traces = listedTraces(n);
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: n.key,
    payload: {
      summary: cut(summary(n), 1024),
      source: servicesOf(n)[0] ?? 'betrace',
      severity: SEVERITY[n.severity],
      timestamp: new Date(first.evaluated_at_ms).toISOString(),
      component: n.ruleId,
      group: n.ruleName,
      class: 'betrace.violation',
      custom_details: { rule_id: n.ruleId, message: first.message, services: servicesOf(n), witness_names: witnessNamesOf(n), violations: n.violations.length, traces: traces.map((t) => t.traceId), test: n.test === true },
    },
    links: traces.flatMap((t) => (t.link === undefined ? [] : [{ href: t.link, text: `trace ${t.traceId}` }])),
  };
}

export function pagerdutyChannel(options: { url: string; name: string; routingKey: string }): Channel {
  return {
    kind: 'pagerduty',
    send: (n: Notification): Promise<SendResult> => postJson(options.url, JSON.stringify(pagerdutyEvent(n, options.routingKey)), {}, `pagerduty ${options.name}`),
  };
}
