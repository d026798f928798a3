/**
 * The rules a replay runs: a rule file, rule YAML text (API), or rule ids looked
 * up in the rule files of the configuration (`rules.paths`). Rules managed
 * through the API are not looked up yet: pass their YAML instead.
 */
import { glob } from 'tinyglobby';
import type { Config } from '../config/index.ts';
import { formatFileDiagnostic, loadRuleFile, parseRuleFile, resolveRuleIds, type CompiledRule, type PlacedRule } from '../rules/index.ts';

export type RuleSpec =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'yaml'; readonly text: string }
  | { readonly kind: 'ids'; readonly ids: readonly string[] };

export type RulesResult =
  | { readonly ok: true; readonly rules: CompiledRule[]; readonly warnings: string[] }
  | { readonly ok: false; readonly error: string };

export async function resolveRules(spec: RuleSpec, config: Config): Promise<RulesResult> {
  if (spec.kind === 'file' || spec.kind === 'yaml') {
    const loaded = spec.kind === 'file' ? await loadRuleFile(spec.path) : parseRuleFile(spec.text, 'rules');
    if (loaded.errors.length > 0) {
      const more = loaded.errors.length > 1 ? ` (and ${loaded.errors.length - 1} more error${loaded.errors.length > 2 ? 's' : ''})` : '';
      return { ok: false, error: `${formatFileDiagnostic(loaded.errors[0]!, 'error')}${more}` };
    }
    const rules = loaded.rules.filter((r) => r.definition.enabled);
    if (rules.length === 0) return { ok: false, error: `${spec.kind === 'file' ? spec.path : 'rules'}: no enabled rule to replay` };
    return { ok: true, rules, warnings: loaded.warnings.map((w) => formatFileDiagnostic(w, 'warning')) };
  }
  if (spec.ids.length === 0) return { ok: false, error: 'no rule id given' };
  const files = config.rules.paths.length === 0 ? [] : (await glob([...config.rules.paths], { absolute: true, onlyFiles: true })).sort();
  // The definition in force for each id: the one the pipeline runs (resolveRuleIds).
  const placed: PlacedRule<CompiledRule>[] = [];
  for (const file of files) {
    const loaded = await loadRuleFile(file);
    for (const r of loaded.rules) {
      const p = loaded.positions.get(r.definition.id);
      placed.push({ id: r.definition.id, place: { source: 'file', file, line: p?.line ?? 0, column: p?.column ?? 0 }, value: r });
    }
  }
  const byId = new Map(resolveRuleIds(placed).winners.map((w) => [w.id, w.value]));
  const missing = spec.ids.filter((id) => !byId.has(id));
  if (missing.length > 0) {
    const where = files.length === 0 ? 'no rule files configured (rules.paths; use --config, or --rules FILE)' : `not in ${files.length} rule file${files.length === 1 ? '' : 's'} of rules.paths`;
    return { ok: false, error: `unknown rule ${missing.join(', ')}: ${where}` };
  }
  // A rule asked for by id is replayed even when disabled in its file.
  const rules = [...new Set(spec.ids)].map((id) => {
    const r = byId.get(id)!;
    return r.definition.enabled ? r : { ...r, definition: { ...r.definition, enabled: true } };
  });
  return { ok: true, rules, warnings: [] };
}
