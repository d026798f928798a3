/**
 * The receiver-wide bound on bytes of requests still being received (both OTLP
 * receivers share one): OTLP/HTTP takes body chunks from it as they arrive,
 * OTLP/gRPC takes what its connections hold as it grows (see grpc.ts).
 */
import type { ByteBudget } from '../security.ts';
import type { Metrics } from '../telemetry/metrics.ts';

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
