/**
 * A rule's notification route (src/notify/README.md): who is told when the rule fires. In a
 * rule file it is an `alerts:` entry beside `rules:`, keyed by `rule_id`; on an API rule the
 * `alerts` field. Both are read into the same AlertRoute. Part of the rule language so rule
 * files are checked as a whole (`rules check`, reload) with every problem at FILE:LINE:COL.
 */
import { isMap, isScalar, isSeq } from 'yaml';
import type { Node as YamlNode, Pair, Scalar } from 'yaml';
import { didYouMean } from '../expected.ts';
import { SEVERITIES, type Severity } from './rule.ts';

export const CHANNEL_KINDS = ['alertmanager', 'pagerduty', 'slack', 'email', 'webhook'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

/** One place a notification goes: a channel kind and its target ('' = the kind's default target). */
export interface Destination {
  readonly channel: ChannelKind;
  /** slack: the channel name (a webhook configured for it); email: an address; pagerduty: a routing key name; webhook: an endpoint name. */
  readonly to: string;
}

export interface AlertRoute {
  /** The severity notifications carry; default: the rule's. */
  readonly severity?: Severity;
  readonly destinations: readonly Destination[];
}

/** `kind` or `kind:target`: how a destination is named in logs, metrics-free places and the outbox. */
export function destinationName(d: Destination): string {
  return d.to === '' ? d.channel : `${d.channel}:${d.to}`;
}

const ALERT_KEYS = ['rule_id', 'severity', 'notification', 'channels'] as const;
const EMAIL = /^[^\s@]+@[^\s@]+$/;

export interface AlertProblem {
  /** Offset in the YAML source (rule files) or a JSON pointer (API rules). */
  readonly offset: number | undefined;
  readonly path: string;
  readonly message: string;
}

function targetProblem(channel: ChannelKind, to: string): string | undefined {
  if (channel === 'email' && !EMAIL.test(to)) return `email target must be an address like oncall@example.com, got ${JSON.stringify(to)}`;
  if (to.length > 256) return `${channel} target is longer than 256 characters`;
  return undefined;
}

function channelKind(name: string): ChannelKind | undefined {
  return (CHANNEL_KINDS as readonly string[]).includes(name) ? (name as ChannelKind) : undefined;
}

/**
 * A null value written as `slack: #incidents`: YAML reads `#incidents` as a comment. The
 * text after the `#` on the key's line, to suggest the quoted form.
 */
function commentAfter(source: string, keyEnd: number): { offset: number; text: string } | undefined {
  const eol = source.indexOf('\n', keyEnd);
  const line = source.slice(keyEnd, eol < 0 ? source.length : eol);
  const hash = line.indexOf('#');
  if (hash < 0) return undefined;
  return { offset: keyEnd + hash, text: line.slice(hash).trimEnd() };
}

/** One `channels:` item of a rule file: `- slack: "#incidents"`, or a bare kind (`- alertmanager`). */
function readDestinationNode(item: YamlNode | null, source: string, problems: AlertProblem[], path: string): Destination | undefined {
  const bad = (offset: number | undefined, message: string): undefined => {
    problems.push({ offset, path, message });
    return undefined;
  };
  if (isScalar(item) && typeof item.value === 'string') {
    const kind = channelKind(item.value);
    if (kind === undefined) return bad(item.range?.[0], `unknown channel ${JSON.stringify(item.value)}: one of ${CHANNEL_KINDS.join(', ')}${didYouMean(item.value, CHANNEL_KINDS)}`);
    return { channel: kind, to: '' };
  }
  if (!isMap(item) || item.items.length !== 1) return bad(item?.range?.[0], `each channel is one \`kind: target\` pair, like \`slack: "#incidents"\` or \`email: oncall@example.com\``);
  const pair = item.items[0] as Pair<YamlNode, YamlNode | null>;
  const key = pair.key;
  const name = isScalar(key) ? String(key.value) : '';
  const kind = channelKind(name);
  if (kind === undefined) return bad(key.range?.[0], `unknown channel ${JSON.stringify(name)}: one of ${CHANNEL_KINDS.join(', ')}${didYouMean(name, CHANNEL_KINDS)}`);
  const value = pair.value;
  if (value === null || (isScalar(value) && value.value === null)) {
    const comment = commentAfter(source, key.range?.[1] ?? 0);
    if (comment !== undefined) {
      return bad(comment.offset, `\`${name}: ${comment.text}\` is a YAML comment, so the ${name} target is empty: quote it, \`${name}: "${comment.text}"\``);
    }
    return bad(key.range?.[0], `the ${name} target is empty`);
  }
  if (!isScalar(value) || typeof value.value !== 'string' || value.value === '') return bad(value.range?.[0], `the ${name} target must be a non-empty string`);
  const problem = targetProblem(kind, value.value);
  if (problem !== undefined) return bad(value.range?.[0], problem);
  return { channel: kind, to: value.value };
}

/** A rule file's `alerts:` entry; problems carry source offsets. */
export function readAlertEntryNode(item: YamlNode | null, source: string, problems: AlertProblem[]): { ruleId: string; ruleIdOffset: number | undefined; route: AlertRoute } | undefined {
  const before = problems.length;
  const bad = (offset: number | undefined, message: string): void => void problems.push({ offset, path: 'alerts', message });
  if (!isMap(item)) {
    bad(item?.range?.[0], 'each alert is a mapping (rule_id, severity, notification, channels)');
    return undefined;
  }
  let ruleId: Scalar | undefined;
  let severity: Severity | undefined;
  const destinations: Destination[] = [];
  for (const pair of item.items as Pair<YamlNode, YamlNode | null>[]) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const value = pair.value;
    const at = value?.range?.[0] ?? pair.key.range?.[0];
    switch (name) {
      case 'rule_id':
        if (isScalar(value) && typeof value.value === 'string' && value.value !== '') ruleId = value;
        else bad(at, '`rule_id` must be the id of a rule of this file');
        break;
      case 'severity':
        if (isScalar(value) && typeof value.value === 'string' && (SEVERITIES as readonly string[]).includes(value.value)) severity = value.value as Severity;
        else {
          const given = isScalar(value) ? String(value.value) : '';
          bad(at, `severity ${JSON.stringify(given)} must be one of ${SEVERITIES.join(', ')}${didYouMean(given, SEVERITIES)}`);
        }
        break;
      case 'notification': {
        const d = readDestinationNode(value, source, problems, 'notification');
        if (d !== undefined) destinations.unshift(d);
        break;
      }
      case 'channels':
        if (!isSeq(value)) bad(at, '`channels` must be a list, like `- slack: "#incidents"`');
        else for (const c of value.items as (YamlNode | null)[]) {
          const d = readDestinationNode(c, source, problems, 'channels');
          if (d !== undefined) destinations.push(d);
        }
        break;
      default:
        bad(pair.key.range?.[0], `unknown alert key ${JSON.stringify(name)}${didYouMean(name, ALERT_KEYS) || ` (allowed: ${ALERT_KEYS.join(', ')})`}`);
    }
  }
  if (ruleId === undefined && problems.length === before) bad(item.range?.[0], 'alert is missing `rule_id`');
  if (destinations.length === 0 && problems.length === before) bad(item.range?.[0], 'alert has no destination: give `notification:` or `channels:`');
  if (problems.length > before || ruleId === undefined) return undefined;
  return { ruleId: String(ruleId.value), ruleIdOffset: ruleId.range?.[0], route: { ...(severity === undefined ? {} : { severity }), destinations: dedupe(destinations) } };
}

