/**
 * Replay jobs for the admin API: `POST /v1/replay` starts one, `GET
 * /v1/replay/{id}` follows it. Bounded: at most `maxRunning` jobs run at once
 * (more is refused: 429), the last `maxKept` finished jobs are kept.
 *
 * Request (JSON):
 *   {
 *     "rule_ids": ["payment-idempotency"],     // rules of the rule files (rules.paths), or
 *     "rules_yaml": "rules:\n  - id: …",       // a rule file's text (exactly one of the two)
 *     "from": "30d",                            // TIME: RFC 3339, unix seconds, 30d/2h/15m ago, now
 *     "to": "now",
 *     "source": "kafka",                        // "kafka" (default) or "files"
 *     "files": ["traces/*.json"],               // with source "files": paths or globs inside
 *                                               // api.replay_dir (relative to it)
 *     "partitions": [0, 2]                      // optional, source "kafka"
 *   }
 * Job (JSON): { id, status: "running"|"done"|"failed", request, created_at,
 *   finished_at?, progress: { records, spans, traces, violations, rate, fraction? },
 *   result?: ReplayReport (report.ts: the `--format json` document), error? }
 */
import { randomUUID } from 'node:crypto';
import { bodyValidator } from '../api/openapi-schemas.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ReplayReport } from './report.ts';
import { resolveRules, type RulesResult } from './rules.ts';
import { runReplay, type ReplayProgress, type ReplaySource } from './run.ts';
import { parseJaegerSource } from './jaeger-source.ts';
import { parseRange } from './time.ts';

export interface ReplayJobRequest {
  readonly rule_ids?: readonly string[];
  readonly rules_yaml?: string;
  readonly from: string;
  readonly to: string;
  readonly source?: 'kafka' | 'history' | 'files' | 'jaeger';
  readonly files?: readonly string[];
  /** With source jaeger: `jaeger://HOST:PORT[?search_depth=N]`, or `jaegers://` for TLS. */
  readonly jaeger?: string;
  readonly partitions?: readonly number[];
}

/** A job's progress as the API shows it: the replay's counts, rate (rounded) and fraction. */
export type ReplayJobProgress = Pick<ReplayProgress, 'records' | 'spans' | 'traces' | 'violations' | 'rate' | 'fraction'>;

export interface ReplayJob {
  readonly id: string;
  readonly status: 'running' | 'done' | 'failed';
  readonly request: ReplayJobRequest;
  /** RFC 3339. */
  readonly created_at: string;
  readonly finished_at?: string;
  readonly progress: ReplayJobProgress;
  readonly result?: ReplayReport;
  readonly error?: string;
}

export type StartResult =
  | { readonly ok: true; readonly id: string }
  /** 400: the request is invalid; 429: too many replays running. */
  | { readonly ok: false; readonly status: 400 | 429; readonly error: string };

export interface ReplayJobsOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly maxRunning?: number;
  readonly maxKept?: number;
  /** How rule ids are found (default: the rule files of config.rules.paths). */
  readonly resolveRuleIds?: (ids: readonly string[]) => Promise<RulesResult>;
  readonly now?: () => number;
}

interface JobState {
  id: string;
  status: ReplayJob['status'];
  request: ReplayJobRequest;
  createdAt: number;
  finishedAt?: number;
  progress: ReplayJobProgress;
  result?: ReplayReport;
  error?: string;
  abort: AbortController;
  done: Promise<void>;
}

type Validated = { ok: true; request: ReplayJobRequest; fromMs: number; toMs: number; source: ReplaySource } | { ok: false; error: string };

/** The body's form, from the OpenAPI document's ReplayRequest (what the API documents is what it accepts). */
const replayRequestProblems = bodyValidator('ReplayRequest', 'the replay request');

