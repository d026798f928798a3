/**
 * The receiver-wide bound on bytes of requests still being received (both OTLP
 * receivers share one): OTLP/HTTP takes body chunks from it as they arrive,
 * OTLP/gRPC takes what its connections hold as it grows (see grpc.ts).
 */
import type { ByteBudget } from '../server/index.ts';
import type { Metrics } from '../telemetry/metrics.ts';

/** What a request refused because the budget is spent is told (both receivers), and the retry delay suggested when none is configured. */
export function receiveBudgetSpent(retryAfterMs: number | undefined): { readonly message: string; readonly retryAfterMs: number } {
  return { message: 'too many bytes of requests being received (receiver.max_receiving_bytes)', retryAfterMs: retryAfterMs ?? 1000 };
}

export class ReceiveBudget implements ByteBudget {
  readonly limit: number;
  readonly #metrics: Metrics | undefined;
  #taken = 0;

  constructor(limit: number, metrics?: Metrics) {
    this.limit = limit;
    this.#metrics = metrics;
  }

  get used(): number {
    return this.#taken;
  }

  /** Counts `bytes` unless that passes the limit (then nothing is counted). */
  tryTake(bytes: number): boolean {
    if (this.#taken + bytes > this.limit) return false;
    this.#taken += bytes;
    this.#update();
    return true;
  }

  release(bytes: number): void {
    this.#taken = Math.max(0, this.#taken - bytes);
    this.#update();
  }

  #update(): void {
    this.#metrics?.receiverReceivingBytes.set(this.#taken);
  }
}
