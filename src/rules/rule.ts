/**
 * A rule from definition to compiled form: parse → validate → compile. The
 * pipeline's entry point is compileRule(); it never throws on bad input.
 */
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
 * The violation id (CONTRACT.md): lowercase hex of the first 16 bytes of
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