/** Checks a request body: its form (the OpenAPI schema), then what the schema does not say; one-line reason when invalid. */
export function validateReplayRequest(body: unknown, nowMs: number): Validated {
  const problems = replayRequestProblems(body);
  if (problems !== undefined) return { ok: false, error: problems.map((p) => p.message).join('; ') };
  const b = body as ReplayJobRequest;
  if ((b.rule_ids === undefined) === (b.rules_yaml === undefined)) return { ok: false, error: 'give exactly one of rule_ids and rules_yaml' };
  const range = parseRange(b.from, b.to, nowMs);
  if (!range.ok) return { ok: false, error: range.error.replace(/^--/, '') };
  let source: ReplaySource;
  const kind = b.source ?? (b.files !== undefined ? 'files' : b.partitions !== undefined ? 'kafka' : b.jaeger !== undefined ? 'jaeger' : 'default');
  if (b.jaeger !== undefined && kind !== 'jaeger') return { ok: false, error: 'jaeger is for source "jaeger"' };
  if (kind === 'default') source = { kind: 'default' };
  else if (kind === 'jaeger') {
    if (b.files !== undefined) return { ok: false, error: 'files is for source "files"' };
    if (b.partitions !== undefined) return { ok: false, error: 'partitions is for source "kafka"' };
    if (b.jaeger === undefined) return { ok: false, error: 'source "jaeger" needs jaeger: the URL of its query gRPC API (jaeger://HOST:PORT)' };
    const endpoint = parseJaegerSource(b.jaeger, { files: false });
    if (typeof endpoint === 'string') return { ok: false, error: endpoint.replace(/^--source /, 'jaeger ') };
    source = { kind: 'jaeger', endpoint };
  }
  else if (kind === 'history') {
    if (b.files !== undefined) return { ok: false, error: 'files is for source "files"' };
    if (b.partitions !== undefined) return { ok: false, error: 'partitions is for source "kafka"' };
    source = { kind: 'history' };
  } else if (kind === 'kafka') {
    if (b.files !== undefined) return { ok: false, error: 'files is for source "files"' };
    source = b.partitions === undefined ? { kind: 'kafka' } : { kind: 'kafka', partitions: [...b.partitions] };
  } else {
    if (b.files === undefined) return { ok: false, error: 'source "files" needs files: a non-empty array of paths or globs' };
    if (b.partitions !== undefined) return { ok: false, error: 'partitions is for source "kafka"' };
    source = { kind: 'files', patterns: [...b.files] };
  }
  return { ok: true, request: b, fromMs: range.fromMs, toMs: range.toMs, source };
}

export class ReplayJobs {
  readonly #o: ReplayJobsOptions;
  readonly #jobs = new Map<string, JobState>();
  #stopping = false;

  constructor(options: ReplayJobsOptions) {
    this.#o = options;
  }

  #running(): number {
    let n = 0;
    for (const j of this.#jobs.values()) if (j.status === 'running') n++;
    return n;
  }

  /** Starts a replay; the job runs in the background (follow it with get). */
  start(body: unknown): StartResult {
    const now = this.#o.now?.() ?? Date.now();
    const validated = validateReplayRequest(body, now);
    if (!validated.ok) return { ok: false, status: 400, error: validated.error };
    let v = validated;
    if (v.source.kind === 'files') {
      // The API reads trace files only inside api.replay_dir (the CLI reads any file its user can).
      const root = this.#o.config.api.replayDir;
      if (root === '') return { ok: false, status: 400, error: 'replay from files through the API is off: set api.replay_dir to the directory it may read' };
      v = { ...v, source: { ...v.source, root } };
    }
    if (v.source.kind === 'jaeger') {
      // The API connects only to the Jaegers the configuration names (the CLI to any its user names).
      const allowed = this.#o.config.api.replayJaeger;
      if (allowed.length === 0) return { ok: false, status: 400, error: 'replay from Jaeger through the API is off: list the Jaegers it may read in api.replay_jaeger' };
      if (!allowed.includes(v.source.endpoint.address)) {
        return { ok: false, status: 400, error: `jaeger ${v.source.endpoint.address} is not one of api.replay_jaeger (${allowed.join(', ')})` };
      }
    }
    if (this.#stopping) return { ok: false, status: 429, error: 'shutting down' };
    const maxRunning = this.#o.maxRunning ?? 2;
    if (this.#running() >= maxRunning) return { ok: false, status: 429, error: `${maxRunning} replays are running already: try again later` };
    const id = randomUUID();
    const job: JobState = {
      id,
      status: 'running',
      request: v.request,
      createdAt: now,
      progress: { records: 0, spans: 0, traces: 0, violations: 0, rate: 0 },
      abort: new AbortController(),
      done: Promise.resolve(),
    };
    this.#jobs.set(id, job);
    job.done = this.#run(job, v).catch((err: unknown) => {
      this.#finish(job, { error: `internal error: ${err instanceof Error ? err.message : String(err)}` });
    });
    this.#prune();
    return { ok: true, id };
  }

