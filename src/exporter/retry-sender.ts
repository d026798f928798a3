/**
 * The retry wrapper: a request answered retryably is sent again after a backoff (exponential
 * from initialBackoffMs to maxBackoffMs, ±20 % jitter), or after the delay downstream asked for
 * in a google.rpc.RetryInfo when that is longer, while downstream.max_retry_time allows: a wait
 * that would end past it is not begun, and downstream's last answer is returned (the caller
 * drops the request as retries_exhausted).
 */
import type { RateLimitedLog } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { ABANDONED, untilAborted, type ExportRequest, type ExportResult, type ExportSender } from './export-sender.ts';

export interface RetrySenderOptions {
  readonly name: string;
  readonly next: ExportSender;
  /** How long one request is retried, from its first attempt. */
  readonly maxRetryTimeMs: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly metrics: Metrics;
  readonly log: RateLimitedLog;
}

export class RetrySender implements ExportSender {
  readonly #o: RetrySenderOptions;

  constructor(options: RetrySenderOptions) {
    this.#o = options;
  }

  async send(request: ExportRequest, signal: AbortSignal): Promise<ExportResult> {
    const { next, name, metrics, log, maxBackoffMs } = this.#o;
    const deadline = Date.now() + this.#o.maxRetryTimeMs;
    let backoff = this.#o.initialBackoffMs;
    for (;;) {
      const result = await next.send(request, signal);
      if (result.status !== 'retryable') return result;
      // At least what downstream asked for (RetryInfo), never less than the backoff.
      const wait = Math.max(result.retryAfterMs ?? 0, backoff * (0.8 + Math.random() * 0.4));
      if (Date.now() + wait > deadline) return result;
      const detail = { exporter: name, spans: request.spans, entries: request.items.length, code: result.code, error: result.error, backoffMs: Math.round(wait) };
      log.warn('retry', detail, 'export failed: retrying');
      metrics.exporterRetries.inc({ exporter: name });
      let timer: NodeJS.Timeout | undefined;
      const slept = await untilAborted(new Promise((r) => (timer = setTimeout(r, wait))), signal);
      clearTimeout(timer);
      if (slept === ABANDONED) return ABANDONED;
      backoff = Math.min(backoff * 2, maxBackoffMs);
    }
  }
}
