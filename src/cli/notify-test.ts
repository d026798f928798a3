/**
 * `betrace notify test --rule ID [--config FILE] [--rules FILE]`: sends one sample
 * notification (marked as a test) through each destination of the rule's route (its alert
 * entry, else notifications.defaults for its severity), straight to the channels, and prints
 * one line per destination. Exit 0 when every destination took it, 1 otherwise (a route
 * without destinations, an unknown rule, a configuration or rule file error included).
 */
import { randomBytes } from 'node:crypto';
import { loadConfig, ConfigError } from '../config/index.ts';
import { Channels, routeOf, traceLink, type Notification } from '../notify/index.ts';
import { resolveRules } from '../replay/rules.ts';
import { destinationName } from '../rules/index.ts';
import type { ViolationRecord } from '../violations/index.ts';
import { ExitCode, type Output } from './output.ts';

export async function notifyTest(opts: { rule: string; config?: string; rules?: string }, out: Output): Promise<number> {
  let config;
  try {
    config = loadConfig(opts.config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    out.stderr(`betrace: ${err.message}`);
    return ExitCode.inputError;
  }
  const found = await resolveRules(opts.rules === undefined ? { kind: 'ids', ids: [opts.rule] } : { kind: 'file', path: opts.rules }, config);
  if (!found.ok) {
    out.stderr(`betrace notify test: ${found.error}`);
    return ExitCode.inputError;
  }
  const rule = found.rules.find((r) => r.definition.id === opts.rule);
  if (rule === undefined) {
    out.stderr(`betrace notify test: no rule ${JSON.stringify(opts.rule)} in ${opts.rules}`);
    return ExitCode.inputError;
  }
  const { severity, destinations } = routeOf(config.notifications, rule.definition);
  if (destinations.length === 0) {
    out.stderr(`betrace notify test: rule ${opts.rule} has no destination (no alerts: entry, and notifications.defaults.${rule.definition.severity} is empty)`);
    return ExitCode.inputError;
  }
  const now = Date.now();
  const d = rule.definition;
  const record: ViolationRecord = {
    violation_id: randomBytes(16).toString('hex'),
    rule_id: d.id,
    rule_name: d.name,
    severity: d.severity,
    tags: d.tags,
    message: d.message ?? (d.description !== '' ? d.description : d.name),
    trace_id: randomBytes(16).toString('hex'),
    root_span_id: randomBytes(8).toString('hex'),
    span_ids: [],
    witness_count: 0,
    span_count: 1,
    partial: false,
    root_missing: false,
    start_time_unix_nano: `${BigInt(now) * 1_000_000n}`,
    end_time_unix_nano: `${BigInt(now) * 1_000_000n}`,
    evaluated_at_ms: now,
  };
  const n: Notification = { key: record.violation_id, ruleId: d.id, ruleName: d.name, severity, violations: [record], maxTraces: config.notifications.maxTracesPerMessage, traceUrl: traceLink(config.notifications.traceUrl), test: true };
  const channels = new Channels(config.notifications);
  let failed = 0;
  for (const dest of destinations) {
    const channel = channels.get(dest);
    const result = typeof channel === 'string' ? { ok: false as const, error: channel } : await channel.send(n);
    if (result.ok) out.stdout(`${destinationName(dest)}: sent (key ${n.key})`);
    else {
      failed++;
      out.stdout(`${destinationName(dest)}: failed: ${result.error}`);
    }
  }
  return failed === 0 ? ExitCode.ok : ExitCode.inputError;
}
