/**
 * Where API rules (and API overrides of file rules) live, so every process sees
 * them: embedded mode keeps them in a file of the data directory; Kafka mode in
 * the compacted rules topic (src/transport/kafka-rules.ts), read in full when a
 * process starts, then followed. Either way, applying an entry to the registry
 * is the same function.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Component } from '../component.ts';
import { compileRule, type RuleDefinition } from '../rules/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { RuleRegistry } from './rule-registry.ts';

/** One entry of the store: an API rule, or an enable/disable override of a file rule. */
export type StoredRule =
  | { readonly kind: 'rule'; readonly id: string; readonly definition: RuleDefinition; readonly version: number; readonly updated_at: string }
  | { readonly kind: 'override'; readonly id: string; readonly enabled: boolean; readonly version: number; readonly updated_at: string };

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
  if (entry === undefined) {
    registry.deleteApiRule(id);
    registry.setOverride(id, undefined);
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
      const parsed = JSON.parse(readFileSync(this.#path, 'utf8')) as { rules?: StoredRule[] };
      for (const entry of parsed.rules ?? []) {
        this.#entries.set(entry.id, entry);
        applyStoredRule(this.#registry, entry.id, entry, this.#logger);
      }
    }
    return Promise.resolve();
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
