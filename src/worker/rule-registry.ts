/**
 * The rules in force: from rule files (read-only through the API) and from the
 * API. Each rule carries its source and a version that grows on every change.
 * File rules can be switched off and on through the API (an override, kept with
 * the API rules) so that an operator can silence a noisy rule at once.
 * A rule can also be quarantined (rule-quarantine.ts): it stays listed but is
 * not evaluated. A quarantine holds for the rule as it was when quarantined (its
 * fingerprint): once the rule changes, the quarantine no longer applies.
 * Listeners (the evaluator pool, metrics) are told after every change.
 */
import { createHash } from 'node:crypto';
import type { CompiledRule, RuleDefinition } from '../rules/index.ts';

export type RuleSource = 'file' | 'api';

export type RuleState = 'enabled' | 'disabled' | 'quarantined';

export interface Quarantine {
  /** The fingerprint (ruleFingerprint) of the rule it applies to. */
  readonly fingerprint: string;
  readonly reason: string;
  /** When it was decided, ISO 8601. */
  readonly since: string;
}

/**
 * Identifies what a rule evaluates: its definition without `enabled` (switching a
 * rule off and on does not change it; the enable call lifts a quarantine itself).
 * The same in every process, file rules included (their versions are per process).
 */
export function ruleFingerprint(definition: RuleDefinition): string {
  const { enabled: _enabled, ...rest } = definition;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 32);
}

export interface RegisteredRule {
  readonly rule: CompiledRule;
  /** The definition in force (a file rule's `enabled` may be overridden). */
  readonly definition: RuleDefinition;
  readonly source: RuleSource;
  /** The file it came from (source file). */
  readonly file?: string;
  readonly version: number;
  /** enabled, disabled, or quarantined (enabled by its definition, but not evaluated). */
  readonly state: RuleState;
  /** Why and since when, while quarantined. */
  readonly quarantine?: Quarantine;
}

export class RuleRegistry {
  readonly #byFile = new Map<string, CompiledRule[]>();
  readonly #api = new Map<string, { rule: CompiledRule; version: number }>();
  readonly #overrides = new Map<string, { enabled: boolean; version: number }>();
  readonly #fileVersions = new Map<string, { version: number; def: string }>();
  readonly #quarantines = new Map<string, Quarantine>();
  readonly #listeners = new Set<() => void>();
  #current: RegisteredRule[] = [];
  #byId = new Map<string, RegisteredRule>();

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces the rules that came from `file` (an empty list removes them). */
  setFileRules(file: string, rules: readonly CompiledRule[]): void {
    if (rules.length === 0) this.#byFile.delete(file);
    else this.#byFile.set(file, [...rules]);
    this.#rebuild();
  }

  files(): string[] {
    return [...this.#byFile.keys()];
  }

  /** Rules in force: file rules (first file wins on a duplicate id), then API rules. */
  all(): readonly RegisteredRule[] {
    return this.#current;
  }

  get(id: string): RegisteredRule | undefined {
    return this.#byId.get(id);
  }

  /** Effective definitions, for evaluation: a quarantined rule is disabled. */
  definitions(): RuleDefinition[] {
    return this.#current.map((r) => (r.state === 'quarantined' ? { ...r.definition, enabled: false } : r.definition));
  }

  /** Quarantines rule `id` as it is in `quarantine.fingerprint` (undefined lifts it). */
  setQuarantine(id: string, quarantine: Quarantine | undefined): void {
    if (quarantine === undefined) {
      if (!this.#quarantines.delete(id)) return;
    } else {
      this.#quarantines.set(id, quarantine);
    }
    this.#rebuild();
  }

  /** Rules quarantined now. */
  quarantined(): RegisteredRule[] {
    return this.#current.filter((r) => r.state === 'quarantined');
  }

  /** An API rule with its version (the API's store decides versions). */
  setApiRule(rule: CompiledRule, version: number): void {
    this.#api.set(rule.definition.id, { rule, version });
    this.#rebuild();
  }

  deleteApiRule(id: string): boolean {
    const had = this.#api.delete(id);
    if (had) this.#rebuild();
    return had;
  }

  /** Enables or disables a file rule (undefined removes the override). */
  setOverride(id: string, override: { enabled: boolean; version: number } | undefined): void {
    if (override === undefined) this.#overrides.delete(id);
    else this.#overrides.set(id, override);
    this.#rebuild();
  }

  override(id: string): { enabled: boolean; version: number } | undefined {
    return this.#overrides.get(id);
  }

  #fileVersion(id: string, rule: CompiledRule): number {
    const def = JSON.stringify(rule.definition);
    const prev = this.#fileVersions.get(id);
    if (prev !== undefined && prev.def === def) return prev.version;
    const version = (prev?.version ?? 0) + 1;
    this.#fileVersions.set(id, { version, def });
    return version;
  }

  #state(definition: RuleDefinition): { state: RuleState; quarantine?: Quarantine } {
    if (!definition.enabled) return { state: 'disabled' };
    const q = this.#quarantines.get(definition.id);
    return q !== undefined && q.fingerprint === ruleFingerprint(definition) ? { state: 'quarantined', quarantine: q } : { state: 'enabled' };
  }

  #rebuild(): void {
    const out: RegisteredRule[] = [];
    const seen = new Set<string>();
    for (const [file, rules] of this.#byFile) {
      for (const rule of rules) {
        const id = rule.definition.id;
        if (seen.has(id)) continue;
        seen.add(id);
        const override = this.#overrides.get(id);
        const definition = override === undefined ? rule.definition : { ...rule.definition, enabled: override.enabled };
        out.push({ rule, definition, source: 'file', file, version: this.#fileVersion(id, rule) + (override?.version ?? 0), ...this.#state(definition) });
      }
    }
    for (const { rule, version } of this.#api.values()) {
      if (seen.has(rule.definition.id)) continue;
      seen.add(rule.definition.id);
      out.push({ rule, definition: rule.definition, source: 'api', version, ...this.#state(rule.definition) });
    }
    this.#current = out;
    this.#byId = new Map(out.map((r) => [r.definition.id, r]));
    for (const l of this.#listeners) l();
  }
}
