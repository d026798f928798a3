/**
 * What a channel is given to send: one message about one rule, carrying one violation or a
 * group of them (violations of the rule to one destination within notifications.group_window),
 * and the texts every channel shares.
 */
import type { Severity } from '../rules/index.ts';
import type { ViolationRecord } from '../violations/index.ts';

export interface Notification {
  /**
   * The idempotency key: the violation id of the message's first violation (a grouped
   * message is keyed by its first). A message sent again after a crash carries the same key.
   */
  readonly key: string;
  readonly ruleId: string;
  readonly ruleName: string;
  /** The route's severity (the alert entry's, else the rule's). */
  readonly severity: Severity;
  /** The violations of the message, oldest first (at least one). */
  readonly violations: readonly ViolationRecord[];
  /** How many of them a grouped message lists by trace (notifications.max_traces_per_message). */
  readonly maxTraces: number;
  /** The trace link (notifications.trace_url), or undefined without one. */
  readonly traceUrl: (traceId: string) => string | undefined;
  /** A sample sent by `betrace notify test`. */
  readonly test?: boolean;
}

/** `{trace_id}` replaced in notifications.trace_url; undefined when no template is set. */
export function traceLink(template: string): (traceId: string) => string | undefined {
  return template === '' ? () => undefined : (traceId) => template.replaceAll('{trace_id}', traceId);
}

function span(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.ceil(s / 60);
  return m < 120 ? `${m} min` : `${Math.ceil(m / 60)} h`;
}

/** One line: the rule's message for one violation; "23 violations of X in 5 min" for a group. */
export function summary(n: Notification): string {
  const first = n.violations[0]!;
  const prefix = n.test === true ? '[test] ' : '';
  if (n.violations.length === 1) return `${prefix}[${n.severity}] ${n.ruleId}: ${first.message} (trace ${first.trace_id})`;
  const last = n.violations[n.violations.length - 1]!;
  return `${prefix}[${n.severity}] ${n.violations.length} violations of ${n.ruleId} in ${span(last.evaluated_at_ms - first.evaluated_at_ms)}`;
}

/** The traces a message lists: the first maxTraces violations, with their links. */
export function listedTraces(n: Notification): Array<{ traceId: string; violationId: string; link: string | undefined; at: string }> {
  return n.violations.slice(0, n.maxTraces).map((v) => ({
    traceId: v.trace_id,
    violationId: v.violation_id,
    link: n.traceUrl(v.trace_id),
    at: new Date(v.evaluated_at_ms).toISOString(),
  }));
}

function distinct(lists: ReadonlyArray<readonly string[] | undefined>, max = 8): string[] {
  const out: string[] = [];
  for (const l of lists) for (const x of l ?? []) if (out.length < max && !out.includes(x)) out.push(x);
  return out;
}

/** The services of the message's violations (their witnesses', else their roots'), at most 8. */
export function servicesOf(n: Notification): string[] {
  return distinct(n.violations.map((v) => v.services));
}

/** The witness span names of the message's violations, at most 8. */
export function witnessNamesOf(n: Notification): string[] {
  return distinct(n.violations.map((v) => v.witness_names));
}

/** Plain text of the whole message (email body, fallbacks). */
export function plainText(n: Notification): string {
  const first = n.violations[0]!;
  const lines = [summary(n), '', `Rule: ${n.ruleName} (${n.ruleId})`, `Severity: ${n.severity}`, `Message: ${first.message}`, `Violations: ${n.violations.length}`];
  const services = servicesOf(n);
  const names = witnessNamesOf(n);
  if (services.length > 0) lines.push(`Services: ${services.join(', ')}`);
  if (names.length > 0) lines.push(`Witness spans: ${names.join(', ')}`);
  lines.push('');
  for (const t of listedTraces(n)) lines.push(`- trace ${t.traceId} at ${t.at}${t.link === undefined ? '' : `: ${t.link}`}`);
  if (n.violations.length > n.maxTraces) lines.push(`- and ${n.violations.length - n.maxTraces} more`);
  lines.push('', `Idempotency key: ${n.key}`);
  return lines.join('\n');
}

/** Text cut to `max` characters, with an ellipsis when cut. */
export function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