  async #run(job: JobState, v: Extract<Validated, { ok: true }>): Promise<void> {
    const { config, logger } = this.#o;
    const req = v.request;
    let rules: RulesResult;
    if (req.rules_yaml !== undefined) rules = await resolveRules({ kind: 'yaml', text: req.rules_yaml }, config);
    else if (this.#o.resolveRuleIds !== undefined) rules = await this.#o.resolveRuleIds(req.rule_ids ?? []);
    else rules = await resolveRules({ kind: 'ids', ids: req.rule_ids ?? [] }, config);
    if (!rules.ok) {
      this.#finish(job, { error: rules.error });
      return;
    }
    const result = await runReplay({
      rules: rules.rules,
      fromMs: v.fromMs,
      toMs: v.toMs,
      source: v.source,
      config,
      logger,
      signal: job.abort.signal,
      onProgress: (p: ReplayProgress) => {
        job.progress = {
          records: p.records,
          spans: p.spans,
          traces: p.traces,
          violations: p.violations,
          rate: Math.round(p.rate),
          ...(p.fraction === undefined ? {} : { fraction: p.fraction }),
        };
      },
    });
    if (!result.ok) {
      this.#finish(job, { error: result.error });
      return;
    }
    const r = result.report;
    job.progress = {
      records: r.records_read,
      spans: r.spans_read,
      traces: r.traces_scanned,
      violations: r.total,
      rate: r.spans_per_second,
      fraction: 1,
    };
    this.#finish(job, { result: r });
  }

  #finish(job: JobState, outcome: { result?: ReplayReport; error?: string }): void {
    if (job.status !== 'running') return;
    job.finishedAt = this.#o.now?.() ?? Date.now();
    if (outcome.result !== undefined) {
      job.status = 'done';
      job.result = outcome.result;
    } else {
      job.status = 'failed';
      job.error = outcome.error ?? 'failed';
    }
    this.#prune();
  }

  /** Keeps the running jobs and the last maxKept finished ones. */
  #prune(): void {
    const maxKept = this.#o.maxKept ?? 50;
    const finished = [...this.#jobs.values()].filter((j) => j.status !== 'running');
    for (const j of finished.slice(0, Math.max(0, finished.length - maxKept))) this.#jobs.delete(j.id);
  }

  /** The job, or undefined (404) when unknown or pruned. */
  get(id: string): ReplayJob | undefined {
    const j = this.#jobs.get(id);
    if (j === undefined) return undefined;
    return {
      id: j.id,
      status: j.status,
      request: j.request,
      created_at: new Date(j.createdAt).toISOString(),
      ...(j.finishedAt === undefined ? {} : { finished_at: new Date(j.finishedAt).toISOString() }),
      progress: j.progress,
      ...(j.result === undefined ? {} : { result: j.result }),
      ...(j.error === undefined ? {} : { error: j.error }),
    };
  }

  /** Resolves when the job has finished (tests, shutdown). */
  async wait(id: string): Promise<ReplayJob | undefined> {
    await this.#jobs.get(id)?.done;
    return this.get(id);
  }

  /** Cancels a running job (it ends failed, "replay cancelled"). False when not running. */
  cancel(id: string): boolean {
    const j = this.#jobs.get(id);
    if (j === undefined || j.status !== 'running') return false;
    j.abort.abort();
    return true;
  }

  /** Cancels every running job and waits for them. Idempotent. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    const running = [...this.#jobs.values()].filter((j) => j.status === 'running');
    for (const j of running) j.abort.abort();
    await Promise.all(running.map((j) => j.done));
  }
}
