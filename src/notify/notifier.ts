/**
 * The notifier: a violation sink of the worker (embedded transport) that routes each violation
 * to its rule's destinations (the rule's alert route, else notifications.defaults by severity),
 * writes them to the outbox, and sends them.
 *
 * Per rule and destination (a lane), violations are grouped: the first opens a group, which is
 * sent group_window later with every violation of the rule that joined it, as one message
 * (one violation: its own message). At most max_messages are sent per lane within
 * rate_window; past it the group stays open and grows until a slot frees. A message that fails
 * retryably is retried with exponential backoff (honouring Retry-After) for max_retry_time,
 * then dead-lettered; a permanent failure is dead-lettered at once. A rule that is disabled,
 * quarantined or removed stops notifying at once: what waits for it is dropped and counted as
 * suppressed. What waits at shutdown stays in the outbox and is sent after the next start.
 */
import type { Component } from '../component.ts';
import type { NotificationsConfig } from '../config/index.ts';
import { CHANNEL_KINDS, destinationName, type ChannelKind, type Destination, type RuleDefinition } from '../rules/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ViolationRecord, ViolationSink } from '../violations/index.ts';
import { Channels, type Channel, type SendResult } from './channels/index.ts';
import { traceLink, type Notification } from './message.ts';
import { Outbox, type OutboxEntry } from './outbox.ts';

/** The rules in force, as the notifier asks about them (the rule registry). */
export interface RuleLookup {
  get(id: string): { readonly state: 'enabled' | 'disabled' | 'quarantined'; readonly definition: Readonly<RuleDefinition> } | undefined;
  /** Called whenever a rule changes state (disabled, quarantined, removed): what waits for it is dropped then. */
  onChange(listener: () => void): () => void;
}

/** Violations in one message at most; more wait for the next. */
export const MAX_MESSAGE_VIOLATIONS = 1000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** How long shutdown waits for sends in flight. */
const SHUTDOWN_GRACE_MS = 2_000;

interface Lane {
  readonly key: string;
  readonly ruleId: string;
  readonly destination: Destination;
  waiting: OutboxEntry[];
  /** The message being sent or waiting for its retry. */
  inFlight: OutboxEntry[] | undefined;
  sending: boolean;
  attempt: number;
  firstTryAt: number;
  nextTryAt: number;
  /** When the last messages went, within rate_window. */
  sent: number[];
}

export interface NotifierOptions {
  readonly config: NotificationsConfig;
  readonly dataDir: string;
  readonly rules: RuleLookup;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Tests: channels other than the configuration's. */
  readonly channels?: { get(d: Destination): Channel | string };
}

/** A rule's destinations and the severity they are told: its alert route, else the defaults for its severity. */
export function routeOf(config: NotificationsConfig, definition: Readonly<RuleDefinition>): { severity: RuleDefinition['severity']; destinations: readonly Destination[] } {
  const route = definition.alerts;
  if (route !== undefined) return { severity: route.severity ?? definition.severity, destinations: route.destinations };
  return { severity: definition.severity, destinations: config.defaults[definition.severity] };
}

export class Notifier implements Component, ViolationSink {
  readonly #o: NotifierOptions;
  readonly #outbox: Outbox;
  readonly #channels: { get(d: Destination): Channel | string };
  readonly #lanes = new Map<string, Lane>();
  readonly #rateLimited: RateLimitedLog;
  readonly #traceUrl: (traceId: string) => string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;
  #running = false;
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  readonly #sends = new Set<Promise<void>>();
  readonly #writes = new Set<Promise<void>>();

  constructor(options: NotifierOptions) {
    this.#o = options;
    this.#outbox = new Outbox({ dir: `${options.dataDir}/notifications`, logger: options.logger, metrics: options.metrics });
    this.#channels = options.channels ?? new Channels(options.config);
    this.#rateLimited = new RateLimitedLog(options.logger);
    this.#traceUrl = traceLink(options.config.traceUrl);
  }

  async start(): Promise<void> {
    const pending = await this.#outbox.open();
    this.#running = true;
    this.#unsubscribe = this.#o.rules.onChange(() => this.#schedule(0));
    for (const e of pending) this.#lane(e).waiting.push(e);
    if (pending.length > 0) this.#o.logger.info({ pending: pending.length }, 'notifications: sending what the outbox held at start');
    this.#schedule(0);
  }

