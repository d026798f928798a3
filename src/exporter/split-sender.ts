/**
 * The splitting wrapper: a merged request downstream refuses as not retryable, when the
 * refusal may concern what it holds, is sent again as two halves, recursively down to single
 * entries, so that only the entries downstream refuses are dropped (about 2·log2(n) requests
 * more per refused entry among n; none when nothing is refused). Its result is then the
 * result of each part (SentApart).
 *
 * A downstream that refuses whatever it is sent (broken, or refusing every request with a
 * status that could have been about the payload) would cost about two requests per entry:
 * after REFUSED_BATCHES_BEFORE_WHOLE_DROPS split requests in a row of which it took nothing,
 * refused requests are returned whole, and split again once per splitProbeIntervalMs to see
 * whether it takes some entries again.
 */
import type { Logger, RateLimitedLog } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { DownstreamState } from './downstream-state.ts';
import { exportRequest, type ExportRequest, type ExportResult, type ExportSender } from './export-sender.ts';

/** Split requests in a row whose every entry downstream refused before it is taken to refuse everything. */
const REFUSED_BATCHES_BEFORE_WHOLE_DROPS = 3;

export interface SplitSenderOptions {
  readonly name: string;
  readonly next: ExportSender;
  readonly splitProbeIntervalMs: number;
  readonly downstream: DownstreamState;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly log: RateLimitedLog;
}

/** What sending one request came to, across the parts of its splits. */
interface Outcome {
  delivered: number;
  split: boolean;
}

export class SplitSender implements ExportSender {
  readonly #o: SplitSenderOptions;
  /** Split requests in a row of which downstream took nothing. */
  #refusedBatches = 0;
  #lastSplitAt = 0;

  constructor(options: SplitSenderOptions) {
    this.#o = options;
  }

  async send(request: ExportRequest, signal: AbortSignal): Promise<ExportResult> {
    const refusingAll = this.#refusedBatches >= REFUSED_BATCHES_BEFORE_WHOLE_DROPS;
    const split = !refusingAll || Date.now() - this.#lastSplitAt >= this.#o.splitProbeIntervalMs;
    const outcome: Outcome = { delivered: 0, split: false };
    const result = await this.#send(request, signal, split, outcome);
    if (outcome.delivered > 0) {
      this.#refusedBatches = 0;
    } else if (outcome.split) {
      // Every entry refused: downstream takes nothing now.
      this.#o.downstream.notDelivering();
      if (++this.#refusedBatches === REFUSED_BATCHES_BEFORE_WHOLE_DROPS) {
        this.#o.logger.warn(
          { exporter: this.#o.name, batches: this.#refusedBatches },
          'downstream refused every entry of the last batches: refused batches are now dropped whole, split again now and then to check',
        );
      }
    }
    return result;
  }

  async #send(request: ExportRequest, signal: AbortSignal, split: boolean, outcome: Outcome): Promise<ExportResult> {
    const { name, metrics, log } = this.#o;
    const result = await this.#o.next.send(request, signal);
    if (result.status === 'success') outcome.delivered += request.items.length;
    if (result.status !== 'failure') return result;
    const { items } = request;
    if (result.payloadSpecific && split && items.length > 1) {
      outcome.split = true;
      this.#lastSplitAt = Date.now();
      metrics.exporterBatchSplits.inc({ exporter: name });
      const detail = { exporter: name, spans: request.spans, entries: items.length, code: result.code, error: result.error };
      log.warn(`split:${result.code ?? ''}`, detail, 'downstream refused a merged export: sending its entries apart');
      const half = Math.ceil(items.length / 2);
      const parts: Array<readonly [ExportRequest, ExportResult]> = [];
      for (const part of [exportRequest(items.slice(0, half)), exportRequest(items.slice(half))]) {
        parts.push([part, await this.#send(part, signal, split, outcome)]);
      }
      return { status: 'split', parts };
    }
    // Refused for every request alike, never sent, or while downstream refuses everything.
    if (!result.payloadSpecific || !split) this.#o.downstream.notDelivering();
    return result;
  }
}
