/**
 * Rule files (src/rules/README.md): YAML with a top-level `rules:` list. Every problem in a
 * file is reported at once, each at a line and column inside the YAML file — a
 * condition's errors are mapped through the position of its scalar (block, plain
 * or quoted), not left relative to the condition.
 *
 * Expected failures are values: loadRuleFile never rejects.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node as YamlNode, Scalar } from 'yaml';
import type { DiagnosticCode, FileDiagnostic, RuleDiagnostic } from './diagnostics.ts';
import { didYouMean } from '../expected.ts';
import { RULE_ID_PATTERN, SEVERITIES, compileRule, textProblem } from './rule.ts';
import { readAlertEntryNode, type AlertProblem, type AlertRoute } from './alerts.ts';
import type { CompiledRule, RuleDefinition, Severity } from './rule.ts';

export interface RuleFileResult {
  /** The rules that compiled (disabled ones included), in file order. */
  rules: CompiledRule[];
  /** Where each of `rules` is defined (its `id:` value), by rule id. */
  positions: Map<string, { line: number; column: number }>;
  errors: FileDiagnostic[];
  warnings: FileDiagnostic[];
}

const RULE_KEYS = new Set(['id', 'name', 'description', 'severity', 'enabled', 'tags', 'message', 'condition']);

/** Reads and compiles a rule file. */
export async function loadRuleFile(path: string): Promise<RuleFileResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return { rules: [], positions: new Map(), errors: [{ file: path, line: 1, column: 1, code: 'io', message: `cannot read rule file (${reason})` }], warnings: [] };
  }
  return parseRuleFile(text, path);
}

/**
 * Maps positions inside a scalar's value to offsets in the file. The YAML styles
 * only change whitespace (indentation, folding) and escapes, so the value's
 * non-blank characters appear in the source in the same order: align on them.
 */
function valueToSource(source: string, node: Scalar): (valueOffset: number) => number {
  const value = String(node.value);
  const [rangeStart, rangeEnd] = node.range ?? [0, 0];
  let s = rangeStart;
  if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') {
    const nl = source.indexOf('\n', rangeStart);
    s = nl < 0 ? rangeEnd : nl + 1;
  } else if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') s = rangeStart + 1;
  const map = new Int32Array(value.length + 1);
  for (let k = 0; k < value.length; k++) {
    const ch = value[k] as string;
    if (/\s/.test(ch)) {
      map[k] = s;
      if (s < rangeEnd && /\s/.test(source[s] as string)) s++;
      continue;
    }
    let t = s;
    while (t < rangeEnd && source[t] !== ch && /[\s\\'"]/.test(source[t] as string)) t++;
    if (t < rangeEnd && source[t] === ch) {
      map[k] = t;
      s = t + 1;
    } else map[k] = s;
  }
  map[value.length] = s;
  return (o) => map[Math.max(0, Math.min(value.length, o))] as number;
}

/** Offset of (line, column) inside `text`, both 1-based. */
function offsetIn(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', offset);
    if (nl < 0) return text.length;
    offset = nl + 1;
  }
  return offset + column - 1;
}

