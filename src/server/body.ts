/** Request bodies read within a size limit, an idle timeout and (for the receiver) a shared byte budget. */
import type { IncomingMessage } from 'node:http';

/** A bound on bytes held at once (the receiver's bytes of requests still being received). */
export interface ByteBudget {
  /** Counts `bytes` unless that passes the bound (then nothing is counted). */
  tryTake(bytes: number): boolean;
  release(bytes: number): void;
}

export type BodyResult =
  | { readonly kind: 'ok'; readonly body: Buffer }
  /** Declared (Content-Length) or sent past the limit. */
  | { readonly kind: 'too_large' }
  /** The shared budget is spent: try again later (only with a budget). */
  | { readonly kind: 'busy' }
  /** No byte arrived for the read timeout. */
  | { readonly kind: 'timeout' }
  /** The client closed the connection before the end of the body. */
  | { readonly kind: 'aborted' };

interface BodyOptions {
  readonly limit: number;
  readonly idleTimeoutMs: number;
}

/**
 * Reads a request body, never allocating from what the client declared: refuses
 * a declared Content-Length over `limit` before reading, counts each chunk
 * against `budget` as it arrives (released when the body is complete or given
 * up), and gives up when no byte arrived for `idleTimeoutMs`. After 'busy' the
 * request is paused (the caller answers and closes the socket); after any other
 * result but 'ok' the rest of the body is discarded as it arrives, and the
 * caller answers with `Connection: close` (or closes the socket on 'timeout').
 */
export function readRequestBody(req: IncomingMessage, options: BodyOptions): Promise<Exclude<BodyResult, { kind: 'busy' }>>;
export function readRequestBody(req: IncomingMessage, options: BodyOptions & { readonly budget: ByteBudget | undefined }): Promise<BodyResult>;
export function readRequestBody(req: IncomingMessage, options: BodyOptions & { readonly budget?: ByteBudget | undefined }): Promise<BodyResult> {
  const { limit, idleTimeoutMs, budget } = options;
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.resolve({ kind: 'too_large' });
  }
  return new Promise<BodyResult>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      chunks.length = 0;
      budget?.release(size);
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), idleTimeoutMs);
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      timer.refresh();
      if (size + chunk.length > limit) return finish({ kind: 'too_large' });
      if (budget !== undefined && !budget.tryTake(chunk.length)) {
        // Refused bodies are not read on: what the client still sends stays in the kernel until the caller closes.
        req.pause();
        return finish({ kind: 'busy' });
      }
      size += chunk.length;
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      const body = Buffer.concat(chunks, size);
      finish({ kind: 'ok', body });
    });
    // 'error' (ECONNRESET "aborted") and 'close' before the end: the client went away.
    req.on('error', () => finish({ kind: 'aborted' }));
    req.on('close', () => {
      if (!req.complete) finish({ kind: 'aborted' });
    });
  });
}
