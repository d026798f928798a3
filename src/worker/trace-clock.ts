/**
 * The clocks trace assembly runs on (LiveTraces reads one). Two readings:
 * `now`, the time a trace's maximum duration is measured on, and `idleNow`, the
 * time its idle timeouts are measured on, which may stand still.
 *
 * - PausableClock (the worker): wall time, and an idle clock that stops while
 *   the worker is paused (spans are then waiting in the transport, not absent).
 * - EventClock (replay): event time, moved forward by the records read; both
 *   readings are the highest event time seen, so a history read in minutes cuts
 *   its traces where the same spans arriving live would have been cut.
 *
 * Neither goes back: the cuts rely on it (a trace's deadlines are kept in the
 * order its appends were made).
 */
export interface TraceClock {
  /** Wall or event time, ms. */
  now(): number;
  /** The idle clock, ms: never ahead of `now`'s progress, it may stand still. */
  idleNow(): number;
}

/** Wall time with an idle clock that stops while paused. */
export class PausableClock implements TraceClock {
  readonly #wall: () => number;
  #pausedTotalMs = 0;
  #pausedSince: number | undefined;

  constructor(wall: () => number = Date.now) {
    this.#wall = wall;
  }

  get paused(): boolean {
    return this.#pausedSince !== undefined;
  }

  now(): number {
    return this.#wall();
  }

  idleNow(): number {
    return (this.#pausedSince ?? this.#wall()) - this.#pausedTotalMs;
  }

  /** Stops the idle clock (idempotent). */
  pause(): void {
    this.#pausedSince ??= this.#wall();
  }

  /** Starts the idle clock again where it stopped (idempotent). */
  resume(): void {
    if (this.#pausedSince === undefined) return;
    this.#pausedTotalMs += this.#wall() - this.#pausedSince;
    this.#pausedSince = undefined;
  }
}

/** Event time: the highest event time seen so far (-Infinity before the first). */
export class EventClock implements TraceClock {
  #ms = -Infinity;

  now(): number {
    return this.#ms;
  }

  idleNow(): number {
    return this.#ms;
  }

  /** An event at `ms` was read: the clock moves to it unless it is already later. */
  observe(ms: number): void {
    if (ms > this.#ms) this.#ms = ms;
  }
}
