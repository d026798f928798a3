/**
 * A pool of evaluation threads (worker_threads). Evaluation never runs on the
 * I/O thread, so receiving, exporting and Kafka heartbeats are never starved by
 * a large trace or an expensive rule. A thread that dies is replaced; its
 * pending evaluations fail (the worker counts them and moves on).
 */
import { Worker } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Component } from '../component.ts';
import type { RuleDefinition } from '../rules/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { unpackViolations, type EvalResponse, type EvalResults, type ThreadMessage } from './evaluator-protocol.ts';

const threadFile = new URL(`./evaluator-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (r: EvalResponse) => void; reject: (e: Error) => void }>;
  /** Asked for in this turn of the event loop, sent at its end. */
  queued: Array<{ id: number; budgetMs: number; payloads: readonly Uint8Array[] }>;
}

export class EvaluatorPool implements Component {
  readonly #size: number;
  readonly #logger: Logger;
  #threads: Thread[] = [];
  #definitions: readonly RuleDefinition[] = [];
  #nextId = 1;
  #stopping = false;

  readonly #limits: { maxAttributesPerSpan: number; maxAttributeValueLength: number };

  constructor(options: { threads: number; logger: Logger; limits?: { maxAttributesPerSpan: number; maxAttributeValueLength: number } }) {
    this.#size = options.threads;
    this.#logger = options.logger;
    this.#limits = {
      maxAttributesPerSpan: options.limits?.maxAttributesPerSpan ?? Infinity,
      maxAttributeValueLength: options.limits?.maxAttributeValueLength ?? Infinity,
    };
  }

  start(): Promise<void> {
    if (this.#threads.length > 0) return Promise.resolve();
    this.#stopping = false;
    for (let i = 0; i < this.#size; i++) this.#threads.push(this.#spawn());
    return Promise.resolve();
  }

  #spawn(): Thread {
    const worker = new Worker(threadFile);
    worker.unref();
    const thread: Thread = { worker, pending: new Map(), queued: [] };
    worker.on('message', (msg: EvalResults) => {
      for (const r of msg.results) {
        const p = thread.pending.get(r.id);
        if (p === undefined) continue;
        thread.pending.delete(r.id);
        p.resolve({ ...r, violations: unpackViolations(r.violations, msg.rules) });
      }
    });
    const fail = (err: Error) => {
      for (const p of thread.pending.values()) p.reject(err);
      thread.pending.clear();
      const i = this.#threads.indexOf(thread);
      if (i >= 0 && !this.#stopping) {
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
    let thread = this.#threads[0];
    if (thread === undefined) return Promise.reject(new Error('evaluator pool is not running'));
    for (const t of this.#threads) if (t.pending.size < thread.pending.size) thread = t;
    const chosen = thread;
    const id = this.#nextId++;
    return new Promise<EvalResponse>((resolve, reject) => {
      chosen.pending.set(id, { resolve, reject });
      if (chosen.queued.length === 0) queueMicrotask(() => this.#send(chosen));
      chosen.queued.push({ id, budgetMs, payloads });
    });
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
    if (!this.#threads.includes(thread)) return; // died meanwhile: its pending evaluations were failed
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
    thread.worker.postMessage({ type: 'eval', slabs, packed, traces } satisfies ThreadMessage, [packed.buffer, traces.buffer]);
  }

  get pending(): number {
    let n = 0;
    for (const t of this.#threads) n += t.pending.size;
    return n;
  }

  async shutdown(): Promise<void> {
    this.#stopping = true;
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((t) => t.worker.terminate()));
    for (const t of threads) for (const p of t.pending.values()) p.reject(new Error('evaluator pool stopped'));
  }
}
