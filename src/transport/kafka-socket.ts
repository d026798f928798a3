/**
 * The sockets betrace's Kafka clients talk through: each Kafka response is
 * handed to kafkajs whole, in one buffer, and a large one in shared memory.
 *
 * kafkajs left alone receives a response as the socket's 64 KiB chunks (each a
 * fresh allocation), keeps them, and joins them into a fresh buffer once the
 * last arrives (Buffer.concat): a fetch response of several MiB was copied twice
 * into new memory. Here the socket reads into one buffer of its own (`onread`),
 * and the bytes of a response are copied once, into a buffer sized from its
 * length prefix; kafkajs then decodes it without joining anything (see
 * kafkajs.ts, which drops the empty remainder kafkajs would otherwise join it
 * with).
 *
 * A response of SHARED_FRAME_BYTES or more is put in a SharedArrayBuffer: V8
 * counts ordinary buffers as external memory and starts a full garbage
 * collection for each 64 MiB more of it held, and fetch responses (several MiB
 * each, alive while kafkajs hands their records over, often long enough to
 * outlive a young-generation collection) made a worker run several more of
 * them. Shared memory is not counted. Nothing keeps a response for long: a
 * worker copies the payloads it keeps into its own arena (worker/payload-arena.ts).
 *
 * A consumer that copies what it keeps (the worker) gets its fetch responses in
 * memory used again (FetchFrames): memory the kernel hands out fresh is zeroed
 * on first touch, page by page, and a fresh frame for each fetch response was
 * about a fifth of a worker's I/O thread. That memory is ordinary, not shared:
 * allocated once and kept, it adds nothing to V8's count after its first use,
 * and V8 copies into and out of shared memory with relaxed atomic writes (a
 * byte at a time unless both sides are equally aligned), so the copy of each
 * socket read into shared frames was 2% of a worker's CPU time.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { ISocketFactory } from 'kafkajs';

/** Responses at least this large are put in shared memory (or in FetchFrames' memory used again). */
export const SHARED_FRAME_BYTES = 64 * 1024;
const READ_BUFFER_BYTES = 64 * 1024;
const KEEP_ALIVE_DELAY_MS = 60_000;
/** Kafka's api key of Fetch requests. */
const FETCH_API_KEY = 1;
/** FetchFrames' buffers are of whole MiB. */
const FRAME_CAPACITY_STEP = 1024 * 1024;
/**
 * BETRACE_POISON_REUSED_FRAMES=1 (tests) overwrites a frame when it is given
 * back: a read of it after that finds garbage, not plausible stale records.
 */
const POISON = process.env.BETRACE_POISON_REUSED_FRAMES === '1';

/**
 * Fetch responses' frames used again, for a consumer that copies every payload
 * it keeps before its batch handler returns.
 *
 * When kafkajs is done with a fetch response: its fetcher for a broker sends the
 * next Fetch request only once every batch of the previous response was handled
 * (fetcher.js: `await workerQueue.push(...batches)`, then `fetch()` again), and
 * one connection carries one fetcher's requests. So a fetch response's frame is
 * given back when the next Fetch request is written to the same socket. Frames
 * of other responses (metadata, group coordination) are never given back; a
 * socket that closes gives back nothing (kafkajs may still hold its last
 * response).
 */
export class FetchFrames {
  readonly #free: ArrayBuffer[] = [];
  /** The buffers take() made: only those come back through give(). */
  readonly #own = new WeakSet<ArrayBufferLike>();
  readonly #maxFree: number;

  constructor(maxFree = 4) {
    this.#maxFree = maxFree;
  }

  /** Free buffers waiting for use (for tests and gauges). */
  get free(): number {
    return this.#free.length;
  }

  /** A frame of `total` bytes, in a buffer given back if one is large enough. */
  take(total: number): Buffer {
    const free = this.#free;
    let best = -1;
    for (let i = 0; i < free.length; i++) {
      const n = free[i]!.byteLength;
      if (n >= total && (best < 0 || n < free[best]!.byteLength)) best = i;
    }
    if (best >= 0) {
      const buffer = free[best]!;
      free[best] = free[free.length - 1]!;
      free.pop();
      return Buffer.from(buffer, 0, total);
    }
    const buffer = Buffer.allocUnsafeSlow(Math.ceil(total / FRAME_CAPACITY_STEP) * FRAME_CAPACITY_STEP).buffer;
    this.#own.add(buffer);
    return Buffer.from(buffer, 0, total);
  }

