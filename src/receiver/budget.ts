/**
 * The receiver-wide bound on bytes of requests still being received (both OTLP
 * receivers share one): OTLP/HTTP takes body chunks from it as they arrive,
 * OTLP/gRPC reports what its connections hold (see grpc.ts).
 */
import type { ByteBudget } from '../security.ts';
import type { Metrics } from '../telemetry/metrics.ts';

export class ReceiveBudget implements ByteBudget {
  readonly limit: number;
  readonly #metrics: Metrics | undefined;
  #taken = 0;
  #reported = 0;

  constructor(limit: number, metrics?: Metrics) {
    this.limit = limit;
    this.#metrics = metrics;
  }

  /** Bytes counted now: taken chunks plus what the gRPC receiver reported. */
  get used(): number {
    return this.#taken + this.#reported;
  }

  get full(): boolean {
    return this.used >= this.limit;
  }

  /** Counts `bytes` unless that passes the limit (then nothing is counted). */
  tryTake(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.#taken += bytes;
    this.#update();
    return true;
  }

  release(bytes: number): void {
    this.#taken = Math.max(0, this.#taken - bytes);
    this.#update();
  }

  /** What the gRPC receiver's connections hold now (replaces its previous report). */
  report(bytes: number): void {
    this.#reported = bytes;
    this.#update();
  }

  #update(): void {
    this.#metrics?.receiverReceivingBytes.set(this.used);
  }
}