  /** The worker's sink: the violation's entries go to the outbox, and are sent once written. */
  append(record: ViolationRecord): void {
    if (!this.#running) return;
    const rule = this.#o.rules.get(record.rule_id);
    if (rule === undefined) return;
    const { severity, destinations } = routeOf(this.#o.config, rule.definition);
    if (destinations.length === 0) return;
    const at = Date.now();
    const entries: OutboxEntry[] = destinations.map((destination) => ({ id: `${record.violation_id} ${destinationName(destination)}`, destination, severity, at, record }));
    const write = this.#outbox.add(entries).then(
      () => this.#enqueue(entries),
      (err: unknown) => {
        // Not durable, still sent: a restart before the send loses these.
        this.#rateLimited.warn('outbox', { err: String(err) }, 'notifications: the outbox cannot be written; notifications are sent from memory only');
        this.#enqueue(entries);
      },
    );
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  #enqueue(entries: readonly OutboxEntry[]): void {
    if (!this.#running) return;
    for (const e of entries) this.#lane(e).waiting.push(e);
    this.#schedule(0);
  }

  #lane(e: OutboxEntry): Lane {
    const key = `${e.record.rule_id} ${destinationName(e.destination)}`;
    let lane = this.#lanes.get(key);
    if (lane === undefined) {
      lane = { key, ruleId: e.record.rule_id, destination: e.destination, waiting: [], inFlight: undefined, sending: false, attempt: 0, firstTryAt: 0, nextTryAt: 0, sent: [] };
      this.#lanes.set(key, lane);
    }
    return lane;
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    const at = Date.now() + Math.max(0, delayMs);
    if (at >= this.#wakeAt) return;
    clearTimeout(this.#timer);
    this.#wakeAt = at;
    this.#timer = setTimeout(() => {
      this.#wakeAt = Infinity;
      this.#tick();
    }, Math.max(0, delayMs));
  }

  /** Sends what is due, and sets the timer for what is due next. */
  #tick(): void {
    const { groupWindowMs, maxMessages, rateWindowMs } = this.#o.config;
    const now = Date.now();
    let next = Infinity;
    for (const lane of this.#lanes.values()) {
      if (lane.sending) continue;
      if (this.#suppressed(lane)) continue;
      if (lane.inFlight !== undefined) {
        if (now >= lane.nextTryAt) this.#send(lane);
        else next = Math.min(next, lane.nextTryAt);
        continue;
      }
      if (lane.waiting.length === 0) {
        if (lane.sent.every((t) => t <= now - rateWindowMs)) this.#lanes.delete(lane.key);
        continue;
      }
      lane.sent = lane.sent.filter((t) => t > now - rateWindowMs);
      const due = Math.max(lane.waiting[0]!.at + groupWindowMs, lane.sent.length >= maxMessages ? lane.sent[0]! + rateWindowMs : 0);
      if (now < due) {
        next = Math.min(next, due);
        continue;
      }
      lane.inFlight = lane.waiting.splice(0, MAX_MESSAGE_VIOLATIONS);
      lane.attempt = 0;
      lane.firstTryAt = now;
      this.#send(lane);
    }
    this.#gauges(now);
    if (next < Infinity) this.#schedule(next - now);
  }

  /** A lane whose rule is no longer in force: what waits in it is dropped, counted and marked done. */
  #suppressed(lane: Lane): boolean {
    const rule = this.#o.rules.get(lane.ruleId);
    if (rule?.state === 'enabled') return false;
    const reason = rule === undefined ? 'rule_removed' : rule.state === 'disabled' ? 'rule_disabled' : 'rule_quarantined';
    const dropped = [...(lane.inFlight ?? []), ...lane.waiting];
    lane.inFlight = undefined;
    lane.waiting = [];
    if (dropped.length > 0) {
      this.#o.metrics.notificationsSuppressed.inc({ reason }, dropped.length);
      this.#o.logger.info({ ruleId: lane.ruleId, destination: destinationName(lane.destination), dropped: dropped.length, reason }, 'notifications: not sent, the rule is no longer in force');
      this.#markDone(dropped);
    }
    // Made again if the rule comes back into force (its rate window starts afresh).
    this.#lanes.delete(lane.key);
    return true;
  }

