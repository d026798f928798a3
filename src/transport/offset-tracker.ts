/**
 * Low-watermark commits: per partition, the offsets handed out and not yet
 * done. The committable position is the lowest offset still pending (or one past
 * the highest seen when none is), so a commit never passes a record that some
 * stage still needs.
 */
export class OffsetTracker {
  readonly #pending = new Map<number, Map<bigint, number>>();
  readonly #next = new Map<number, bigint>();

  /** A record of the partition was received; `holds` stages must release it. */
  hold(partition: number, offset: bigint, holds = 1): void {
    let p = this.#pending.get(partition);
    if (p === undefined) {
      p = new Map();
      this.#pending.set(partition, p);
    }
    p.set(offset, (p.get(offset) ?? 0) + holds);
    const next = this.#next.get(partition);
    if (next === undefined || offset + 1n > next) this.#next.set(partition, offset + 1n);
  }

  release(partition: number, offset: bigint): void {
    const p = this.#pending.get(partition);
    const n = p?.get(offset);
    if (p === undefined || n === undefined) return;
    if (n <= 1) p.delete(offset);
    else p.set(offset, n - 1);
  }

  /** The offset to commit for the partition, or undefined when nothing was seen. */
  committable(partition: number): bigint | undefined {
    const next = this.#next.get(partition);
    if (next === undefined) return undefined;
    const p = this.#pending.get(partition);
    let min = next;
    if (p !== undefined) for (const o of p.keys()) if (o < min) min = o;
    return min;
  }

  /** Forgets partitions no longer owned. */
  forget(partition: number): void {
    this.#pending.delete(partition);
    this.#next.delete(partition);
  }

  partitions(): number[] {
    return [...this.#next.keys()];
  }
}
