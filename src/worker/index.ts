export { Worker, type WorkerOptions } from './worker.ts';
export { EvaluatorPool } from './evaluator-pool.ts';
export { TraceWindows, type CompletedTrace, type CutReason, type WindowOptions } from './trace-windows.ts';
export { RuleRegistry, type RegisteredRule, type RuleSource } from './rule-registry.ts';
export { RuleFiles } from './rule-files.ts';
export { ViolationStore, queryRecords, type ViolationPage, type ViolationQuery, type ViolationReader, type ViolationSink } from './violation-store.ts';
export { toViolationRecord, type ViolationRecord } from './violation-record.ts';
export { violationSpansPayload, VIOLATION_SPAN_NAME, BETRACE_VERSION } from './violation-span.ts';
