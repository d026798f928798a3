/**
 * A pool of evaluation threads (worker_threads). Evaluation never runs on the
 * I/O thread, so receiving, exporting and Kafka heartbeats are never starved by
 * a large trace or an expensive rule. A thread that dies is replaced; its
 * pending evaluations fail (the worker counts them and moves on).
 *
 * Watchdog: whatever a rule does, a thread cannot stall evaluation. Each thread
 * writes, in a slot of shared memory (Progress), which trace of which batch and
 * which rule it is on; the pool reads it on a timer, without a message (a thread
 * stuck in a rule cannot post one). The deadline is per trace, not per batch: a
 * trace's evaluation is bounded by its budget (the rules stop themselves once it
 * is spent), decoding and the rest of a trace's work by the margin, so a thread
 * seen on one trace for longer than budget + margin is stuck. A batch-wide
 * deadline would have to grow with the batch's size and would let a stuck thread
 * hold many traces as long. The stuck thread is terminated and replaced; its
 * trace counts as over budget for the rule it was stopped in and is evaluated
 * again without that rule (so the other rules' violations on it are not lost);
 * the other traces it held (those of its batch, done or not, and those queued
 * behind it) are evaluated again on the other threads. The time on a trace is measured
 * from when the pool first saw the thread on it, so a thread is never stopped
 * before budget + margin, at most one watchdog tick after.
 */
import { Worker } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Component } from '../component.ts';
import type { RuleDefinition } from '../rules/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Progress, unpackViolations, type EvalResponse, type EvalResults, type ThreadData, type ThreadMessage } from './evaluator-protocol.ts';