  /** The frame (a take() result) is read no more. */
  give(frame: Buffer): void {
    const buffer = frame.buffer;
    if (!this.#own.has(buffer)) return;
    if (POISON) frame.fill(0xee);
    const free = this.#free;
    if (free.length < this.#maxFree) {
      free.push(buffer as ArrayBuffer);
      return;
    }
    // Full: keep the larger buffers.
    let smallest = 0;
    for (let i = 1; i < free.length; i++) if (free[i]!.byteLength < free[smallest]!.byteLength) smallest = i;
    if (free[smallest]!.byteLength < buffer.byteLength) free[smallest] = buffer as ArrayBuffer;
  }
}

/**
 * One socket's bookkeeping for FetchFrames: which requests written were
 * Fetch requests (by correlation id), which fetch responses were handed over
 * since the last Fetch request.
 */
export class FetchFrameTracker {
  readonly #frames: FetchFrames;
  readonly #fetches = new Set<number>();
  #handedOver: Buffer[] = [];

  constructor(frames: FetchFrames) {
    this.#frames = frames;
  }

  /** A request is written (kafkajs writes each whole: size, api key, version, correlation id, ...). */
  written(request: Uint8Array): void {
    if (request.length < 12) return;
    if (((request[4]! << 8) | request[5]!) !== FETCH_API_KEY) return;
    for (const f of this.#handedOver) this.#frames.give(f);
    this.#handedOver = [];
    this.#fetches.add(((request[8]! << 24) | (request[9]! << 16) | (request[10]! << 8) | request[11]!) | 0);
  }

  /** A frame (from `frames`) is handed to kafkajs: kept for giving back if it answers a Fetch request. */
  handedOver(frame: Buffer): void {
    if (frame.length < 8) return;
    const correlationId = frame.readInt32BE(4);
    if (this.#fetches.delete(correlationId)) this.#handedOver.push(frame);
  }
}

/**
 * Cuts a byte stream into Kafka responses (a 4-byte big-endian length, then
 * that many bytes) and passes each on whole, length prefix included.
 */
export class FrameAssembler {
  readonly #onFrame: (frame: Buffer) => void;
  readonly #frames: FetchFrames | undefined;
  readonly #header = Buffer.alloc(4);
  #headerFill = 0;
  #frame: Buffer | undefined;
  #fill = 0;

  /** `frames`: where large frames come from (default: fresh shared memory each). */
  constructor(onFrame: (frame: Buffer) => void, frames?: FetchFrames) {
    this.#onFrame = onFrame;
    this.#frames = frames;
  }

  /** Takes the bytes of `chunk` (copied: the caller may reuse it at once). */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let at = 0;
    while (at < n) {
      let frame = this.#frame;
      if (frame === undefined) {
        const take = Math.min(4 - this.#headerFill, n - at);
        this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill < 4) return;
        this.#headerFill = 0;
        const size = this.#header.readInt32BE(0);
        // A negative length is no Kafka response: kafkajs gets the bytes as they come and fails on them.
        const total = 4 + Math.max(0, size);
        if (total < SHARED_FRAME_BYTES) frame = Buffer.allocUnsafe(total);
        else frame = this.#frames !== undefined ? this.#frames.take(total) : Buffer.from(new SharedArrayBuffer(total));
        frame.set(this.#header, 0);
        this.#frame = frame;
        this.#fill = 4;
      }
      const take = Math.min(frame.length - this.#fill, n - at);
      frame.set(chunk.subarray(at, at + take), this.#fill);
      this.#fill += take;
      at += take;
      if (this.#fill === frame.length) {
        this.#frame = undefined;
        this.#onFrame(frame);
      }
    }
  }
}

/**
 * kafkajs `socketFactory`: a plain or TLS socket (as kafkajs's own factory makes
 * them) whose 'data' events carry whole responses. Not for SASL, whose
 * handshake may answer with bytes that are no length-prefixed response.
 * `reuseFetchFrames`: fetch responses come in memory used again (FetchFrames),
 * only for clients whose consumers copy every payload they keep.
 */
export function framedSocketFactory(options: { reuseFetchFrames?: boolean } = {}): ISocketFactory {
  const frames = options.reuseFetchFrames === true ? new FetchFrames() : undefined;
  return ({ host, port, ssl, onConnect }) => {
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    let socket: net.Socket | undefined = undefined;
    const tracker = frames === undefined ? undefined : new FetchFrameTracker(frames);
    const assembler = new FrameAssembler((frame) => {
      tracker?.handedOver(frame);
      socket!.emit('data', frame);
    }, frames);
    const onread = {
      buffer: readBuffer,
      callback: (bytes: number, buffer: Uint8Array): boolean => {
        assembler.push(buffer.subarray(0, bytes));
        return true;
      },
    };
    // tls.connect takes `onread` as net.connect does (Node >= 12.17), though @types/node omits it.
    const tlsOptions: tls.ConnectionOptions & { onread: net.OnReadOpts } = { host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}), ...ssl, onread };
    socket = ssl ? tls.connect(tlsOptions, onConnect) : net.connect({ host, port, onread }, onConnect);
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
    if (tracker !== undefined) {
      const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
      socket.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
        if (chunk instanceof Uint8Array) tracker.written(chunk);
        return write(chunk, ...rest);
      });
    }
    return socket;
  };
}
