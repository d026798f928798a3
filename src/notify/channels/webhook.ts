/**
 * A generic webhook: the message as JSON, signed with HMAC-SHA256 of the exact body under the
 * endpoint's secret (`X-Betrace-Signature: sha256=HEX`, when a secret is set), and the
 * idempotency key in `Idempotency-Key` (the violation id of the message's first violation).
 */
import { createHmac } from 'node:crypto';
import { listedTraces, summary, type Notification } from '../message.ts';
import { postJson, type Channel, type SendResult } from './channel.ts';

export const SIGNATURE_HEADER = 'x-betrace-signature';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export function webhookBody(n: Notification): string {
  return JSON.stringify({
    type: n.test === true ? 'betrace.notification.test' : 'betrace.notification',
    key: n.key,
    summary: summary(n),
    rule: { id: n.ruleId, name: n.ruleName },
    severity: n.severity,
    count: n.violations.length,
    traces: listedTraces(n).map((t) => ({ trace_id: t.traceId, violation_id: t.violationId, evaluated_at: t.at, ...(t.link === undefined ? {} : { trace_url: t.link }) })),
    violations: n.violations,
  });
}

export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function webhookChannel(options: { name: string; url: string; secret: string }): Channel {
  return {
    kind: 'webhook',
    send: (n: Notification): Promise<SendResult> => {
      const body = webhookBody(n);
      const headers: Record<string, string> = { [IDEMPOTENCY_HEADER]: n.key };
      if (options.secret !== '') headers[SIGNATURE_HEADER] = webhookSignature(options.secret, body);
      return postJson(options.url, body, headers, `webhook ${options.name}`);
    },
  };
}
