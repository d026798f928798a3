/**
 * The one interface of the export path. A request is a few entries sent downstream as one
 * OTLP/gRPC call (their ExportTraceServiceRequest bytes concatenated). Each wrapper between
 * the batcher and downstream is an ExportSender that adds one thing and hands the request on:
 * the splitter (a refused request sent apart), retry (a retryable answer sent again) and the
 * request sender (the call itself). The batcher settles what comes back (settle.ts).
 */
import type { SendResult } from './otlp-grpc-sender.ts';

export interface ExportItem {
  /** ExportTraceServiceRequest protobuf. */
  readonly payload: Uint8Array;
  readonly spanCount: number;
  /**
   * Called once: true when downstream acknowledged it, false when it was dropped. `abandoned`:
   * given up at shutdown (abandon()), neither refused nor out of retries: with keepAbandoned the
   * caller leaves it for another reader (it is not counted as dropped).
   */
  readonly onDone?: (delivered: boolean, abandoned?: boolean) => void;
}

export interface ExportRequest {
  readonly items: readonly ExportItem[];
  readonly spans: number;
}

export function exportRequest(items: readonly ExportItem[]): ExportRequest {
  return { items, spans: items.reduce((n, i) => n + i.spanCount, 0) };
}

/** Given up at shutdown (the signal aborted): neither delivered nor refused. */
export const ABANDONED = { status: 'abandoned' } as const;

/** A request the splitter sent apart: what became of each part. */
export interface SentApart {
  readonly status: 'split';
  readonly parts: ReadonlyArray<readonly [ExportRequest, ExportResult]>;
}

/** What became of a request: downstream's last answer for it, abandoned, or its parts' results. */
export type ExportResult = SendResult | typeof ABANDONED | SentApart;

export interface ExportSender {
  /**
   * Sends `request` downstream; resolves, never rejects, with what became of it. Once `signal`
   * is aborted (abandon() at the shutdown deadline) nothing more is sent or waited for: it
   * resolves at once with ABANDONED.
   */
  send(request: ExportRequest, signal: AbortSignal): Promise<ExportResult>;
}

/** `promise`'s value, or ABANDONED as soon as `signal` aborts; no listener outlives the call. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABANDONED> {
  if (signal.aborted) return Promise.resolve(ABANDONED);
  return new Promise<T | typeof ABANDONED>((resolve, reject) => {
    const wake = () => resolve(ABANDONED);
    signal.addEventListener('abort', wake, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', wake);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', wake);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
