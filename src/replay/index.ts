/**
 * Rule replay: rules evaluated on past traces, from the spans topic, the local
 * history, a Jaeger or OTLP files (the BeTrace Method's step 3). Public surface.
 */
export { createReplayEngine, ReplayEngine, ReplayLane, utcDay, DEFAULT_MAX_LIVE_SPANS } from './engine.ts';
export type { ReplayCounters, ReplayEngineOptions, ReplayViolation } from './engine.ts';
export { NameMatcher, scanPart, type PartScan } from '../otlp/index.ts';
export { readFileSource, resolveTraceFiles, type FileSourceOptions } from './file-source.ts';
export { readKafkaSource, type KafkaSourceOptions } from './kafka-source.ts';
export { readJaegerSource, parseJaegerSource, DEFAULT_JAEGER_SEARCH_DEPTH, type JaegerEndpoint, type JaegerSourceOptions } from './jaeger-source.ts';
export type { SourceProgress, SourceResult } from './source.ts';
export { buildReport, formatJson, formatTable, type ReplayDay, type ReplayReport } from './report.ts';
export { runReplay, type ReplayProgress, type ReplayRunOptions, type ReplayRunResult, type ReplaySource } from './run.ts';
export { resolveRules, type RuleSpec, type RulesResult } from './rules.ts';
export { emitViolations, type EmitResult } from './emit.ts';
export { parseRange, parseTime, TIME_FORMS } from './time.ts';
export { ReplayJobs, validateReplayRequest, type ReplayJob, type ReplayJobProgress, type ReplayJobRequest, type ReplayJobsOptions, type StartResult } from './jobs.ts';
