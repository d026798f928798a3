/**
 * The one list of a process's components, each with the shutdown phase it belongs to.
 *
 * start() starts them in the order they were added (the builders add them downstream-first:
 * topics and stores, evaluation threads, exporters, consumers, then the receivers), and stops
 * at the first failure after shutting down what started (the failed one included: shutdown is
 * safe on a partial start). shutdown() stops what started phase by phase, in SHUTDOWN_PHASES
 * order, and within a phase in the reverse of start order.
 */
import type { Component } from '../component.ts';
import type { Logger } from '../telemetry/logger.ts';

/**
 * In shutdown order: intake stops taking spans; consumers and workers drain what was taken
 * (their final commits come after the exporters they use flushed); the exporters, already
 * flushed, close; the stores close after nothing writes to them; the admin API, which answers
 * /ready (unready from the first step) to the end, last.
 */
export const SHUTDOWN_PHASES = ['intake', 'consumers', 'exporters', 'stores', 'api'] as const;
export type Phase = (typeof SHUTDOWN_PHASES)[number];

export interface Part {
  /** Said in the debug lines of start and shutdown. */
  readonly name: string;
  readonly phase: Phase;
  readonly component: Component;
}

export class Lifecycle {
  readonly #parts: Part[] = [];
  readonly #started: Part[] = [];
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Appends a part: it starts after every part added before it. */
  add(name: string, phase: Phase, component: Component): void {
    this.#parts.push({ name, phase, component });
  }

  /** True while some part has started and not been shut down. */
  get running(): boolean {
    return this.#started.length > 0;
  }

  /** `shutdownAfterFailure`: how a failed start shuts down what started (default shutdown()). */
  async start(shutdownAfterFailure: () => Promise<void> = () => this.shutdown()): Promise<void> {
    for (const part of this.#parts) {
      this.#started.push(part);
      try {
        await part.component.start();
      } catch (err) {
        await shutdownAfterFailure().catch((e: unknown) => this.#logger.error({ err: e }, 'shutdown after a failed start failed'));
        throw err;
      }
    }
  }

  async shutdown(): Promise<void> {
    const started = this.#started.splice(0);
    const reversed = [...started].reverse();
    for (const phase of SHUTDOWN_PHASES) {
      for (const part of reversed) {
        if (part.phase !== phase) continue;
        this.#logger.debug({ component: part.name, phase }, 'stopping');
        await part.component.shutdown();
      }
    }
  }
}

/** A component that only stops (started elsewhere, or with nothing to start). */
export function onShutdown(shutdown: () => Promise<void>): Component {
  return { start: () => Promise.resolve(), shutdown };
}

/** `f` run once; later calls get the first call's promise. */
export function once(f: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= f());
}
