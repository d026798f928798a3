/**
 * `betrace replay (--rules FILE | --rule ID…) --from TIME --to TIME
 *   [--source kafka | --source history | --source jaeger[s]://HOST:PORT | --source FILE…] [--format table|json] [--emit]
 *   [--fail-on-violation] [--config FILE] [--partitions LIST | --group NAME] [--full-scan]`
 *
 * Evaluates rules on past traces (the BeTrace Method's "Rule Replay"): the
 * traces whose earliest span start lies in [from, to), read from the spans
 * topic, the embedded transport's local history, a Jaeger's query API or OTLP files (by default the
 * running transport's history: Kafka's topic or the local history), reported per UTC day. Exit 0; 1 on a usage or input
 * error (one line on stderr); 2 with --fail-on-violation when violations were
 * found. A progress line goes to stderr only when it is a terminal.
 */
import { Writable } from 'node:stream';
import { ConfigError, loadConfig, type Config } from '../config/index.ts';
import type { ReplayViolation } from '../replay/engine.ts';
import { emitViolations } from '../replay/emit.ts';
import { formatJson, formatTable } from '../replay/report.ts';
import { parseJaegerSource } from '../replay/jaeger-source.ts';
import { resolveRules, type RuleSpec } from '../replay/rules.ts';
import { runReplay, type ReplayProgress, type ReplaySource } from '../replay/run.ts';
import { parseRange } from '../replay/time.ts';
import { createLogger } from '../telemetry/logger.ts';
import { ExitCode } from './output.ts';

export interface ReplayCommandOptions {
  /** Rule file (YAML). Exactly one of rules / rule. */
  rules?: string;
  /** Rule ids (comma-separated or repeated), looked up in the config's rule files. */
  rule?: string | string[];
  from?: string;
  to?: string;
  /** `kafka`, `history`, `jaeger://HOST:PORT` (`jaegers://` for TLS) or trace files / globs (default: the running transport's history). */
  source?: string | string[];
  format?: string;
  emit?: boolean;
  failOnViolation?: boolean;
  config?: string;
  /** Comma-separated partition numbers (Kafka source). */
  partitions?: string;
  /** A job name: share the partitions with its other replays through a consumer group (Kafka source). */
  group?: string;
  /** Tests: the environment for config overrides (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Tests: "now" for relative times (default Date.now()). */
  nowMs?: number;
  /** Show the progress line once the replay has run this long (default 1000 ms). */
  progressAfterMs?: number;
  /** Tests: skip traces without triggers (default true). */
  skipByTriggers?: boolean;
  /** Read every record, not the history's trace index. */
  fullScan?: boolean;
}

export interface ReplayOutput {
  stdout(s: string): void;
  stderr(s: string): void;
}

