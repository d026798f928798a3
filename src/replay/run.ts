/**
 * One replay, start to end: an engine over the chosen source, then the report.
 * Shared by `betrace replay` and the replay jobs of the API. Expected failures
 * (unreadable source, missing topic) are values.
 */
import type { Config } from '../config/index.ts';
import type { CompiledRule } from '../rules/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { createReplayEngine, type ReplayEngine, type ReplayViolation } from './engine.ts';
import { readFileSource, resolveTraceFiles, resolveTraceFilesUnder } from './file-source.ts';
import { readHistorySource } from './history-source.ts';
import { readJaegerSource, type JaegerEndpoint } from './jaeger-source.ts';
import { runGroupReplay } from './kafka-group.ts';
import { readKafkaSource } from './kafka-source.ts';
import { buildReport, type ReplayReport } from './report.ts';
import type { SourceResult } from './source.ts';

export type ReplaySource =
  /** The running transport's history: the spans topic with Kafka, the local history with the embedded transport. */
  | { readonly kind: 'default' }
  | { readonly kind: 'history' }
  /** `group`: share the partitions with the other replays of that name (kafka-group.ts). */
  | { readonly kind: 'kafka'; readonly partitions?: readonly number[]; readonly group?: string }
  | { readonly kind: 'files'; readonly patterns: readonly string[]; /** Only files inside this directory (API replays). */ readonly root?: string }
  /** A Jaeger's stored traces, through its query API v3 (jaeger-source.ts). */
  | { readonly kind: 'jaeger'; readonly endpoint: JaegerEndpoint };

export interface ReplayProgress {
  readonly records: number;
  readonly spans: number;
  /** Traces evaluated (or skipped) so far, in range. */
  readonly traces: number;
  readonly violations: number;
  /** Spans read per second. */
  readonly rate: number;
  /** Share of the input read, 0..1, when known. */
  readonly fraction?: number;
  /** Estimated time left, ms, when known. */
  readonly etaMs?: number;
  readonly elapsedMs: number;
}

export interface ReplayRunOptions {
  readonly rules: readonly CompiledRule[];
  readonly fromMs: number;
  readonly toMs: number;
  readonly source: ReplaySource;
  readonly config: Config;
  readonly logger: Logger;
  /** Default true (false: decode and evaluate every trace). */
  readonly skipByTriggers?: boolean;
  /** Read every record of the history, not its trace index (default false). */
  readonly fullScan?: boolean;
  readonly maxLiveSpans?: number;
  readonly signal?: AbortSignal;
  /** Called as the input is read (at most a few times a second). */
  readonly onProgress?: (p: ReplayProgress) => void;
  /**
   * Group replay: called with the violations of each partition once it is read, before
   * the partition is marked done for the group (e.g. `--emit`); an error fails the replay.
   */
  readonly onPartitionDone?: (violations: readonly ReplayViolation[]) => Promise<{ readonly ok: true } | { readonly ok: false; readonly error: string }>;
}

export type ReplayRunResult = { readonly ok: true; readonly report: ReplayReport } | { readonly ok: false; readonly error: string };

export function progressOf(engine: ReplayEngine, startedAt: number, fraction: number | undefined): ReplayProgress {
  const c = engine.counters;
  const elapsedMs = performance.now() - startedAt;
  const rate = elapsedMs > 0 ? (c.spansRead * 1000) / elapsedMs : 0;
  const p: { -readonly [K in keyof ReplayProgress]: ReplayProgress[K] } = {
    records: c.records,
    spans: c.spansRead,
    traces: c.tracesScanned,
    violations: c.violations,
    rate,
    elapsedMs,
  };
  if (fraction !== undefined) {
    p.fraction = fraction;
    if (fraction > 0) p.etaMs = (elapsedMs * (1 - fraction)) / fraction;
  }
  return p;
}

/** The engine of one replay (of one partition, in a group replay). */
export function engineFor(o: ReplayRunOptions): ReplayEngine {
  return createReplayEngine({
    rules: o.rules,
    fromMs: o.fromMs,
    toMs: o.toMs,
    traceMaxDurationMs: o.config.worker.traceMaxDurationMs,
    budgetMs: o.config.worker.evaluationBudgetMs,
    ...(o.skipByTriggers === undefined ? {} : { skipByTriggers: o.skipByTriggers }),
    ...(o.maxLiveSpans === undefined ? {} : { maxLiveSpans: o.maxLiveSpans }),
  });
}

export async function runReplay(o: ReplayRunOptions): Promise<ReplayRunResult> {
  const requested = o.source.kind === 'default' ? (o.config.transport.kind === 'kafka' ? { kind: 'kafka' as const } : { kind: 'history' as const }) : o.source;
  if (requested.kind === 'kafka' && requested.group !== undefined) return runGroupReplay(o, requested.group);
  const startedAt = performance.now();
  const engine = engineFor(o);
  let lastProgress = 0;
  const onProgress = (fraction: number | undefined) => {
    if (o.onProgress === undefined) return;
    const now = performance.now();
    if (now - lastProgress < 200) return;
    lastProgress = now;
    o.onProgress(progressOf(engine, startedAt, fraction));
  };
  let source: SourceResult;
  if (requested.kind === 'history') {
    source = await readHistorySource(engine, {
      dir: o.config.transport.history.dir,
      marginMs: o.config.worker.traceMaxDurationMs,
      ...(o.fullScan === true ? { fullScan: true } : {}),
      onProgress: (p) => onProgress(p.fraction),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  } else if (requested.kind === 'files') {
    const files = requested.root === undefined ? await resolveTraceFiles(requested.patterns) : await resolveTraceFilesUnder(requested.root, requested.patterns);
    if (!files.ok) return files;
    source = await readFileSource(engine, {
      files: files.files,
      onProgress: (p) => onProgress(p.fraction),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  } else if (requested.kind === 'jaeger') {
    source = await readJaegerSource(engine, {
      endpoint: requested.endpoint,
      marginMs: o.config.worker.traceMaxDurationMs,
      onProgress: (p) => onProgress(p.fraction),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  } else {
    source = await readKafkaSource(engine, {
      kafka: o.config.transport.kafka,
      logger: o.logger,
      marginMs: o.config.worker.traceMaxDurationMs,
      ...(o.fullScan === true ? { fullScan: true } : {}),
      onProgress: (p) => onProgress(p.fraction),
      ...(requested.partitions === undefined ? {} : { partitions: requested.partitions }),
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  }
  if (!source.ok) return source;
  engine.finish();
  return {
    ok: true,
    report: buildReport({
      fromMs: o.fromMs,
      toMs: o.toMs,
      rules: engine.ruleIds,
      source: source.description,
      counters: engine.counters,
      violations: engine.violations(),
      elapsedMs: performance.now() - startedAt,
      fromHistoryStart: source.fromHistoryStart,
      historyStartMs: source.historyStartMs,
      untimedTraceIds: engine.untimedTraceIds,
    }),
  };
}
