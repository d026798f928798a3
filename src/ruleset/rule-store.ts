/**
 * Where API rules (and API overrides of file rules) live, so every process sees
 * them: embedded mode keeps them in a file of the data directory; Kafka mode in
 * the compacted rules topic (src/ruleset/kafka-rules.ts), read in full when a
 * process starts, then followed. Either way, applying an entry to the registry
 * is the same function.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Component } from '../component.ts';
import { compileRule, type RuleDefinition } from '../rules/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { RuleRegistry } from './rule-registry.ts';

/**
 * One entry of the store: an API rule, an enable/disable override of a file rule,
 * or the quarantine of a rule (file or API), under its own key (quarantineKey:
 * rule ids hold no ':'), so that it is kept, replaced and removed apart from the
 * rule's entry (in Kafka mode: compacted under its key, a tombstone lifts it).
 */
export type StoredRule =
  | { readonly kind: 'rule'; readonly id: string; readonly definition: RuleDefinition; readonly version: number; readonly updated_at: string }
  | { readonly kind: 'override'; readonly id: string; readonly enabled: boolean; readonly version: number; readonly updated_at: string }
  | {
      readonly kind: 'quarantine';
      /** quarantineKey(rule_id). */
      readonly id: string;
      readonly rule_id: string;
      /** The rule's version where it was decided (for the reader; what counts is the fingerprint). */
      readonly version: number;
      /** ruleFingerprint of the rule quarantined: a changed rule is not. */
      readonly fingerprint: string;
      readonly reason: string;
      readonly since: string;
      readonly updated_at: string;
    };

const QUARANTINE_PREFIX = 'quarantine:';

/** The store key of rule `ruleId`'s quarantine. */
export function quarantineKey(ruleId: string): string {
  return `${QUARANTINE_PREFIX}${ruleId}`;
}

export interface RuleStore extends Component {
  /** Stores an entry; resolves once it is durable and applied locally. */
  put(entry: StoredRule): Promise<void>;
  /** Removes the entry of `id` (rule or override). */
  remove(id: string): Promise<void>;
  /** The entry of `id`, if any. */
  get(id: string): StoredRule | undefined;
}

/** Applies an entry (or its removal) to the registry. */
export function applyStoredRule(registry: RuleRegistry, id: string, entry: StoredRule | undefined, logger: Logger): void {
  if (id.startsWith(QUARANTINE_PREFIX)) {
    const ruleId = id.slice(QUARANTINE_PREFIX.length);
    if (entry === undefined) registry.setQuarantine(ruleId, undefined);
    else if (entry.kind === 'quarantine') registry.setQuarantine(ruleId, { fingerprint: entry.fingerprint, reason: entry.reason, since: entry.since });
    else logger.error({ key: id, kind: entry.kind }, 'rule store: a quarantine key holds another kind of entry: ignored');
    return;
  }
  if (entry === undefined) {
    registry.deleteApiRule(id);
    registry.setOverride(id, undefined);
    return;
  }
  if (entry.kind === 'quarantine') {
    logger.error({ key: id }, 'rule store: a quarantine entry under a rule key: ignored');
    return;
  }
  if (entry.kind === 'override') {
    registry.setOverride(id, { enabled: entry.enabled, version: entry.version });
    return;
  }
  const compiled = compileRule(entry.definition);
  if (!compiled.ok) {
    logger.error({ ruleId: id, errors: compiled.errors }, 'stored rule does not compile: ignored');
    return;
  }
  registry.setApiRule(compiled.rule, entry.version);
}

/** Embedded mode: a JSON file in the data directory, rewritten atomically on each change. */
export class FileRuleStore implements RuleStore {
  readonly #path: string;
  readonly #registry: RuleRegistry;
  readonly #logger: Logger;
  readonly #entries = new Map<string, StoredRule>();

  constructor(options: { dataDir: string; registry: RuleRegistry; logger: Logger }) {
    this.#path = join(options.dataDir, 'api-rules.json');
    this.#registry = options.registry;
    this.#logger = options.logger;
  }

  start(): Promise<void> {
    if (existsSync(this.#path)) {
      for (const entry of this.#read()) {
        this.#entries.set(entry.id, entry);
        applyStoredRule(this.#registry, entry.id, entry, this.#logger);
      }
    }
    return Promise.resolve();
  }

  /** The entries of the file, or an error naming it, what is wrong and what to do (start stops: API rules are not dropped silently). */
  #read(): StoredRule[] {
    const fail = (problem: string) =>
      new Error(
        `${this.#path} (the rules created through the API) ${problem}: restore it from a backup or repair it; ` +
          'or move it aside to start without API rules and enable/disable overrides',
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.#path, 'utf8'));
    } catch (err) {
      throw fail(err instanceof SyntaxError ? `is not valid JSON (${err.message}; cut short by a crash or a full disk?)` : `cannot be read (${(err as Error).message})`);
    }
    const rules = (parsed as { rules?: unknown } | null)?.rules;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Array.isArray(rules)) {
      throw fail('is not {"rules": [...]}');
    }
    rules.forEach((entry: unknown, i) => {
      const e = entry as Partial<Record<string, unknown>> | null;
      const ok =
        typeof e === 'object' &&
        e !== null &&
        typeof e.id === 'string' &&
        typeof e.version === 'number' &&
        ((e.kind === 'rule' && typeof e.definition === 'object' && e.definition !== null) ||
          (e.kind === 'override' && typeof e.enabled === 'boolean') ||
          (e.kind === 'quarantine' && typeof e.fingerprint === 'string' && typeof e.reason === 'string' && typeof e.since === 'string'));
      if (!ok) throw fail(`has an entry ${i + 1} that is neither a rule nor an override nor a quarantine (${JSON.stringify(entry)?.slice(0, 120)})`);
    });
    return rules as StoredRule[];
  }

  get(id: string): StoredRule | undefined {
    return this.#entries.get(id);
  }

  #save(): void {
    mkdirSync(join(this.#path, '..'), { recursive: true });
    const tmp = `${this.#path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ rules: [...this.#entries.values()] }, null, 2)}\n`);
    renameSync(tmp, this.#path);
  }

  put(entry: StoredRule): Promise<void> {
    this.#entries.set(entry.id, entry);
    this.#save();
    applyStoredRule(this.#registry, entry.id, entry, this.#logger);
    return Promise.resolve();
  }

  remove(id: string): Promise<void> {
    this.#entries.delete(id);
    this.#save();
    applyStoredRule(this.#registry, id, undefined, this.#logger);
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
