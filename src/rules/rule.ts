/**
 * A rule from definition to compiled form: parse → validate → compile. The
 * pipeline's entry point is compileRule(); it never throws on bad input.
 */
import type { AlertRoute } from './alerts.ts';
import { hash } from 'node:crypto';
import { compileCondition, triggerNames } from './compile.ts';
import type { BoolNode } from './compile.ts';
import type { Condition } from './ast.ts';
import type { RuleDiagnostic } from './diagnostics.ts';
import { parseCondition } from './parse.ts';
import { printCondition } from './print.ts';
import { TraceIndex } from './trace-index.ts';
import { validateCondition } from './validate.ts';

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const RULE_ID_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

export interface RuleDefinition {
  id: string;
  name: string;
  description: string;
  severity: Severity;
  enabled: boolean;
  tags: string[];
  /** The violation message; default: description, else name. */
  message?: string;
  condition: string;
  /** Who is notified when the rule fires (src/notify/README.md); default: notifications.defaults by severity. */
  alerts?: AlertRoute;
}

export interface CompiledRule {
  readonly definition: Readonly<RuleDefinition>;
  /** The canonical printed condition (what `rules check --explain` shows; part of the violation id). */
  readonly canonical: string;
  /** Span names whose presence can change the verdict; null = the rule always runs. */
  readonly triggers: ReadonlySet<string> | null;
  /** The verdict on a trace holding none of the triggers. */
  readonly passesWithoutTriggers: boolean;
  /** The seed's leading-has idiom was applied (the rule reads as an implication). */
  readonly leadingHas: boolean;
  /** The resolved AST. */
  readonly condition: Condition;
  /** The compiled program (internal to src/rules). */
  readonly program: BoolNode;
}

export type CompileResult =
  | { ok: true; rule: CompiledRule; warnings: RuleDiagnostic[] }
  | { ok: false; errors: RuleDiagnostic[] };

/** A rule field whose text is not Unicode text: `index` is the UTF-16 offset of the fault in it. */
export interface RuleTextProblem {
  /** `name`, `description`, `message`, `severity`, `id`, `condition` or `tags[i]`. */
  readonly field: string;
  readonly index: number;
  readonly message: string;
}

/**
 * The problem of one rule field's text, or null when it is Unicode text. A lone surrogate
 * (a UTF-16 half without its pair) is the only text a JavaScript string holds that is not.
 * `offset` says where in the message; rule files give the position instead.
 */
export function textProblem(field: string, text: string, offset = true): RuleTextProblem | null {
  // In `u` mode a pair is one code point, so \p{Cs} matches only unpaired halves.
  const at = text.search(/\p{Cs}/u);
  if (at < 0) return null;
  const unit = text.charCodeAt(at).toString(16).toUpperCase();
  return {
    field,
    index: at,
    message: `\`${field}\` is not valid Unicode text: a lone surrogate U+${unit}${offset ? ` at offset ${at}` : ''} (half of a UTF-16 pair); violation spans carry rule text as UTF-8, which cannot hold it`,
  };
}

/**
 * The rule's text fields that are not sequences of Unicode scalar values (a lone
 * surrogate, from a JSON or YAML `\ud800` escape). Every one of them but the condition
 * goes into violation spans (and the condition into stored rules), encoded as UTF-8: a
 * lone surrogate cannot be, and a conformant decoder downstream refuses the whole export
 * that carries it, other rules' violations included. So such a rule is refused at load.
 */
export function ruleTextProblems(def: Pick<RuleDefinition, 'id' | 'name' | 'description' | 'severity' | 'tags' | 'condition'> & { message?: string | undefined }): RuleTextProblem[] {
  const fields: [string, string | undefined][] = [
    ['id', def.id],
    ['name', def.name],
    ['description', def.description],
    ['message', def.message],
    ['severity', def.severity],
    ...def.tags.map((t, i): [string, string] => [`tags[${i}]`, t]),
    ['condition', def.condition],
  ];
  const problems: RuleTextProblem[] = [];
  for (const [field, text] of fields) {
    const p = typeof text === 'string' ? textProblem(field, text) : null;
    if (p !== null) problems.push(p);
  }
  return problems;
}

/** Line and column (1-based) of offset `index` in `text`. */
function lineColumn(text: string, index: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: index - start + 1 };
}