/** Where the progress line goes (default process.stderr); shown only on a terminal. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(s: string): unknown;
}

const list = (v: string | string[] | undefined): string[] =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');

function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  return String(Math.round(n));
}

function progressLine(p: ReplayProgress): string {
  const eta = p.etaMs === undefined ? '' : `, ETA ${Math.ceil(p.etaMs / 1000)} s`;
  const pct = p.fraction === undefined ? '' : ` ${Math.floor(p.fraction * 100)}%,`;
  return `replay:${pct} ${formatCount(p.spans)} spans, ${formatCount(p.traces)} traces, ${p.violations} violations, ${formatCount(p.rate)} spans/s${eta}`;
}

export async function replayCommand(opts: ReplayCommandOptions, out: ReplayOutput, progress: ProgressStream = process.stderr): Promise<number> {
  const fail = (reason: string): number => {
    out.stderr(`betrace replay: ${reason}`);
    return ExitCode.inputError;
  };
  const ruleIds = list(opts.rule);
  if ((opts.rules === undefined) === (ruleIds.length === 0)) return fail('give either --rules FILE or --rule ID');
  if (opts.from === undefined || opts.to === undefined) return fail('--from TIME and --to TIME are required');
  const range = parseRange(opts.from, opts.to, opts.nowMs ?? Date.now());
  if (!range.ok) return fail(range.error);
  const format = opts.format ?? 'table';
  if (format !== 'table' && format !== 'json') return fail(`--format must be table or json, got ${JSON.stringify(format)}`);

  const sources = list(opts.source);
  let source: ReplaySource;
  if (opts.group !== undefined && (opts.partitions !== undefined || !/^[A-Za-z0-9._-]{1,100}$/.test(opts.group))) {
    return fail(opts.partitions !== undefined ? '--group and --partitions exclude each other: the group assigns the partitions' : `--group must be 1-100 letters, digits, ".", "_" or "-", got ${JSON.stringify(opts.group)}`);
  }
  const kafkaOnly = opts.group !== undefined ? '--group' : opts.partitions !== undefined ? '--partitions' : undefined;
  if (sources.length === 0 && kafkaOnly === undefined) source = { kind: 'default' };
  else if (sources.length === 1 && sources[0] === 'history') {
    if (kafkaOnly !== undefined) return fail(`${kafkaOnly} applies to --source kafka only`);
    source = { kind: 'history' };
  } else if (sources.length === 1 && /^jaegers?:\/\//.test(sources[0]!)) {
    if (kafkaOnly !== undefined) return fail(`${kafkaOnly} applies to --source kafka only`);
    const endpoint = parseJaegerSource(sources[0]!);
    if (typeof endpoint === 'string') return fail(endpoint);
    source = { kind: 'jaeger', endpoint };
  } else if (sources.length === 0 || (sources.length === 1 && sources[0] === 'kafka')) {
    let partitions: number[] | undefined;
    if (opts.partitions !== undefined) {
      const parts = list(opts.partitions);
      if (parts.length === 0 || !parts.every((p) => /^\d+$/.test(p))) return fail(`--partitions must be a comma-separated list of partition numbers, got ${JSON.stringify(opts.partitions)}`);
      partitions = parts.map(Number);
    }
    source = partitions !== undefined ? { kind: 'kafka', partitions } : opts.group !== undefined ? { kind: 'kafka', group: opts.group } : { kind: 'kafka' };
  } else {
    if (sources.some((s) => s === 'kafka' || s === 'history' || /^jaegers?:\/\//.test(s))) return fail('--source is one of kafka, history, jaeger://HOST:PORT (jaegers:// for TLS) or trace files');
    if (kafkaOnly !== undefined) return fail(`${kafkaOnly} applies to --source kafka only`);
    source = { kind: 'files', patterns: sources };
  }

  let config: Config;
  try {
    config = loadConfig(opts.config, opts.env ?? process.env);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message);
    throw err;
  }
  if (opts.emit === true && config.downstream.endpoint === '') {
    return fail('--emit needs a downstream endpoint (downstream.endpoint, or OTEL_EXPORTER_OTLP_ENDPOINT)');
  }

  const spec: RuleSpec = opts.rules !== undefined ? { kind: 'file', path: opts.rules } : { kind: 'ids', ids: ruleIds };
  const rules = await resolveRules(spec, config);
  if (!rules.ok) return fail(rules.error);
  for (const w of rules.warnings) out.stderr(w);

  // Kafka client errors as one JSON line each on stderr, nothing below error.
  const logSink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.stderr(chunk.toString().trimEnd());
      cb();
    },
  });
  const logger = createLogger('error', logSink);
  const tty = progress.isTTY === true;
  let shown = false;
  const startedAt = performance.now();
  const grouped = source.kind === 'kafka' && source.group !== undefined;
  let emittedSpans = 0;
  const result = await runReplay({
    rules: rules.rules,
    fromMs: range.fromMs,
    toMs: range.toMs,
    source,
    config,
    logger,
    ...(opts.skipByTriggers === undefined ? {} : { skipByTriggers: opts.skipByTriggers }),
    ...(opts.fullScan === true ? { fullScan: true } : {}),
    // A group member sends each partition's violation spans before marking the partition done.
    ...(grouped && opts.emit === true
      ? {
          onPartitionDone: async (violations: readonly ReplayViolation[]) => {
            const emitted = await emitViolations(violations, config.downstream);
            emittedSpans += emitted.sent;
            return emitted.ok ? { ok: true as const } : { ok: false as const, error: `${emitted.error} (${emittedSpans} violation spans sent)` };
          },
        }
      : {}),
    ...(tty
      ? {
          onProgress: (p: ReplayProgress) => {
            if (performance.now() - startedAt < (opts.progressAfterMs ?? 1000)) return;
            shown = true;
            progress.write(`\r\x1b[K${progressLine(p)}`);
          },
        }
      : {}),
  });
  if (shown) progress.write('\r\x1b[K');
  if (!result.ok) return fail(result.error);
  const report = result.report;
  out.stdout(format === 'json' ? formatJson(report) : formatTable(report));

  if (grouped && opts.emit === true) {
    out.stderr(`betrace replay: ${emittedSpans} violation span${emittedSpans === 1 ? '' : 's'} exported to ${config.downstream.endpoint}`);
  } else if (opts.emit === true && report.violations.length > 0) {
    const emitted = await emitViolations(report.violations, config.downstream);
    if (!emitted.ok) return fail(`${emitted.error} (${emitted.sent} of ${report.violations.length} violation spans sent)`);
    out.stderr(`betrace replay: ${emitted.sent} violation span${emitted.sent === 1 ? '' : 's'} exported to ${config.downstream.endpoint}`);
  }
  return report.total > 0 && opts.failOnViolation === true ? ExitCode.violationsFound : ExitCode.ok;
}
