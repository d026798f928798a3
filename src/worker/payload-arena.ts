/**
 * Where a worker keeps the payloads of the traces it assembles that are not in
 * shared memory already: copied, as they arrive, into SharedArrayBuffer slabs,
 * which the evaluation threads read in place.
 *
 * Records from Kafka arrive in shared memory (kafka-socket.ts) and are kept as
 * they are. Others (the embedded transport's: views into the export request
 * they came in; Kafka records of compressed batches) are copied here: a trace
 * window keeps a payload for seconds (idle timeout, then the late-span grace),
 * and a view would keep its whole buffer alive meanwhile; an evaluation would
 * also have to copy it again to hand it to a thread. V8 does not count shared
 * memory as external memory pressure, so what the windows keep does not force
 * full garbage collections either.
 *
 * A slab is freed by the garbage collector once no payload in it is referenced;
 * the evaluation threads hold one only while they evaluate from it.
 */

/** Payloads larger than this share no slab: they get a buffer of their own. */
const OWN_BUFFER_BYTES = 256 * 1024;

export class PayloadArena {
  readonly #slabBytes: number;
  #slab: SharedArrayBuffer | undefined;
  #used = 0;

  constructor(slabBytes = 2 * 1024 * 1024) {
    this.#slabBytes = slabBytes;
  }

  /** A copy of `payload` in shared memory. */
  copy(payload: Uint8Array): Uint8Array {
    const n = payload.length;
    if (n > OWN_BUFFER_BYTES || n > this.#slabBytes) {
      const own = new Uint8Array(new SharedArrayBuffer(n));
      own.set(payload);
      return own;
    }
    if (this.#slab === undefined || this.#used + n > this.#slabBytes) {
      this.#slab = new SharedArrayBuffer(this.#slabBytes);
      this.#used = 0;
    }
    const view = new Uint8Array(this.#slab, this.#used, n);
    view.set(payload);
    this.#used += n;
    return view;
  }
}
