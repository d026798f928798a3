/**
 * Tombstones: the ids of traces whose assembly is over (their late-span grace
 * ended; in replay, evaluated), so that a span arriving later still is counted
 * instead of mistaken for the first span of a new trace. Bounded: past `max`
 * the id marked longest ago is forgotten (marking an id again renews it).
 * Used by the worker's GraceCache and by replay.
 */
export class Tombstones {
  readonly #max: number;
  /** In order of marking. */
  readonly #ids = new Set<string>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#ids.size;
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  mark(id: string): void {
    this.#ids.delete(id);
    this.#ids.add(id);
    if (this.#ids.size > this.#max) {
      const oldest = this.#ids.values().next().value;
      if (oldest !== undefined) this.#ids.delete(oldest);
    }
  }
}
