/**
 * The metric names betrace really exports (from createMetrics(), the one place they are
 * defined), and the metric names a PromQL expression refers to: what the alerts and the
 * dashboard are checked against.
 */
import { createMetrics } from '../../src/telemetry/metrics.ts';

/** Every series name scraped from /metrics: histograms with _bucket/_sum/_count. */
export async function exportedMetricNames(): Promise<Set<string>> {
  const metrics = createMetrics();
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    const type = String(m.type);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(m.name + suffix);
    else names.add(m.name);
  }
  return names;
}

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2',
]);

/**
 * Metric names used by a PromQL expression: identifiers left once strings, label
 * matchers, ranges, grouping label lists, numbers and template variables are removed,
 * and that are neither functions (followed by '(') nor keywords.
 */
export function metricNamesIn(expr: string): string[] {
  let text = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?[0-9a-z$_]+/gi, ' ')
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ' ');
  text = text.replace(/(^|[^A-Za-z0-9_:])(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)(?![A-Za-z0-9_:])/gi, '$1 ');
  const names: string[] = [];
  const ident = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  for (let m = ident.exec(text); m !== null; m = ident.exec(text)) {
    const rest = text.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest)) continue;
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}
