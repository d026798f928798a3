/**
 * Settling entries: every entry handed to an exporter is settled exactly once, by its onDone:
 * delivered, dropped (counted in betrace_exporter_spans_dropped_total by reason and the gRPC
 * status downstream answered, and logged at a limited rate), or given up at shutdown.
 */
import type { RateLimitedLog } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { ExportItem, ExportRequest, ExportResult } from './export-sender.ts';

export interface SettlementOptions {
  readonly name: string;
  readonly metrics: Metrics;
  readonly log: RateLimitedLog;
  /**
   * What giving up at shutdown does: false, dropped and counted (reason `shutdown`); true, only
   * handed back (onDone(false, true)): with Kafka, left unacknowledged so that the partition's
   * next reader sends it.
   */
  readonly keepAbandoned: boolean;
}

export class Settlement {
  readonly #o: SettlementOptions;

  constructor(options: SettlementOptions) {
    this.#o = options;
  }

  /** Settles every entry of `request` as `result` says (each part of a split as its own result says). */
  settle(request: ExportRequest, result: ExportResult): void {
    switch (result.status) {
      case 'success':
        for (const item of request.items) item.onDone?.(true);
        return;
      case 'abandoned':
        this.giveUp(request.items, request.spans);
        return;
      case 'split':
        for (const [part, partResult] of result.parts) this.settle(part, partResult);
        return;
      case 'retryable':
      case 'failure': {
        const { items, spans } = request;
        const detail = { exporter: this.#o.name, spans, entries: items.length, code: result.code, error: result.error };
        this.#drop(items, spans, result.status === 'failure' ? 'rejected' : 'retries_exhausted', result.code, detail);
        return;
      }
    }
  }

  /** An entry the queue has no room for. */
  queueFull(item: ExportItem, queuedSpans: number): void {
    this.#o.metrics.exporterSpansDropped.inc({ exporter: this.#o.name, reason: 'queue_full' }, item.spanCount);
    this.#o.log.warn('queue_full', { exporter: this.#o.name, queuedSpans }, 'export queue full: spans dropped');
    item.onDone?.(false);
  }

  /** Hands back what abandon() gave up: counted as dropped (reason shutdown) unless keepAbandoned. */
  giveUp(items: readonly ExportItem[], spans: number): void {
    if (!this.#o.keepAbandoned) this.#o.metrics.exporterSpansDropped.inc({ exporter: this.#o.name, reason: 'shutdown' }, spans);
    for (const item of items) item.onDone?.(false, true);
  }

  #drop(items: readonly ExportItem[], spans: number, reason: 'rejected' | 'retries_exhausted', code: string | undefined, detail: Record<string, unknown>): void {
    const { metrics, name } = this.#o;
    metrics.exporterSpansDropped.inc(code === undefined ? { exporter: name, reason } : { exporter: name, reason, code }, spans);
    const message = reason === 'rejected' ? 'export refused (not retryable): spans dropped' : 'export failed: retries exhausted, spans dropped';
    this.#o.log.warn(`${reason}:${code ?? ''}`, detail, message);
    for (const item of items) item.onDone?.(false);
  }
}
