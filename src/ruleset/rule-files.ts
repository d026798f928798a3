/**
 * Rule files from `rules.paths` (globs), reloaded when they change, checked
 * once a second (stat of each file: works for edits, atomic renames and
 * Kubernetes ConfigMap symlink swaps alike). A file that no longer compiles
 * leaves its previous rules in force; the error goes to the log and to
 * betrace_rules_reload_failing / betrace_rules_reload_errors_total. A file that
 * disappears takes its rules with it: a warning names the file and the rule ids,
 * and betrace_rule_files_removed_total counts it.
 * Rules sharing an id (in two files, or a file's and the API's) log a warning
 * naming both places and the one in force: when the duplicate appears or its
 * winner changes, and again whenever a file it involves is reloaded.
 */
import { stat } from 'node:fs/promises';
import { glob } from 'tinyglobby';
import type { Component } from '../component.ts';
import { describeDuplicateRuleId, formatFileDiagnostic, formatRulePlace, loadRuleFile, type RulePlace } from '../rules/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { RuleRegistry } from './rule-registry.ts';

export interface RuleFilesOptions {
  readonly patterns: readonly string[];
  readonly registry: RuleRegistry;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly pollIntervalMs?: number;
}

export class RuleFiles implements Component {
  readonly #o: RuleFilesOptions;
  readonly #stamps = new Map<string, string>();
  readonly #failing = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  /** Duplicates last logged: the ignored definition's place → the place in force. */
  /** Duplicates logged, by rule id and the file (or API) of the ignored definition: where each is in force and ignored. */
  #loggedDuplicates = new Map<string, { inForce: string; ignored: string }>();
  #inScan = false;
  #unsubscribe: (() => void) | undefined;

  constructor(options: RuleFilesOptions) {
    this.#o = options;
  }

  /**
   * Logs each duplicate id that is new, whose winner changed, or that involves a
   * file in `reloaded`; and, once, each that is gone.
   */
  #logDuplicates(reloaded: ReadonlySet<string>): void {
    const { registry, logger } = this.#o;
    const now = new Map<string, { inForce: string; ignored: string }>();
    const involves = (p: RulePlace) => p.source === 'file' && reloaded.has(p.file);
    for (const d of registry.duplicates()) {
      // Keyed by file, not position: lines moving in an edited file are the same duplicate.
      const key = `${d.id}\0${d.ignored.place.source === 'file' ? d.ignored.place.file : 'api'}`;
      const entry = { inForce: formatRulePlace(d.inForce.place), ignored: formatRulePlace(d.ignored.place) };
      now.set(key, entry);
      if (this.#loggedDuplicates.get(key)?.inForce === entry.inForce && !involves(d.inForce.place) && !involves(d.ignored.place)) continue;
      logger.warn({ ruleId: d.id, inForce: entry.inForce, ignored: entry.ignored }, describeDuplicateRuleId(d));
    }
    for (const [key, { ignored }] of this.#loggedDuplicates) {
      if (now.has(key)) continue;
      const id = key.slice(0, key.indexOf('\0'));
      logger.info({ ruleId: id, ignored }, `rule id ${JSON.stringify(id)}: the definition at ${ignored} no longer duplicates another one`);
    }
    this.#loggedDuplicates = now;
  }

  /** Files that currently fail to compile (their previous rules stay in force). */
  get failingFiles(): string[] {
    return [...this.#failing];
  }

  async start(): Promise<void> {
    // API rules change outside scans (the rule store): a file rule may shadow one.
    this.#unsubscribe = this.#o.registry.onChange(() => {
      if (!this.#inScan) this.#logDuplicates(new Set());
    });
    await this.scan();
    this.#timer = setInterval(() => {
      this.#scanning ??= this.scan().finally(() => (this.#scanning = undefined));
    }, this.#o.pollIntervalMs ?? 1000);
    this.#timer.unref();
  }

  async #files(): Promise<string[]> {
    if (this.#o.patterns.length === 0) return [];
    const found = await glob([...this.#o.patterns], { absolute: true, onlyFiles: true, followSymbolicLinks: true });
    return found.sort();
  }

  /** Loads new and changed files, drops deleted ones. */
  async scan(): Promise<void> {
    this.#inScan = true;
    try {
      await this.#scan();
    } finally {
      this.#inScan = false;
    }
  }

  async #scan(): Promise<void> {
    const { registry, logger, metrics } = this.#o;
    const reloaded = new Set<string>();
    const files = await this.#files();
    for (const gone of [...this.#stamps.keys()].filter((f) => !files.includes(f))) {
      this.#stamps.delete(gone);
      this.#failing.delete(gone);
      const removed = registry
        .all()
        .filter((r) => r.file === gone)
        .map((r) => r.definition.id);
      registry.setFileRules(gone, []);
      reloaded.add(gone);
      metrics.ruleFilesRemoved.inc();
      // A warning: a file that vanished by mistake (a bad deploy, a ConfigMap gone) silently ends checks.
      logger.warn({ file: gone, removedRuleIds: removed }, `rule file ${gone} is gone: its ${removed.length} rule(s) are no longer in force`);
    }
    for (const file of files) {
      let stamp: string;
      try {
        const s = await stat(file);
        stamp = `${s.mtimeMs}:${s.size}:${s.ino}`;
      } catch {
        continue;
      }
      if (this.#stamps.get(file) === stamp) continue;
      this.#stamps.set(file, stamp);
      const result = await loadRuleFile(file);
      for (const w of result.warnings) logger.warn({ file }, formatFileDiagnostic(w, 'warning'));
      if (result.errors.length > 0) {
        this.#failing.add(file);
        metrics.rulesReloadErrors.inc();
        logger.error(
          { file, errors: result.errors.map((e) => formatFileDiagnostic(e, 'error')) },
          registry.files().includes(file)
            ? 'rule file does not compile: its previous rules stay in force'
            : 'rule file does not compile: none of its rules are in force',
        );
      } else {
        this.#failing.delete(file);
        registry.setFileRules(file, result.rules, result.positions);
        reloaded.add(file);
        logger.info({ file, rules: result.rules.length }, 'rule file loaded');
      }
    }
    this.#logDuplicates(reloaded);
    metrics.rulesReloadFailing.set(this.#failing.size > 0 ? 1 : 0);
    const counts = { file: 0, api: 0 };
    for (const r of registry.all()) counts[r.source]++;
    metrics.rulesLoaded.set({ source: 'file' }, counts.file);
    metrics.rulesLoaded.set({ source: 'api' }, counts.api);
  }

  async shutdown(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#scanning;
  }
}