function dedupe(destinations: readonly Destination[]): Destination[] {
  const seen = new Set<string>();
  return destinations.filter((d) => {
    const name = destinationName(d);
    if (seen.has(name)) return false;
    seen.add(name);
    return true;
  });
}

/** One destination given as JSON (API rules, the config's defaults): `"alertmanager"` or `{ "slack": "#incidents" }`. */
export function readDestinationValue(value: unknown, path: string, problems: AlertProblem[]): Destination | undefined {
  const bad = (message: string): undefined => {
    problems.push({ offset: undefined, path, message });
    return undefined;
  };
  if (typeof value === 'string') {
    const kind = channelKind(value);
    return kind === undefined ? bad(`unknown channel ${JSON.stringify(value)}: one of ${CHANNEL_KINDS.join(', ')}${didYouMean(value, CHANNEL_KINDS)}`) : { channel: kind, to: '' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Object.keys(value).length !== 1) {
    return bad('each channel is a kind ("alertmanager") or one {kind: target} pair, like {"slack": "#incidents"}');
  }
  const [name, to] = Object.entries(value as Record<string, unknown>)[0]!;
  const kind = channelKind(name);
  if (kind === undefined) return bad(`unknown channel ${JSON.stringify(name)}: one of ${CHANNEL_KINDS.join(', ')}${didYouMean(name, CHANNEL_KINDS)}`);
  if (typeof to !== 'string' || to === '') return bad(`the ${name} target must be a non-empty string${to === null ? ` (in YAML, quote a target starting with #: ${name}: "#incidents")` : ''}`);
  const problem = targetProblem(kind, to);
  return problem === undefined ? { channel: kind, to } : bad(problem);
}

/** An API rule's `alerts` field: `{ severity?, notification?, channels? }`; problems carry JSON pointers. */
export function readAlertRouteValue(value: unknown, problems: AlertProblem[]): AlertRoute | undefined {
  const before = problems.length;
  const bad = (path: string, message: string): void => void problems.push({ offset: undefined, path, message });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    bad('/alerts', 'alerts must be an object: { "notification": "pagerduty", "channels": [{ "slack": "#incidents" }] }');
    return undefined;
  }
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!['severity', 'notification', 'channels'].includes(k)) bad(`/alerts/${k}`, `unknown alerts key ${JSON.stringify(k)} (allowed: severity, notification, channels)`);
  if (v.severity !== undefined && !(SEVERITIES as readonly unknown[]).includes(v.severity)) bad('/alerts/severity', `severity must be one of ${SEVERITIES.join(', ')}`);
  const destinations: Destination[] = [];
  if (v.notification !== undefined) {
    const d = readDestinationValue(v.notification, '/alerts/notification', problems);
    if (d !== undefined) destinations.push(d);
  }
  if (v.channels !== undefined) {
    if (!Array.isArray(v.channels)) bad('/alerts/channels', 'channels must be a list');
    else v.channels.forEach((c: unknown, i) => {
      const d = readDestinationValue(c, `/alerts/channels/${i}`, problems);
      if (d !== undefined) destinations.push(d);
    });
  }
  if (problems.length === before && destinations.length === 0) bad('/alerts', 'alerts has no destination: give notification or channels');
  if (problems.length > before) return undefined;
  return { ...(v.severity === undefined ? {} : { severity: v.severity as Severity }), destinations: dedupe(destinations) };
}

/** The API's and the rule store's JSON form of a route (what readAlertRouteValue reads). */
export function alertRouteJson(route: AlertRoute): { severity?: Severity; channels: Array<string | Record<string, string>> } {
  return {
    ...(route.severity === undefined ? {} : { severity: route.severity }),
    channels: route.destinations.map((d) => (d.to === '' ? d.channel : { [d.channel]: d.to })),
  };
}
