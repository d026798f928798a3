/**
 * The innermost ExportSender: one OTLP/gRPC call per request through a PayloadSender (a lone
 * entry's own bytes, uncopied, else the entries' bytes concatenated for this call only), its
 * answer counted (sent, failed) and told to the DownstreamState.
 */
import { mergeRequests } from '../otlp/index.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { DownstreamState } from './downstream-state.ts';
import { ABANDONED, untilAborted, type ExportRequest, type ExportResult, type ExportSender } from './export-sender.ts';
import type { PayloadSender, SendResult } from './otlp-grpc-sender.ts';

export interface RequestSenderOptions {
  readonly name: string;
  readonly sender: PayloadSender;
  readonly metrics: Metrics;
  readonly downstream: DownstreamState;
}

export class RequestSender implements ExportSender {
  readonly #o: RequestSenderOptions;

  constructor(options: RequestSenderOptions) {
    this.#o = options;
  }

  async send(request: ExportRequest, signal: AbortSignal): Promise<ExportResult> {
    const { metrics, name, downstream } = this.#o;
    if (signal.aborted) return ABANDONED;
    let result: SendResult | typeof ABANDONED;
    try {
      const payload = request.items.length === 1 ? request.items[0]!.payload : mergeRequests(request.items.map((i) => i.payload));
      result = await untilAborted(this.#o.sender.send(payload, request.spans), signal);
    } catch (err) {
      // Not an answer from downstream but an error of our own: permanent, and not about the payload.
      result = { status: 'failure', error: err instanceof Error ? err.message : String(err), payloadSpecific: false };
    }
    if (result === ABANDONED) return result;
    if (result.status === 'success') {
      downstream.delivered();
      metrics.exporterSpansSent.inc({ exporter: name }, request.spans);
      return result;
    }
    metrics.exporterSpansFailed.inc({ exporter: name }, request.spans);
    if (result.status === 'retryable') downstream.failedRetryably(result.code === undefined ? result.error : `${result.code}: ${result.error}`);
    else downstream.answered();
    return result;
  }
}