/** Parses and compiles rule-file text; `file` names it in diagnostics. */
export function parseRuleFile(text: string, file = '<input>'): RuleFileResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: true, uniqueKeys: true });
  const errors: FileDiagnostic[] = [];
  const warnings: FileDiagnostic[] = [];
  const rules: CompiledRule[] = [];
  const positions = new Map<string, { line: number; column: number }>();
  const at = (offset: number | undefined, code: DiagnosticCode, message: string, ruleId?: string): FileDiagnostic => {
    const p = lc.linePos(offset ?? 0);
    return { file, line: p.line, column: p.col, code, message, ...(ruleId === undefined ? {} : { ruleId }) };
  };
  const nodeAt = (n: YamlNode | null | undefined): number | undefined => n?.range?.[0];

  for (const e of doc.errors) {
    const p = e.linePos?.[0];
    errors.push({ file, line: p?.line ?? 1, column: p?.col ?? 1, code: 'yaml', message: e.message.split('\n')[0] ?? e.message });
  }
  if (errors.length > 0) return { rules, positions, errors, warnings };

  const root = doc.contents;
  if (root === null || (isScalar(root) && (root.value === null || root.value === undefined))) return { rules, positions, errors, warnings };
  if (!isMap(root)) {
    errors.push(at(nodeAt(root), 'bad-rule', 'a rule file is a mapping with a `rules:` list'));
    return { rules, positions, errors, warnings };
  }
  let list: YamlNode | null = null;
  let alertList: YamlNode | null = null;
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (key === 'rules') list = pair.value;
    else if (key === 'alerts') alertList = pair.value;
    else errors.push(at(nodeAt(pair.key), 'unknown-key', `unknown top-level key ${JSON.stringify(key)} (a rule file has \`rules:\` and \`alerts:\`)${didYouMean(key, ['rules', 'alerts'])}`));
  }
  const alerts = readAlerts(alertList, text, (p) => errors.push(at(p.offset, 'bad-alert', p.message)));
  if (list !== null && !isSeq(list) && !(isScalar(list) && list.value === null)) {
    errors.push(at(nodeAt(list), 'bad-rule', '`rules:` must be a list of rules'));
    return { rules, positions, errors, warnings };
  }

  const seen = new Map<string, number>();
  const items = list !== null && isSeq(list) ? (list.items as (YamlNode | null)[]) : [];
  for (const item of items) {
    const def = readRule(item, text, at, errors);
    if (def === null) continue;
    const route = alerts.get(def.definition.id);
    if (route !== undefined) {
      route.used = true;
      def.definition.alerts = route.route;
    }
    const compiled = compileRule(def.definition);
    const mapDiag = (d: RuleDiagnostic): FileDiagnostic => {
      const offset = def.conditionToSource(offsetIn(def.definition.condition, d.line, d.column));
      return at(offset, d.code, d.message, def.definition.id);
    };
    if (!def.valid) {
      // readRule reported text that is not Unicode on the field itself
      if (!compiled.ok) errors.push(...compiled.errors.filter((e) => e.code !== 'bad-text').map(mapDiag));
      continue;
    }
    const firstAt = seen.get(def.definition.id);
    if (firstAt !== undefined) {
      const p = lc.linePos(firstAt);
      warnings.push(at(def.idOffset, 'duplicate-id', `duplicate rule id ${JSON.stringify(def.definition.id)} (first defined at ${p.line}:${p.col}); this definition is ignored`, def.definition.id));
    }
    if (!compiled.ok) {
      errors.push(...compiled.errors.map(mapDiag));
      continue;
    }
    warnings.push(...compiled.warnings.map(mapDiag));
    if (firstAt !== undefined) continue;
    seen.set(def.definition.id, def.idOffset ?? 0);
    const p = lc.linePos(def.idOffset ?? 0);
    positions.set(def.definition.id, { line: p.line, column: p.col });
    rules.push(compiled.rule);
  }
  for (const [id, a] of alerts) {
    if (!a.used) errors.push(at(a.offset, 'bad-alert', `alert for rule ${JSON.stringify(id)}: no rule of that id in this file (an alert sits in the file of its rule)`, id));
  }
  return { rules, positions, errors, warnings };
}

/** The `alerts:` list by rule id; each problem goes to `report`. */
function readAlerts(list: YamlNode | null, source: string, report: (p: AlertProblem) => void): Map<string, { route: AlertRoute; offset: number | undefined; used: boolean }> {
  const out = new Map<string, { route: AlertRoute; offset: number | undefined; used: boolean }>();
  if (list === null || (isScalar(list) && list.value === null)) return out;
  if (!isSeq(list)) {
    report({ offset: list.range?.[0], path: 'alerts', message: '`alerts:` must be a list of alerts (rule_id, severity, notification, channels)' });
    return out;
  }
  for (const item of list.items as (YamlNode | null)[]) {
    const problems: AlertProblem[] = [];
    const entry = readAlertEntryNode(item, source, problems);
    problems.forEach(report);
    if (entry === undefined) continue;
    if (out.has(entry.ruleId)) {
      report({ offset: entry.ruleIdOffset, path: 'alerts', message: `a second alert for rule ${JSON.stringify(entry.ruleId)}: give each rule one alert, with every channel in its \`channels:\`` });
      continue;
    }
    out.set(entry.ruleId, { route: entry.route, offset: entry.ruleIdOffset, used: false });
  }
  return out;
}

interface ReadRule {
  /** False when the entry has errors of its own (its condition is still checked). */
  valid: boolean;
  definition: RuleDefinition;
  idOffset: number | undefined;
  conditionToSource: (valueOffset: number) => number;
}