const threadFile = new URL(`./evaluator-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** worker.evaluation_stall_margin's default. */
export const DEFAULT_STALL_MARGIN_MS = 2000;
/** A trace is evaluated again at most this often after a thread holding it was stopped (for it, or for another trace). */
const MAX_ATTEMPTS = 4;

interface Request {
  readonly id: number;
  readonly budgetMs: number;
  readonly payloads: readonly Uint8Array[];
  readonly resolve: (r: EvalResponse) => void;
  readonly reject: (e: Error) => void;
  attempts: number;
  /** Threads stopped while on this trace. */
  stalls: number;
  /** The rules they were in: left out of its evaluation from then on. */
  readonly stalledRuleIds: string[];
}

interface Batch {
  readonly number: number;
  readonly requests: readonly Request[];
  /** The rules the thread evaluates the batch with (progress slots number them). */
  readonly rules: readonly RuleDefinition[];
}

interface Thread {
  readonly worker: Worker;
  readonly progress: Progress;
  /** Every request given to the thread and not answered, by id. */
  readonly pending: Map<number, Request>;
  /** Asked for in this turn of the event loop, sent at its end. */
  queued: Request[];
  /** Batches sent and not answered, oldest first (a thread answers them in order). */
  readonly sent: Batch[];
  /** Where the watchdog last saw the thread, and since when. */
  seen: { batch: number; position: number; since: number } | undefined;
  /** On one trace past its budget: given no more work while others are free. */
  overBudget: boolean;
}

export interface EvaluatorPoolOptions {
  readonly threads: number;
  readonly logger: Logger;
  readonly limits?: { maxAttributesPerSpan: number; maxAttributeValueLength: number };
  /** How long past its budget a thread may stay on one trace before it is stopped (worker.evaluation_stall_margin). */
  readonly stallMarginMs?: number;
  /**
   * The module each thread runs; default the evaluator thread next to this file.
   * Another module must speak the same protocol (evaluator-protocol.ts); tests
   * use one that wraps the real thread.
   */
  readonly threadModule?: URL;
}

export class EvaluatorPool implements Component {
  readonly #size: number;
  readonly #logger: Logger;
  readonly #marginMs: number;
  readonly #module: URL;
  #threads: Thread[] = [];
  #definitions: readonly RuleDefinition[] = [];
  #nextId = 1;
  #nextBatch = 1;
  #stopping = false;
  #watchdog: NodeJS.Timeout | undefined;

  readonly #limits: { maxAttributesPerSpan: number; maxAttributeValueLength: number };

  constructor(options: EvaluatorPoolOptions) {
    this.#size = options.threads;
    this.#logger = options.logger;
    this.#marginMs = options.stallMarginMs ?? DEFAULT_STALL_MARGIN_MS;
    this.#module = options.threadModule ?? threadFile;
    this.#limits = {
      maxAttributesPerSpan: options.limits?.maxAttributesPerSpan ?? Infinity,
      maxAttributeValueLength: options.limits?.maxAttributeValueLength ?? Infinity,
    };
  }

  start(): Promise<void> {
    if (this.#threads.length > 0) return Promise.resolve();
    this.#stopping = false;
    for (let i = 0; i < this.#size; i++) this.#threads.push(this.#spawn());
    // A quarter of the margin: a stuck thread is stopped at most that late.
    this.#watchdog = setInterval(() => this.#watch(), Math.min(1000, Math.max(10, this.#marginMs / 4)));
    this.#watchdog.unref();
    return Promise.resolve();
  }

  #spawn(): Thread {
    const progress = Progress.create();
    const worker = new Worker(this.#module, { workerData: { progress } satisfies ThreadData });
    worker.unref();
    const thread: Thread = { worker, progress: new Progress(progress), pending: new Map(), queued: [], sent: [], seen: undefined, overBudget: false };
    worker.on('message', (msg: EvalResults) => {
      thread.sent.shift();
      thread.seen = undefined;
      thread.overBudget = false;
      for (const r of msg.results) {
        const p = thread.pending.get(r.id);
        if (p === undefined) continue;
        thread.pending.delete(r.id);
        const violations = unpackViolations(r.violations, msg.rules);
        if (p.stalls === 0) p.resolve({ ...r, violations });
        else p.resolve({ ...r, violations, stalls: p.stalls, stalledRuleIds: p.stalledRuleIds, budgetExceededRuleIds: [...p.stalledRuleIds, ...r.budgetExceededRuleIds] });
      }
    });
    const fail = (err: Error) => {
      const i = this.#threads.indexOf(thread);
      if (i < 0) return; // stopped by the watchdog (its requests were handed on) or by shutdown
      for (const p of thread.pending.values()) p.reject(err);
      thread.pending.clear();
      if (!this.#stopping) {
        this.#logger.error({ err }, 'evaluation thread died: replaced');
        this.#threads[i] = this.#spawn();
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.#stopping) fail(new Error(`evaluation thread exited with code ${code}`));
    });
    worker.postMessage({ type: 'limits', ...this.#limits } satisfies ThreadMessage);
    worker.postMessage({ type: 'rules', definitions: this.#definitions } satisfies ThreadMessage);
    return thread;
  }

  /** Rules for every later evaluation. */
  setRules(definitions: readonly RuleDefinition[]): void {
    this.#definitions = definitions;
    for (const t of this.#threads) t.worker.postMessage({ type: 'rules', definitions } satisfies ThreadMessage);
  }

  /** Evaluates one trace (its OTLP payloads) on the least busy thread. */
  evaluate(payloads: readonly Uint8Array[], budgetMs: number): Promise<EvalResponse> {
    if (this.#threads.length === 0) return Promise.reject(new Error('evaluator pool is not running'));
    const id = this.#nextId++;
    return new Promise<EvalResponse>((resolve, reject) => this.#dispatch({ id, budgetMs, payloads, resolve, reject, attempts: 0, stalls: 0, stalledRuleIds: [] }));
  }

  /** Queues a request on the least busy thread (one that is over budget only when all are). */
  #dispatch(request: Request): void {
    let chosen: Thread | undefined;
    for (const t of this.#threads) {
      if (chosen === undefined || (chosen.overBudget && !t.overBudget) || (chosen.overBudget === t.overBudget && t.pending.size < chosen.pending.size)) chosen = t;
    }
    if (chosen === undefined) {
      request.reject(new Error('evaluator pool stopped'));
      return;
    }
    const thread = chosen;
    thread.pending.set(request.id, request);
    if (thread.queued.length === 0) queueMicrotask(() => this.#send(thread));
    thread.queued.push(request);
  }

  /**
   * Sends a thread what was queued for it, in one message. A payload in shared
   * memory (PayloadArena) is sent as where it lies; any other is copied into one
   * fresh buffer that is transferred, not cloned (a payload is often a view into
   * a much larger buffer that cloning would copy whole).
   */
  #send(thread: Thread): void {
    const queued = thread.queued;
    thread.queued = [];
    if (!this.#threads.includes(thread)) return; // stopped meanwhile: its pending evaluations were handed on or failed
    const slabs: SharedArrayBuffer[] = [];
    const slabIndex = new Map<SharedArrayBuffer, number>();
    const unshared: Uint8Array[] = [];
    let unsharedBytes = 0;
    let numbers = 0;
    for (const q of queued) numbers += 3 + 3 * q.payloads.length;
    const traces = new Float64Array(numbers);
    let n = 0;
    for (const q of queued) {
      traces[n++] = q.id;
      traces[n++] = q.budgetMs;
      traces[n++] = q.payloads.length;
      for (const p of q.payloads) {
        const buffer = p.buffer;
        if (buffer instanceof SharedArrayBuffer) {
          let index = slabIndex.get(buffer);
          if (index === undefined) {
            index = slabs.push(buffer) - 1;
            slabIndex.set(buffer, index);
          }
          traces[n++] = index;
          traces[n++] = p.byteOffset;
        } else {
          traces[n++] = -1;
          traces[n++] = unsharedBytes;
          unshared.push(p);
          unsharedBytes += p.length;
        }
        traces[n++] = p.length;
      }
    }
    const packed = Buffer.allocUnsafeSlow(unsharedBytes); // its own ArrayBuffer (transferable), every byte written below
    let at = 0;
    for (const p of unshared) {
      packed.set(p, at);
      at += p.length;
    }
    let excluded: Record<number, readonly string[]> | undefined;
    for (const q of queued) if (q.stalledRuleIds.length > 0) (excluded ??= {})[q.id] = q.stalledRuleIds;
    const batch = this.#nextBatch;
    this.#nextBatch = batch >= 0x7fffffff ? 1 : batch + 1;
    thread.sent.push({ number: batch, requests: queued, rules: this.#definitions });
    const message: ThreadMessage = { type: 'eval', batch, slabs, packed, traces, ...(excluded === undefined ? {} : { excluded }) };
    thread.worker.postMessage(message, [packed.buffer, traces.buffer]);
  }

  /** The watchdog's tick: stops every thread stuck on one trace past its budget + margin. */
  #watch(): void {
    const now = performance.now();
    for (const thread of [...this.#threads]) {
      const batch = thread.sent[0];
      if (batch === undefined) continue;
      const at = thread.progress.read();
      // Not on the batch yet: a new thread still loading, or compiling rules, or reading the message
      // (all bounded, and a replacement would have to do the same): no deadline.
      if (at.batch !== batch.number) {
        thread.seen = undefined;
        continue;
      }
      const position = at.position;
      if (position === Progress.POSITION_DONE) continue; // its results are on their way
      if (thread.seen === undefined || thread.seen.batch !== batch.number || thread.seen.position !== position) {
        thread.seen = { batch: batch.number, position, since: now };
        thread.overBudget = false;
        continue;
      }
      const request = batch.requests[position];
      const budgetMs = request?.budgetMs ?? 0;
      const elapsed = now - thread.seen.since;
      thread.overBudget = elapsed > budgetMs;
      if (elapsed > budgetMs + this.#marginMs) this.#stop(thread, batch, request, batch.rules[at.rule]?.id, elapsed);
    }
  }

  /**
   * Terminates a stuck thread and replaces it; its trace is evaluated again without the
   * rule it was stuck in (answered without evaluation when it was in none), its other
   * traces are handed on.
   */
  #stop(thread: Thread, batch: Batch, request: Request | undefined, ruleId: string | undefined, elapsedMs: number): void {
    const i = this.#threads.indexOf(thread);
    if (i < 0) return;
    this.#threads[i] = this.#spawn();
    void thread.worker.terminate();
    this.#logger.warn(
      { ruleId: ruleId ?? null, elapsedMs: Math.round(elapsedMs), budgetMs: request?.budgetMs ?? null, marginMs: this.#marginMs, batch: batch.number },
      ruleId === undefined
        ? 'evaluation thread stuck past the evaluation budget (not in a rule): stopped and replaced'
        : `evaluation thread stuck in rule ${ruleId} past the evaluation budget: stopped and replaced; the trace is evaluated again without it`,
    );
    const held = [...thread.pending.values()];
    thread.pending.clear();
    for (const r of held) {
      if (r === request) {
        r.stalls++;
        if (ruleId !== undefined) r.stalledRuleIds.push(ruleId);
      }
      if (r === request && ruleId === undefined) this.#answerUnevaluated(r, elapsedMs);
      else if (++r.attempts >= MAX_ATTEMPTS) {
        if (r.stalls > 0) this.#answerUnevaluated(r, elapsedMs);
        else r.reject(new Error(`evaluation threads holding this trace were stopped ${r.attempts} times`));
      } else this.#dispatch(r);
    }
  }

  /** Answers a trace that threads were stopped on, without evaluating it further. */
  #answerUnevaluated(r: Request, elapsedMs: number): void {
    r.resolve({
      id: r.id,
      violations: [],
      spansIn: 0,
      uniqueSpans: 0,
      undecodable: 0,
      budgetExceededRuleIds: [...r.stalledRuleIds],
      stalls: r.stalls,
      stalledRuleIds: r.stalledRuleIds,
      failedRuleIds: [],
      seconds: elapsedMs / 1000,
      droppedAttributes: 0,
      truncatedValues: 0,
    });
  }

  get pending(): number {
    let n = 0;
    for (const t of this.#threads) n += t.pending.size;
    return n;
  }

  /** Threads stop at once, even one busy in a rule (Worker.terminate interrupts running JavaScript); pending evaluations fail. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#watchdog);
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((t) => t.worker.terminate()));
    for (const t of threads) for (const p of t.pending.values()) p.reject(new Error('evaluator pool stopped'));
  }
}