/** Parses and validates a condition without building a rule (for editors and the API). */
export function checkCondition(
  text: string,
  context?: { name?: string; description?: string; message?: string },
): { ok: true; condition: Condition; canonical: string; leadingHas: boolean; warnings: RuleDiagnostic[] } | { ok: false; errors: RuleDiagnostic[] } {
  const parsed = parseCondition(text);
  if (!parsed.ok) return { ok: false, errors: [parsed.error] };
  const v = validateCondition(parsed.ast, context, text);
  if (v.condition === null) return { ok: false, errors: v.errors };
  return { ok: true, condition: v.condition, canonical: printCondition(v.condition), leadingHas: v.leadingHas, warnings: v.warnings };
}

/** Compiles a rule definition; errors and warnings are relative to the condition text. */
export function compileRule(def: RuleDefinition): CompileResult {
  const text = ruleTextProblems(def);
  if (text.length > 0) {
    // Positions are the condition's: other fields' problems point at its start (rule files
    // and the API report them on the field itself, see ruleTextProblems).
    return { ok: false, errors: text.map((p) => ({ ...(p.field === 'condition' ? lineColumn(def.condition, p.index) : { line: 1, column: 1 }), code: 'bad-text', message: p.message })) };
  }
  const checked = checkCondition(def.condition, { name: def.name, description: def.description, ...(def.message === undefined ? {} : { message: def.message }) });
  if (!checked.ok) return checked;
  const program = compileCondition(checked.condition);
  const triggers = triggerNames(checked.condition);
  const empty = new TraceIndex([]);
  const passesWithoutTriggers = program.test({ index: empty, steps: 0, deadline: Infinity });
  const rule: CompiledRule = Object.freeze({
    definition: Object.freeze({ ...def, tags: Object.freeze([...def.tags]) as string[] }),
    canonical: checked.canonical,
    triggers,
    passesWithoutTriggers,
    leadingHas: checked.leadingHas,
    condition: checked.condition,
    program,
  });
  return { ok: true, rule, warnings: checked.warnings };
}

/**
 * The notes of the canonical reading (`betrace rules check --explain`, the API's
 * POST /v1/rules/validate): how the rule was understood beyond its printed condition.
 * `extra` (e.g. "disabled") goes between the idiom note and the trigger note.
 */
export function explainNotes(rule: CompiledRule, extra: readonly string[] = []): string[] {
  const notes: string[] = [];
  if (rule.leadingHas) notes.push('the leading trace.has(…) and … is read as an implication');
  notes.push(...extra);
  notes.push(rule.triggers === null ? 'runs on every trace' : `runs on traces with ${[...rule.triggers].join(', ')}; ${rule.passesWithoutTriggers ? 'passes' : 'FAILS'} without them`);
  return notes;
}

/**
 * The violation id (docs/contract.md "Violation id"): lowercase hex of the first 16 bytes of
 * SHA-256 over `ruleId + "\n" + canonical + "\n" + traceIdHex`. One-shot
 * `hash` takes half the time of a Hash object (about 1.1 µs against 2.5 µs).
 */
export function violationId(ruleId: string, canonical: string, traceIdHex: string): string {
  return hash('sha256', `${ruleId}\n${canonical}\n${traceIdHex}`, 'hex').slice(0, 32);
}

/**
 * violationId for one rule, over a buffer that holds the UTF-8 of `ruleId + "\n" + canonical
 * + "\n"` once, followed by room for a trace id: a trace id of 32 ASCII characters (every
 * trace id from the wire) is written into it a byte at a time and the buffer hashed, so
 * no string of the whole input is made and no UTF-8 encoded per violation. Any other
 * trace id goes through violationId. Not reentrant (one buffer): evaluation is synchronous.
 */
export class RuleViolationIds {
  readonly #ruleId: string;
  readonly #canonical: string;
  readonly #buffer: Buffer;
  readonly #at: number;

  constructor(ruleId: string, canonical: string) {
    this.#ruleId = ruleId;
    this.#canonical = canonical;
    const prefix = Buffer.from(`${ruleId}\n${canonical}\n`, 'utf8');
    this.#buffer = Buffer.alloc(prefix.length + 32);
    prefix.copy(this.#buffer);
    this.#at = prefix.length;
  }

  /** violationId(ruleId, canonical, traceIdHex). */
  of(traceIdHex: string): string {
    if (traceIdHex.length !== 32) return violationId(this.#ruleId, this.#canonical, traceIdHex);
    const b = this.#buffer;
    const at = this.#at;
    for (let k = 0; k < 32; k++) {
      const c = traceIdHex.charCodeAt(k);
      if (c > 0x7f) return violationId(this.#ruleId, this.#canonical, traceIdHex);
      b[at + k] = c;
    }
    return hash('sha256', b, 'hex').slice(0, 32);
  }
}
