/**
 * `betrace rules check [--explain] FILE…`: every problem of every file as
 * `FILE:LINE:COL: message [code]` (warnings as `FILE:LINE:COL: warning: …`);
 * exit 0 when no file has an error, 1 otherwise. `--explain` prints each rule's
 * canonical reading, so an author sees exactly how the rule was understood.
 * A rule id defined in two files is a warning at the ignored definition, naming
 * the one in force: the winner the pipeline picks (resolveRuleIds), whatever the
 * order of the arguments.
 */
import { describeDuplicateRuleId, explainNotes, formatFileDiagnostic, formatRulePlace, loadRuleFile, resolveRuleIds, type PlacedRule } from '../rules/index.ts';

export interface RulesCheckOutput {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export async function rulesCheck(files: string[], opts: { explain: boolean }, out: RulesCheckOutput): Promise<number> {
  if (files.length === 0) {
    out.stderr('betrace rules check: no rule file given');
    return 1;
  }
  const loaded = await Promise.all(files.map(async (file) => ({ file, result: await loadRuleFile(file) })));
  // Duplicates across files: the winner the pipeline picks, whatever the order of the arguments.
  const placed: PlacedRule<undefined>[] = loaded.flatMap(({ file, result }) =>
    result.rules.map((rule) => {
      const p = result.positions.get(rule.definition.id);
      return { id: rule.definition.id, place: { source: 'file' as const, file, line: p?.line ?? 0, column: p?.column ?? 0 }, value: undefined };
    }),
  );
  const duplicates = resolveRuleIds(placed).duplicates;
  let errors = 0;
  let warnings = 0;
  let rules = 0;
  for (const { file, result: r } of loaded) {
    for (const e of r.errors) out.stderr(formatFileDiagnostic(e, 'error'));
    for (const w of r.warnings) out.stderr(formatFileDiagnostic(w, 'warning'));
    errors += r.errors.length;
    warnings += r.warnings.length;
    for (const d of duplicates) {
      if (d.ignored.place.source !== 'file' || d.ignored.place.file !== file) continue;
      out.stderr(`${formatRulePlace(d.ignored.place)}: warning: ${describeDuplicateRuleId(d)} [duplicate-id]`);
      warnings++;
    }
    for (const rule of r.rules) {
      const id = rule.definition.id;
      rules++;
      if (opts.explain) {
        const extra: string[] = [];
        if (!rule.definition.enabled) extra.push('disabled');
        const ignored = duplicates.find((d) => d.ignored.place.source === 'file' && d.ignored.place.file === file && d.id === id);
        if (ignored !== undefined) extra.push(`ignored: the definition at ${formatRulePlace(ignored.inForce.place)} is in force`);
        const notes = explainNotes(rule, extra);
        out.stdout(`${id}: ${rule.canonical}`);
        for (const n of notes) out.stdout(`  # ${n}`);
      }
    }
  }
  const summary = `${rules} rule${rules === 1 ? '' : 's'} in ${files.length} file${files.length === 1 ? '' : 's'}: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
  if (errors > 0) {
    out.stderr(summary);
    return 1;
  }
  out.stdout(summary);
  return 0;
}
