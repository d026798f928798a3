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
 */
import net from 'node:net';
import tls from 'node:tls';
import type { ISocketFactory } from 'kafkajs';

/** Responses at least this large are put in shared memory. */
export const SHARED_FRAME_BYTES = 64 * 1024;
const READ_BUFFER_BYTES = 64 * 1024;
const KEEP_ALIVE_DELAY_MS = 60_000;

/**
 * Cuts a byte stream into Kafka responses (a 4-byte big-endian length, then
 * that many bytes) and passes each on whole, length prefix included.
 */
export class FrameAssembler {
  readonly #onFrame: (frame: Buffer) => void;
  readonly #header = Buffer.alloc(4);
  #headerFill = 0;
  #frame: Buffer | undefined;
  #fill = 0;

  constructor(onFrame: (frame: Buffer) => void) {
    this.#onFrame = onFrame;
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
        frame = total >= SHARED_FRAME_BYTES ? Buffer.from(new SharedArrayBuffer(total)) : Buffer.allocUnsafe(total);
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
 */
export function framedSocketFactory(): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    let socket: net.Socket | undefined = undefined;
    const assembler = new FrameAssembler((frame) => socket!.emit('data', frame));
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
    return socket;
  };
}
