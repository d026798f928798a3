/**
 * The attribute keys a set of rules can read: every `span.k`, `resource.k` and
 * bare `k` anywhere in their conditions (joins, aggregates and distinct counts
 * included), and `service.name` always (for `span:service`, and the services a
 * violation names). A decoder may leave every other attribute out of the spans it
 * builds for these rules: no verdict, witness or violation depends on an attribute a
 * condition never names.
 */
import type { CompiledRule } from './rule.ts';

export function attributeKeys(rules: readonly CompiledRule[]): Set<string> {
  const keys = new Set<string>(['service.name']);
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const x of node) walk(x);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const n = node as { kind?: unknown; key?: unknown; name?: unknown };
    if (n.kind === 'attr' && typeof n.key === 'string') keys.add(n.key);
    for (const v of Object.values(node)) walk(v);
  };
  for (const r of rules) walk(r.condition);
  return keys;
}