/** Reads one `rules:` entry, reporting every problem; null if it cannot be compiled. */
function readRule(
  item: YamlNode | null,
  source: string,
  at: (offset: number | undefined, code: DiagnosticCode, message: string, ruleId?: string) => FileDiagnostic,
  errors: FileDiagnostic[],
): ReadRule | null {
  if (!isMap(item)) {
    errors.push(at(item?.range?.[0], 'bad-rule', 'each rule is a mapping (id, name, severity, condition, …)'));
    return null;
  }
  const map = item;
  const fields = new Map<string, { key: Scalar; value: YamlNode | null }>();
  for (const pair of map.items) {
    const key = pair.key as YamlNode;
    const name = isScalar(key) ? String(key.value) : '';
    if (!isScalar(key) || !RULE_KEYS.has(name)) {
      const hint = didYouMean(name, RULE_KEYS);
      errors.push(at(key.range?.[0], 'unknown-key', `unknown rule key ${JSON.stringify(name)}${hint === '' ? ` (allowed: ${[...RULE_KEYS].join(', ')})` : hint}`));
      continue;
    }
    fields.set(name, { key, value: pair.value as YamlNode | null });
  }
  const before = errors.length;
  /** Text that violation spans carry must be Unicode text (see ruleTextProblems). */
  const checkText = (field: string, value: string, node: Scalar): void => {
    const p = textProblem(field, value, false);
    if (p !== null) errors.push(at(valueToSource(source, node)(p.index), 'bad-text', p.message));
  };
  const str = (name: string, required: boolean): { value: string; node: Scalar } | undefined => {
    const f = fields.get(name);
    if (f === undefined) {
      if (required) errors.push(at(map.range?.[0], 'bad-rule', `rule is missing \`${name}\``));
      return undefined;
    }
    if (!isScalar(f.value) || typeof f.value.value !== 'string') {
      errors.push(at(f.value?.range?.[0] ?? f.key.range?.[0], 'bad-rule', `\`${name}\` must be a string`));
      return undefined;
    }
    checkText(name, f.value.value, f.value);
    return { value: f.value.value, node: f.value };
  };
  const id = str('id', true);
  if (id !== undefined && !RULE_ID_PATTERN.test(id.value)) {
    errors.push(at(id.node.range?.[0], 'bad-id', `rule id ${JSON.stringify(id.value)} must match [a-z0-9][a-z0-9._-]*`));
  }
  const ruleName = str('name', false);
  const description = str('description', false);
  const message = str('message', false);
  const severity = str('severity', true);
  if (severity !== undefined && !(SEVERITIES as readonly string[]).includes(severity.value)) {
    errors.push(at(severity.node.range?.[0], 'bad-severity', `severity ${JSON.stringify(severity.value)} must be one of ${SEVERITIES.join(', ')}${didYouMean(severity.value, SEVERITIES)}`));
  }
  let enabled = true;
  const en = fields.get('enabled');
  if (en !== undefined) {
    if (isScalar(en.value) && typeof en.value.value === 'boolean') enabled = en.value.value;
    else errors.push(at(en.value?.range?.[0] ?? en.key.range?.[0], 'bad-rule', '`enabled` must be true or false'));
  }
  const tags: string[] = [];
  const tf = fields.get('tags');
  if (tf !== undefined) {
    if (isSeq(tf.value) && tf.value.items.every((t) => isScalar(t) && t.value !== null && typeof t.value !== 'object')) {
      for (const [i, t] of tf.value.items.entries()) {
        const tag = String((t as Scalar).value);
        checkText(`tags[${i}]`, tag, t as Scalar);
        tags.push(tag);
      }
    } else errors.push(at(tf.value?.range?.[0] ?? tf.key.range?.[0], 'bad-rule', '`tags` must be a list of strings'));
  }
  const condition = str('condition', true);
  if (condition === undefined) return null;
  return {
    valid: errors.length === before && id !== undefined && severity !== undefined,
    definition: {
      id: id?.value ?? '',
      name: ruleName?.value ?? id?.value ?? '',
      description: description?.value ?? '',
      severity: (severity?.value ?? 'info') as Severity,
      enabled,
      tags,
      ...(message === undefined ? {} : { message: message.value }),
      condition: condition.value,
    },
    idOffset: id?.node.range?.[0],
    conditionToSource: valueToSource(source, condition.node),
  };
}
