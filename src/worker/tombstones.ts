/**
 * Tombstones: the ids of traces whose assembly is over (their late-span grace
 * ended; in replay, evaluated), so that a span arriving later still is counted
 * instead of mistaken for the first span of a new trace. Bounded by generations:
 * the `max` ids marked most recently are always remembered, ids marked before
 * the latest 2 × `max` are forgotten (marking an id again renews it).
 *
 * Two sets rather than one set dropping its oldest entry: a JavaScript Set that
 * drops from its front keeps the deleted slots until it is rebuilt, and finding
 * the oldest entry walks them, so the cost of a mark grows with the ids seen.
 * Dropping a whole generation costs nothing per id.
 * Used by the worker's GraceCache and by replay.
 */
export class Tombstones {
  readonly #max: number;
  #current = new Set<string>();
  #previous = new Set<string>();

  constructor(max: number) {
    this.#max = Math.max(1, max);
  }

  /** Ids remembered now (between the latest `max` and 2 × `max`). */
  get size(): number {
    return this.#current.size + this.#previous.size;
  }

  has(id: string): boolean {
    return this.#current.has(id) || this.#previous.has(id);
  }

  mark(id: string): void {
    if (this.#current.has(id)) return;
    this.#previous.delete(id);
    this.#current.add(id);
    if (this.#current.size >= this.#max) {
      this.#previous = this.#current;
      this.#current = new Set();
    }
  }
}
