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
 * touch, page by page (a worker's payloads are mostly such memory), while a slab
 * used again is already there. And V8 does not
 * count shared memory when it decides to collect garbage, so slabs left to the
 * collector could pile up unseen; here they return as soon as their payloads
 * are released.
 *
 * Why empty slabs are kept for a while (`retainFreeMs`, default 60 s): the
 * memory a worker holds swings with its load (live traces, and the evaluated
 * ones kept for the late-span grace), and a slab given back at the bottom of a
 * swing is fresh memory again at the next peak: on a virtual machine each such
 * page also faults on the host. Kept, the next peak finds its slabs; slabs no
 * copy took for `retainFreeMs` are given back (trim(), from the worker's tick).
 * The arena holds no more than its busiest minute needed.
 *
 * Why a payload's copy starts at the same offset modulo 8 as the payload: V8
 * copies into shared memory with relaxed atomic writes, a machine word at a
 * time only when source and target are equally aligned and a byte at a time
 * otherwise, several times slower (measured in test/bench/README.md). It costs at most
 * 7 bytes a payload, large payloads in slabs of their own included.
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
  /** When it last became free (ms, the arena's clock). */
  freedAt: number;
  /** Slabs of the arena's own size go back to the pool; larger payloads get a slab of their own. */
  readonly pooled: boolean;
}

export interface PayloadArenaOptions {
  /** Bytes per slab (default 512 KiB); a payload larger than a quarter of it gets a slab of its own. */
  readonly slabBytes?: number;
  /** Empty slabs kept for use again at most (default: no bound but retainFreeMs); more are left to the garbage collector. */
  readonly maxFreeSlabs?: number;
  /** An empty slab no copy took for this long is left to the garbage collector at the next trim() (default 60 s). */
  readonly retainFreeMs?: number;
  readonly now?: () => number;
}

export class PayloadArena {
  readonly #slabBytes: number;
  readonly #maxFreeSlabs: number;
  readonly #retainFreeMs: number;
  readonly #now: () => number;
  readonly #slabs = new WeakMap<ArrayBufferLike, Slab>();
  readonly #released = new WeakSet<Uint8Array>();
  /** Empty slabs, the longest unused first: copy() takes the last (the one freed most recently). */
  readonly #free: Slab[] = [];
  #current: Slab | undefined;
  #used = 0;
  #bytes = 0;

  constructor(options: PayloadArenaOptions = {}) {
    this.#slabBytes = options.slabBytes ?? 512 * 1024;
    this.#maxFreeSlabs = options.maxFreeSlabs ?? Infinity;
    this.#retainFreeMs = options.retainFreeMs ?? 60_000;
    this.#now = options.now ?? (() => performance.now()); // monotonic: a wall clock stepping back would hold slabs
  }

  /** Empty slabs waiting for use. */
  get freeSlabs(): number {
    return this.#free.length;
  }

  /** Gives back the empty slabs no copy took for retainFreeMs. */
  trim(): void {
    const free = this.#free;
    const before = this.#now() - this.#retainFreeMs;
    let n = 0;
    while (n < free.length && free[n]!.freedAt <= before) n++;
    if (n === 0) return;
    for (const slab of free.splice(0, n)) this.#drop(slab);
  }

  /** Bytes of shared memory the arena holds (slabs in use and free ones). */
  get bytes(): number {
    return this.#bytes;
  }

  /** A copy of `payload` in shared memory; release() it once it is no longer used. */
  copy(payload: Uint8Array): Uint8Array {
    const n = payload.length;
    if (n > this.#slabBytes / 4) {
      const at = payload.byteOffset & 7;
      const own = this.#newSlab(at + n, false);
      own.live = 1;
      const view = new Uint8Array(own.buffer, at, n);
      view.set(payload);
      return view;
    }
    let slab = this.#current;
    let at = this.#used + ((payload.byteOffset - this.#used) & 7);
    if (slab === undefined || at + n > this.#slabBytes) {
      if (slab !== undefined) this.#retire(slab);
      slab = this.#free.pop() ?? this.#newSlab(this.#slabBytes, true);
      this.#current = slab;
      at = payload.byteOffset & 7;
    }
    const view = new Uint8Array(slab.buffer, at, n);
    view.set(payload);
    this.#used = at + n;
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
    const slab: Slab = { buffer: new SharedArrayBuffer(bytes), live: 0, freedAt: 0, pooled };
    this.#slabs.set(slab.buffer, slab);
    this.#bytes += bytes;
    return slab;
  }

  /** A slab no longer written to: free once its last payload is released. */
  #retire(slab: Slab): void {
    if (slab.live > 0) return;
    if (slab.pooled && this.#free.length < this.#maxFreeSlabs) {
      slab.freedAt = this.#now();
      this.#free.push(slab);
      return;
    }
    this.#drop(slab);
  }

  #drop(slab: Slab): void {
    this.#slabs.delete(slab.buffer);
    this.#bytes -= slab.buffer.byteLength;
  }
}
