/**
 * One rule per id: which definition is in force when several share an id. The
 * same order everywhere (`rules check`, the pipeline at start and on every hot
 * reload, replay by rule id), so that what a check says wins is what runs:
 *
 *   1. rule files before API rules (the API refuses to create a rule with a file
 *      rule's id; an API rule that a file later defines too is shadowed by it);
 *   2. among files, the file whose resolved path sorts first (plain code-unit
 *      order, the order of `Array#sort`, independent of the locale, of the order
 *      files were given or found in, and of when each was last reloaded);
 *   3. within a file, the first definition (parseRuleFile already keeps only it).
 */
import { resolve } from 'node:path';

/** Where a definition is: a rule file's `id:` (line and column 1-based; 0 when unknown), or the API. */
export type RulePlace = { readonly source: 'file'; readonly file: string; readonly line: number; readonly column: number } | { readonly source: 'api' };

export interface PlacedRule<T> {
  readonly id: string;
  readonly place: RulePlace;
  readonly value: T;
}

export interface DuplicateRuleId<T> {
  readonly id: string;
  /** The definition in force. */
  readonly inForce: PlacedRule<T>;
  /** A definition with the same id that is ignored. */
  readonly ignored: PlacedRule<T>;
}

export interface ResolvedRuleIds<T> {
  /** One definition per id, in the order above. */
  readonly winners: PlacedRule<T>[];
  /** Every ignored definition with the one in force instead, in the order above. */
  readonly duplicates: DuplicateRuleId<T>[];
}

/** FILE:LINE:COL (FILE alone when the position is unknown), or `the API`. */
export function formatRulePlace(place: RulePlace): string {
  if (place.source === 'api') return 'the API';
  return place.line > 0 ? `${place.file}:${place.line}:${place.column}` : place.file;
}

function compare(a: { key: string; place: RulePlace; index: number }, b: { key: string; place: RulePlace; index: number }): number {
  const pa = a.place;
  const pb = b.place;
  if (pa.source !== pb.source) return pa.source === 'file' ? -1 : 1;
  if (pa.source === 'file' && pb.source === 'file') {
    if (a.key !== b.key) return a.key < b.key ? -1 : 1;
    if (pa.line !== pb.line) return pa.line - pb.line;
    if (pa.column !== pb.column) return pa.column - pb.column;
  }
  return a.index - b.index;
}

/** The definition in force for each id, and the ones ignored. */
export function resolveRuleIds<T>(rules: Iterable<PlacedRule<T>>): ResolvedRuleIds<T> {
  const sorted = [...rules]
    .map((rule, index) => ({ rule, place: rule.place, index, key: rule.place.source === 'file' ? resolve(rule.place.file) : '' }))
    .sort(compare);
  const byId = new Map<string, PlacedRule<T>>();
  const winners: PlacedRule<T>[] = [];
  const duplicates: DuplicateRuleId<T>[] = [];
  for (const { rule } of sorted) {
    const inForce = byId.get(rule.id);
    if (inForce === undefined) {
      byId.set(rule.id, rule);
      winners.push(rule);
    } else duplicates.push({ id: rule.id, inForce, ignored: rule });
  }
  return { winners, duplicates };
}

/** The one-line account of a duplicate, the same in `rules check` and the pipeline's log. */
export function describeDuplicateRuleId(d: DuplicateRuleId<unknown>): string {
  const why = d.ignored.place.source === 'api' ? 'a rule file takes precedence over the API' : 'the file whose path sorts first wins';
  return `duplicate rule id ${JSON.stringify(d.id)}: the definition at ${formatRulePlace(d.inForce.place)} is in force, the one at ${formatRulePlace(d.ignored.place)} is ignored (${why})`;
}
