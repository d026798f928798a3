/**
 * Prometheus Alertmanager, API v2 (`POST /api/v2/alerts`): every violation of a message is
 * one alert, so Alertmanager's routing, grouping, silences and inhibition apply to them as to
 * any alert. Labels: alertname (the rule id), rule_id, severity, violation_id (the idempotency
 * key: an alert posted again with the same labels is the same alert to Alertmanager, not a new
 * one), service (the first of the violation's services); annotations: summary, message,
 * rule_name, trace_id, trace_url, services, witness_names; generatorURL the trace link.
 */
import type { Notification } from '../message.ts';
import { cut } from '../message.ts';
import { postJson, type Channel, type SendResult } from './channel.ts';

export interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

export function alertmanagerAlerts(n: Notification, resolveTimeoutMs: number, now = Date.now()): AlertmanagerAlert[] {
  return n.violations.map((v) => {
    const link = n.traceUrl(v.trace_id);
    return {
      labels: {
        alertname: n.ruleId,
        rule_id: n.ruleId,
        severity: n.severity,
        violation_id: v.violation_id,
        ...(v.services?.[0] === undefined ? {} : { service: v.services[0] }),
        ...(n.test === true ? { test: 'true' } : {}),
      },
      annotations: {
        summary: cut(`${n.ruleId}: ${v.message}`, 1024),
        message: v.message,
        rule_name: n.ruleName,
        trace_id: v.trace_id,
        ...(link === undefined ? {} : { trace_url: link }),
        ...((v.services ?? []).length === 0 ? {} : { services: v.services!.join(', ') }),
        ...((v.witness_names ?? []).length === 0 ? {} : { witness_names: v.witness_names!.join(', ') }),
      },
      startsAt: new Date(v.evaluated_at_ms).toISOString(),
      endsAt: new Date(Math.max(now, v.evaluated_at_ms) + resolveTimeoutMs).toISOString(),
      ...(link === undefined ? {} : { generatorURL: link }),
    };
  });
}

export function alertmanagerChannel(options: { url: string; resolveTimeoutMs: number }): Channel {
  return {
    kind: 'alertmanager',
    send: (n: Notification): Promise<SendResult> =>
      postJson(`${options.url}/api/v2/alerts`, JSON.stringify(alertmanagerAlerts(n, options.resolveTimeoutMs)), {}, `alertmanager ${options.url}`),
  };
}
