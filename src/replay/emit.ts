/**
 * `--emit`: the violations found by replay exported downstream as violation
 * spans, built exactly as a worker builds them (src/violations/violation-span.ts),
 * so a violation already emitted live yields an identical span (same ids).
 */
import type { DownstreamConfig } from '../config/index.ts';
import { createOtlpGrpcSender, type PayloadSender } from '../exporter/index.ts';
import type { ViolationRecord } from '../violations/violation-record.ts';
import { violationSpansPayload } from '../violations/violation-span.ts';

export type EmitResult = { readonly ok: true; readonly sent: number } | { readonly ok: false; readonly sent: number; readonly error: string };

/** Sends the violation spans in batches of downstream.max_batch_spans, retrying retryable failures a few times. */
export async function emitViolations(
  records: readonly ViolationRecord[],
  downstream: DownstreamConfig,
  sender: PayloadSender = createOtlpGrpcSender(downstream),
): Promise<EmitResult> {
  let sent = 0;
  try {
    const batch = Math.max(1, downstream.maxBatchSpans);
    for (let i = 0; i < records.length; i += batch) {
      const chunk = records.slice(i, i + batch);
      const payload = violationSpansPayload(chunk);
      for (let attempt = 0; ; attempt++) {
        const r = await sender.send(payload, chunk.length);
        if (r.status === 'success') break;
        if (r.status === 'failure' || attempt >= 4) {
          return { ok: false, sent, error: `export to ${downstream.endpoint} failed: ${r.error}` };
        }
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
      sent += chunk.length;
    }
    return { ok: true, sent };
  } finally {
    await sender.shutdown();
  }
}
