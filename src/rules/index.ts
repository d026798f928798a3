/**
 * The rule language: public surface. Self-contained: nothing here depends on the
 * rest of the pipeline (src/otlp builds SpanRecords; src/worker calls evaluate).
 */
export type { AttributeValue, Attributes, SpanRecord } from './span.ts';
export { SpanKind, StatusCode, putAttribute } from './span.ts';
export type { Condition } from './ast.ts';
export type { DiagnosticCode, ErrorCode, FileDiagnostic, RuleDiagnostic, WarningCode } from './diagnostics.ts';
export { ERROR_CODES, MAX_CONDITION_BYTES, MAX_NESTING_DEPTH, WARNING_CODES, formatFileDiagnostic } from './diagnostics.ts';
export type { CompileResult, CompiledRule, RuleDefinition, Severity } from './rule.ts';
export type { RuleTextProblem } from './rule.ts';
export { RULE_ID_PATTERN, SEVERITIES, checkCondition, compileRule, explainNotes, ruleTextProblems, violationId } from './rule.ts';
export type { EvaluateOptions, EvaluationResult, Violation } from './evaluate.ts';
export { DEFAULT_BUDGET_MS, MAX_WITNESS_SPAN_IDS, RuleSet, createRuleSet, evaluateTrace } from './evaluate.ts';
export type { RuleFileResult } from './rule-file.ts';
export { loadRuleFile, parseRuleFile } from './rule-file.ts';
export { parseCondition } from './parse.ts';
export { printCondition } from './print.ts';
export { TraceIndex, VIOLATION_SPAN_NAME } from './trace-index.ts';
export { attributeKeys } from './attribute-keys.ts';
export type { DuplicateRuleId, PlacedRule, ResolvedRuleIds, RulePlace } from './rule-ids.ts';
export { describeDuplicateRuleId, formatRulePlace, resolveRuleIds } from './rule-ids.ts';
export type { AlertProblem, AlertRoute, ChannelKind, Destination } from './alerts.ts';
export { CHANNEL_KINDS, alertRouteJson, destinationName, readAlertRouteValue, readDestinationValue } from './alerts.ts';
