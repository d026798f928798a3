/**
 * Low-watermark commits: per partition, the offsets handed out and not yet
 * done. The committable position is the lowest offset still pending (or one past
 * the highest seen when none is), so a commit never passes a record that some
 * stage still needs.
 *
 * A worker holds every record of its traces until their grace period ends (half
 * a minute), hundreds of thousands of them: per partition they lie in two typed
 * arrays in offset order (records are handed out in that order), found by binary
 * search, the pending region starting at the lowest offset still held. No object
 * per record (a Map keyed by BigInt offsets was a few percent of a worker's time
 * in hashing alone, and more in garbage collection), and the committable offset
 * is read, not searched for. Offsets are kept as numbers: exact below 2^53.
 */
class PartitionOffsets {
  offsets = new Float64Array(1024);
  /** Holds not yet released, per offset; 0: done (left in place until the region's start passes it). */
  counts = new Int32Array(1024);
  /** The pending region: [head, tail); counts[head] > 0 whenever head < tail. */
  head = 0;
  tail = 0;
  /** One past the highest offset seen. */
  next = 0;

  /** Index of `offset` in the region, or -(insertion point) - 1. */
  find(offset: number): number {
    const offsets = this.offsets;
    let lo = this.head;
    let hi = this.tail;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = offsets[mid]!;
      if (v < offset) lo = mid + 1;
      else if (v > offset) hi = mid;
      else return mid;
    }
    return -lo - 1;
  }

  hold(offset: number, holds: number): void {
    if (offset + 1 > this.next) this.next = offset + 1;
    if (this.head === this.tail) this.head = this.tail = 0;
    else if (offset <= this.offsets[this.tail - 1]!) {
      const at = this.find(offset);
      if (at >= 0) this.counts[at]! += holds;
      else this.#insert(-at - 1, offset, holds);
      if (this.counts[this.head] === 0) this.#advance();
      return;
    }
    this.#insert(this.tail, offset, holds);
  }

  release(offset: number): void {
    if (this.head === this.tail) return;
    const at = this.find(offset);
    if (at < 0 || this.counts[at] === 0) return;
    this.counts[at]!--;
    if (at === this.head && this.counts[at] === 0) this.#advance();
  }

  committable(): number {
    return this.head < this.tail ? this.offsets[this.head]! : this.next;
  }

  #advance(): void {
    const counts = this.counts;
    let h = this.head;
    while (h < this.tail && counts[h] === 0) h++;
    this.head = h;
  }

  /** Puts (offset, holds) at index `at` of the region, making room first. */
  #insert(at: number, offset: number, holds: number): void {
    if (this.tail === this.offsets.length) {
      const live = this.tail - this.head;
      if (live * 2 <= this.offsets.length) {
        // Room at the front: slide the region back to 0.
        this.offsets.copyWithin(0, this.head, this.tail);
        this.counts.copyWithin(0, this.head, this.tail);
      } else {
        const offsets = new Float64Array(this.offsets.length * 2);
        const counts = new Int32Array(this.offsets.length * 2);
        offsets.set(this.offsets.subarray(this.head, this.tail));
        counts.set(this.counts.subarray(this.head, this.tail));
        this.offsets = offsets;
        this.counts = counts;
      }
      at -= this.head;
      this.head = 0;
      this.tail = live;
    }
    if (at < this.tail) {
      // An offset below the highest pending one (seldom): shift the rest up.
      this.offsets.copyWithin(at + 1, at, this.tail);
      this.counts.copyWithin(at + 1, at, this.tail);
    }
    this.offsets[at] = offset;
    this.counts[at] = holds;
    this.tail++;
  }
}

export class OffsetTracker {
  readonly #partitions = new Map<number, PartitionOffsets>();

  /** A record of the partition was received; `holds` stages must release it. */
  hold(partition: number, offset: bigint | number, holds = 1): void {
    let p = this.#partitions.get(partition);
    if (p === undefined) {
      p = new PartitionOffsets();
      this.#partitions.set(partition, p);
    }
    p.hold(Number(offset), holds);
  }

  release(partition: number, offset: bigint | number): void {
    this.#partitions.get(partition)?.release(Number(offset));
  }

  /** The offset to commit for the partition, or undefined when nothing was seen. */
  committable(partition: number): bigint | undefined {
    const p = this.#partitions.get(partition);
    return p === undefined ? undefined : BigInt(p.committable());
  }

  /** Forgets partitions no longer owned. */
  forget(partition: number): void {
    this.#partitions.delete(partition);
  }

  partitions(): number[] {
    return [...this.#partitions.keys()];
  }
}
