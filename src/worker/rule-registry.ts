/**
 * The rules in force: from rule files (read-only) and, later, from the API.
 * Each rule carries its source and a version that grows on every change.
 * Listeners (the evaluator pool, the API) are told after every change.
 */
import type { CompiledRule, RuleDefinition } from '../rules/index.ts';

export type RuleSource = 'file' | 'api';

export interface RegisteredRule {
  readonly rule: CompiledRule;
  readonly source: RuleSource;
  /** The file it came from (source file). */
  readonly file?: string;
  readonly version: number;
}

export class RuleRegistry {
  readonly #byFile = new Map<string, CompiledRule[]>();
  readonly #api = new Map<string, RegisteredRule>();
  readonly #versions = new Map<string, { version: number; canonical: string; def: string }>();
  readonly #listeners = new Set<() => void>();
  #current: RegisteredRule[] = [];

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
    return this.#current.find((r) => r.rule.definition.id === id);
  }

  definitions(): RuleDefinition[] {
    return this.#current.map((r) => r.rule.definition);
  }

  setApiRule(rule: CompiledRule, version?: number): RegisteredRule {
    const id = rule.definition.id;
    const registered: RegisteredRule = { rule, source: 'api', version: version ?? this.#nextVersion(id, rule) };
    this.#api.set(id, registered);
    this.#rebuild();
    return this.get(id) ?? registered;
  }

  deleteApiRule(id: string): boolean {
    const had = this.#api.delete(id);
    if (had) this.#rebuild();
    return had;
  }

  #nextVersion(id: string, rule: CompiledRule): number {
    const key = JSON.stringify(rule.definition);
    const prev = this.#versions.get(id);
    if (prev === undefined) {
      this.#versions.set(id, { version: 1, canonical: rule.canonical, def: key });
      return 1;
    }
    if (prev.def === key) return prev.version;
    const next = { version: prev.version + 1, canonical: rule.canonical, def: key };
    this.#versions.set(id, next);
    return next.version;
  }

  #rebuild(): void {
    const out: RegisteredRule[] = [];
    const seen = new Set<string>();
    for (const [file, rules] of this.#byFile) {
      for (const rule of rules) {
        const id = rule.definition.id;
        if (seen.has(id)) continue;
        seen.add(id);
        out.push({ rule, source: 'file', file, version: this.#nextVersion(id, rule) });
      }
    }
    for (const r of this.#api.values()) {
      if (seen.has(r.rule.definition.id)) continue;
      seen.add(r.rule.definition.id);
      out.push(r);
    }
    this.#current = out;
    for (const l of this.#listeners) l();
  }
}
