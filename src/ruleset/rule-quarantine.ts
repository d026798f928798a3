/**
 * Quarantine of rules that go over the evaluation budget repeatedly: a rule over
 * budget `after` times within `windowMs` (worker.quarantine_after,
 * worker.quarantine_window) is quarantined: kept and listed, not evaluated, until
 * it is changed or re-enabled (the enable call lifts it). Only a rule responsible for
 * an overrun counts it: the watchdog stopped a thread while in the rule, or the budget
 * (one deadline for all of a trace's rules) ran out while the rule was running and it had
 * itself spent at least half of it (evaluator-thread.ts). A trace over budget through no
 * single rule's fault is counted over budget (betrace_rule_evaluation_budget_exceeded_total)
 * and blames no rule.
 *
 * The quarantine is stored with the rules (rule-store.ts): in Kafka mode it goes
 * through the rules topic, so every worker stops evaluating the rule and the API
 * shows it; in embedded mode it is kept across restarts with the API rules.
 */
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { ruleFingerprint, type RuleRegistry } from './rule-registry.ts';
import { quarantineKey, type RuleStore } from './rule-store.ts';

export interface RuleQuarantineOptions {
  readonly registry: RuleRegistry;
  readonly store: RuleStore;
  /** Overruns within the window that quarantine a rule; 0: never. */
  readonly after: number;
  readonly windowMs: number;
  readonly budgetMs: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

interface Overruns {
  readonly fingerprint: string;
  /** Times (ms) of the overruns within the window, oldest first. */
  readonly times: number[];
  stalls: number;
}

export class RuleQuarantine {
  readonly #o: RuleQuarantineOptions;
  readonly #overruns = new Map<string, Overruns>();
  /** Rules whose quarantine is being stored. */
  readonly #storing = new Set<string>();

  constructor(options: RuleQuarantineOptions) {
    this.#o = options;
  }

  /** Counts an overrun of rule `ruleId` (`stalled`: the watchdog stopped its thread); quarantines it at the threshold. */
  overrun(ruleId: string, stalled: boolean, now = Date.now()): void {
    const { registry, after, windowMs } = this.#o;
    if (after === 0 || this.#storing.has(ruleId)) return;
    const rule = registry.get(ruleId);
    if (rule === undefined || rule.state !== 'enabled') return;
    const fingerprint = ruleFingerprint(rule.definition);
    let o = this.#overruns.get(ruleId);
    if (o === undefined || o.fingerprint !== fingerprint) {
      o = { fingerprint, times: [], stalls: 0 };
      this.#overruns.set(ruleId, o);
    }
    o.times.push(now);
    if (stalled) o.stalls++;
    while (o.times.length > 0 && o.times[0]! <= now - windowMs) o.times.shift();
    if (o.times.length < after) return;
    this.#overruns.delete(ruleId);
    const reason =
      `over the ${this.#o.budgetMs} ms evaluation budget ${o.times.length} times within ${formatWindow(windowMs)}` +
      (o.stalls > 0 ? ` (${o.stalls} of them stuck: the evaluation thread was stopped)` : '');
    void this.#quarantine(ruleId, rule.version, fingerprint, reason);
  }

  async #quarantine(ruleId: string, version: number, fingerprint: string, reason: string): Promise<void> {
    const { store, metrics, logger } = this.#o;
    this.#storing.add(ruleId);
    const since = new Date().toISOString();
    try {
      await store.put({ kind: 'quarantine', id: quarantineKey(ruleId), rule_id: ruleId, version, fingerprint, reason, since, updated_at: since });
      metrics.ruleQuarantines.inc({ rule_id: ruleId });
      logger.warn(
        { ruleId, version, reason, since },
        `rule ${ruleId} quarantined: ${reason}; it is not evaluated until it is changed or re-enabled (POST /v1/rules/${ruleId}/enable)`,
      );
    } catch (err) {
      logger.error({ ruleId, reason, err }, `rule ${ruleId} should be quarantined, but the rule store cannot be written: it is still evaluated`);
    } finally {
      this.#storing.delete(ruleId);
    }
  }
}

function formatWindow(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
