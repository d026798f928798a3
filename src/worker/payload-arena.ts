/**
 * Where a worker keeps the payloads of the traces it assembles: copied, as they
 * arrive, into slabs of shared memory (SharedArrayBuffer) that the evaluation
 * threads read in place, and that are used again once every payload in them
 * was released.
 *
 * Why a copy at arrival: a payload as consumed is a view into a buffer it does
 * not own (a whole Kafka fetch response, or the export request it came in),
 * and a trace window keeps it for seconds (idle timeout, then the late-span
 * grace). Kept as a view it would keep that whole buffer alive, and each
 * evaluation would copy it again to hand it to a thread. Copied here, those
 * buffers are garbage at once, and an evaluation sends only where its payloads
 * lie.
 *
 * Why slabs used again: memory the kernel hands out fresh is zeroed on first
 * touch, page by page (at about 400 bytes a span, that was a tenth of a
 * worker's CPU time), while a slab used again is already there. And V8 does not
 * count shared memory when it decides to collect garbage, so slabs left to the
 * collector could pile up unseen; here they return as soon as their payloads
 * are released, and at most `maxFreeSlabs` wait unused.
 *
 * Contract: every payload copied is released exactly once, after its last use
 * (evaluations included). A second release of the same payload is ignored; one
 * never released only keeps its slab from being used again (the collector then
 * frees it once nothing refers to it).
 */

interface Slab {
  readonly buffer: SharedArrayBuffer;
  /** Payloads in it not released yet. */
  live: number;
  /** Slabs of the arena's own size go back to the pool; larger payloads get a slab of their own. */
  readonly pooled: boolean;
}

export interface PayloadArenaOptions {
  /** Bytes per slab (default 512 KiB); a payload larger than a quarter of it gets a slab of its own. */
  readonly slabBytes?: number;
  /** Empty slabs kept for use again (default 64); more are left to the garbage collector. */
  readonly maxFreeSlabs?: number;
}

export class PayloadArena {
  readonly #slabBytes: number;
  readonly #maxFreeSlabs: number;
  readonly #slabs = new WeakMap<ArrayBufferLike, Slab>();
  readonly #released = new WeakSet<Uint8Array>();
  readonly #free: Slab[] = [];
  #current: Slab | undefined;
  #used = 0;
  #bytes = 0;

  constructor(options: PayloadArenaOptions = {}) {
    this.#slabBytes = options.slabBytes ?? 512 * 1024;
    this.#maxFreeSlabs = options.maxFreeSlabs ?? 64;
  }

  /** Bytes of shared memory the arena holds (slabs in use and free ones). */
  get bytes(): number {
    return this.#bytes;
  }

  /** A copy of `payload` in shared memory; release() it once it is no longer used. */
  copy(payload: Uint8Array): Uint8Array {
    const n = payload.length;
    if (n > this.#slabBytes / 4) {
      const own = this.#newSlab(n, false);
      own.live = 1;
      const view = new Uint8Array(own.buffer);
      view.set(payload);
      return view;
    }
    let slab = this.#current;
    if (slab === undefined || this.#used + n > this.#slabBytes) {
      if (slab !== undefined) this.#retire(slab);
      slab = this.#free.pop() ?? this.#newSlab(this.#slabBytes, true);
      this.#current = slab;
      this.#used = 0;
    }
    const view = new Uint8Array(slab.buffer, this.#used, n);
    view.set(payload);
    this.#used += n;
    slab.live++;
    return view;
  }

  /** The payload (a copy() result) is no longer used: its slab may be used again. */
  release(payload: Uint8Array): void {
    const slab = this.#slabs.get(payload.buffer);
    if (slab === undefined || this.#released.has(payload)) return;
    this.#released.add(payload);
    slab.live--;
    if (slab !== this.#current) this.#retire(slab);
  }

  #newSlab(bytes: number, pooled: boolean): Slab {
    const slab: Slab = { buffer: new SharedArrayBuffer(bytes), live: 0, pooled };
    this.#slabs.set(slab.buffer, slab);
    this.#bytes += bytes;
    return slab;
  }

  /** A slab no longer written to: free once its last payload is released. */
  #retire(slab: Slab): void {
    if (slab.live > 0) return;
    if (slab.pooled && this.#free.length < this.#maxFreeSlabs) {
      this.#free.push(slab);
      return;
    }
    this.#slabs.delete(slab.buffer);
    this.#bytes -= slab.buffer.byteLength;
  }
}
