/**
 * The rules in force: from rule files (read-only through the API) and from the
 * API. Each rule carries its source and a version that grows on every change.
 * File rules can be switched off and on through the API (an override, kept with
 * the API rules) so that an operator can silence a noisy rule at once.
 * A rule can also be quarantined (rule-quarantine.ts): it stays listed but is
 * not evaluated. A quarantine holds for the rule as it was when quarantined (its
 * fingerprint): once the rule changes, the quarantine no longer applies.
 * Listeners (the evaluator pool, metrics) are told after every change.
 * Rules sharing an id are resolved by resolveRuleIds (src/rules/rule-ids.ts): the
 * same winner at start, after any hot reload, and in `rules check`.
 */
import { createHash } from 'node:crypto';
import { resolveRuleIds, type CompiledRule, type DuplicateRuleId, type PlacedRule, type RuleDefinition } from '../rules/index.ts';

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

/** A file rule with where its `id:` is in the file (0 when unknown: then its place in the list orders it). */
export interface FileRule {
  readonly rule: CompiledRule;
  readonly line: number;
  readonly column: number;
}

/** What a definition sharing an id with another one is: a file's rule or an API rule. */
export type RuleEntry = { readonly source: 'file'; readonly rule: CompiledRule } | { readonly source: 'api'; readonly rule: CompiledRule; readonly version: number };

export class RuleRegistry {
  readonly #byFile = new Map<string, FileRule[]>();
  readonly #api = new Map<string, { rule: CompiledRule; version: number }>();
  readonly #overrides = new Map<string, { enabled: boolean; version: number }>();
  readonly #fileVersions = new Map<string, { version: number; def: string }>();
  readonly #quarantines = new Map<string, Quarantine>();
  readonly #listeners = new Set<() => void>();
  #current: RegisteredRule[] = [];
  #byId = new Map<string, RegisteredRule>();
  #duplicates: DuplicateRuleId<RuleEntry>[] = [];

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Replaces the rules that came from `file` (an empty list removes them);
   * `positions` (loadRuleFile's) says where each is, by id.
   */
  setFileRules(file: string, rules: readonly CompiledRule[], positions?: ReadonlyMap<string, { line: number; column: number }>): void {
    if (rules.length === 0) this.#byFile.delete(file);
    else
      this.#byFile.set(
        file,
        rules.map((rule) => {
          const p = positions?.get(rule.definition.id);
          return { rule, line: p?.line ?? 0, column: p?.column ?? 0 };
        }),
      );
    this.#rebuild();
  }

  files(): string[] {
    return [...this.#byFile.keys()];
  }

  /** Rules in force: file rules (in path order; resolveRuleIds picks one per id), then API rules. */
  all(): readonly RegisteredRule[] {
    return this.#current;
  }

  /** Definitions ignored because another one has their id, each with the one in force. */
  duplicates(): readonly DuplicateRuleId<RuleEntry>[] {
    return this.#duplicates;
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
    const placed: PlacedRule<RuleEntry>[] = [];
    for (const [file, rules] of this.#byFile) {
      for (const { rule, line, column } of rules) placed.push({ id: rule.definition.id, place: { source: 'file', file, line, column }, value: { source: 'file', rule } });
    }
    for (const { rule, version } of this.#api.values()) placed.push({ id: rule.definition.id, place: { source: 'api' }, value: { source: 'api', rule, version } });
    const { winners, duplicates } = resolveRuleIds(placed);
    const out: RegisteredRule[] = [];
    for (const { id, place, value } of winners) {
      if (value.source === 'api') {
        out.push({ rule: value.rule, definition: value.rule.definition, source: 'api', version: value.version, ...this.#state(value.rule.definition) });
        continue;
      }
      const { rule } = value;
      const override = this.#overrides.get(id);
      const definition = override === undefined ? rule.definition : { ...rule.definition, enabled: override.enabled };
      const file = place.source === 'file' ? place.file : undefined;
      out.push({ rule, definition, source: 'file', ...(file === undefined ? {} : { file }), version: this.#fileVersion(id, rule) + (override?.version ?? 0), ...this.#state(definition) });
    }
    this.#current = out;
    this.#duplicates = duplicates;
    this.#byId = new Map(out.map((r) => [r.definition.id, r]));
    for (const l of this.#listeners) l();
  }
}