  #send(lane: Lane): void {
    const entries = lane.inFlight!;
    const first = entries[0]!;
    const channel = this.#channels.get(lane.destination);
    const kind = lane.destination.channel;
    if (typeof channel === 'string') {
      this.#deadLetter(lane, 'not_configured', channel);
      return;
    }
    const rule = this.#o.rules.get(lane.ruleId);
    const n: Notification = {
      key: first.record.violation_id,
      ruleId: lane.ruleId,
      ruleName: rule?.definition.name ?? first.record.rule_name,
      severity: first.severity,
      violations: entries.map((e) => e.record),
      maxTraces: this.#o.config.maxTracesPerMessage,
      traceUrl: this.#traceUrl,
    };
    lane.sending = true;
    const p = channel
      .send(n)
      .catch((err: unknown): SendResult => ({ ok: false, retryable: true, error: `${kind}: ${String(err)}` }))
      .then((result) => {
        lane.sending = false;
        this.#settle(lane, result);
      });
    this.#sends.add(p);
    void p.finally(() => this.#sends.delete(p));
  }

  #settle(lane: Lane, result: SendResult): void {
    const kind = lane.destination.channel;
    const now = Date.now();
    if (result.ok) {
      this.#o.metrics.notificationsSent.inc({ channel: kind });
      lane.sent.push(now);
      this.#markDone(lane.inFlight!);
      lane.inFlight = undefined;
    } else if (result.retryable && now - lane.firstTryAt < this.#o.config.maxRetryTimeMs) {
      this.#o.metrics.notificationsRetried.inc({ channel: kind });
      lane.attempt++;
      const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (lane.attempt - 1)) * (0.5 + Math.random() / 2);
      lane.nextTryAt = now + Math.max(backoff, Math.min(result.retryAfterMs ?? 0, BACKOFF_MAX_MS * 4));
      this.#rateLimited.warn(`retry ${lane.key}`, { ruleId: lane.ruleId, destination: destinationName(lane.destination), attempt: lane.attempt, err: result.error }, 'notifications: send failed, retrying');
    } else this.#deadLetter(lane, result.retryable ? 'retry_time' : 'permanent', result.error);
    if (this.#running) this.#schedule(0);
  }

  #deadLetter(lane: Lane, reason: 'permanent' | 'retry_time' | 'not_configured', error: string): void {
    const entries = lane.inFlight!;
    lane.inFlight = undefined;
    this.#o.metrics.notificationsFailed.inc({ channel: lane.destination.channel, reason });
    this.#o.logger.error(
      { ruleId: lane.ruleId, destination: destinationName(lane.destination), violations: entries.length, key: entries[0]!.record.violation_id, reason, err: error },
      'notifications: message given up on (dead-lettered)',
    );
    this.#markDone(entries);
  }

  #markDone(entries: readonly OutboxEntry[]): void {
    if (this.#closed) return;
    this.#outbox.done(entries.map((e) => e.id)).catch((err: unknown) => {
      this.#rateLimited.warn('outbox done', { err: String(err) }, 'notifications: a sent mark could not be written; those may be sent again after a restart (same key)');
    });
  }

  #gauges(now: number): void {
    const queued = new Map<ChannelKind, number>();
    const oldest = new Map<ChannelKind, number>();
    for (const lane of this.#lanes.values()) {
      const kind = lane.destination.channel;
      const n = lane.waiting.length + (lane.inFlight?.length ?? 0);
      queued.set(kind, (queued.get(kind) ?? 0) + n);
      const first = lane.inFlight?.[0] ?? lane.waiting[0];
      if (first !== undefined) oldest.set(kind, Math.min(oldest.get(kind) ?? Infinity, first.at));
    }
    for (const kind of CHANNEL_KINDS) {
      this.#o.metrics.notificationsQueued.set({ channel: kind }, queued.get(kind) ?? 0);
      const o = oldest.get(kind);
      this.#o.metrics.notificationsOldestPendingAge.set({ channel: kind }, o === undefined ? 0 : Math.max(0, (now - o) / 1000));
    }
  }

  /** Violations waiting in memory (written or being written to the outbox), for tests and logs. */
  get pending(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.waiting.length + (lane.inFlight?.length ?? 0);
    return n;
  }

  /** Stops sending; waits a little for the sends in flight (their outcome is recorded) and closes the outbox. */
  async shutdown(): Promise<void> {
    if (!this.#running) return;
    await Promise.allSettled([...this.#writes]);
    this.#running = false;
    this.#unsubscribe?.();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // A send still unanswered after the grace stays pending in the outbox: sent again after the next start, same key.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.#sends]), new Promise<void>((r) => (grace = setTimeout(r, SHUTDOWN_GRACE_MS)))]);
    clearTimeout(grace);
    this.#closed = true;
    await this.#outbox.close();
    if (this.pending > 0) this.#o.logger.info({ pending: this.pending }, 'notifications: left in the outbox for the next start');
  }
}
