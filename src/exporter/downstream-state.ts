/**
 * What the export path has seen of downstream: whether it takes exports (`delivering`, which
 * a queue waiting only while downstream delivers listens to) and whether it is reachable
 * (health(), for /ready).
 */

/** Consecutive export attempts failing retryably (downstream not reached or not answering) before health() says unreachable. */
const UNREACHABLE_AFTER_FAILURES = 3;

export type DownstreamHealth = { reachable: true } | { reachable: false; error: string; since: string };

export class DownstreamState {
  #delivering = true;
  #failures = 0;
  #lastError = '';
  #failingSince = 0;
  readonly #onStopped = new Set<() => void>();

  /** Whether downstream takes exports: false from a failed attempt until one succeeds. */
  get delivering(): boolean {
    return this.#delivering;
  }

  /** Called whenever downstream is found not delivering. */
  onNotDelivering(listener: () => void): void {
    this.#onStopped.add(listener);
  }

  /** An attempt succeeded. */
  delivered(): void {
    this.#failures = 0;
    this.#delivering = true;
  }

  /** Downstream answered a refusal: it is reachable. */
  answered(): void {
    this.#failures = 0;
  }

  /** An attempt failed retryably (not reached, not answering, UNAVAILABLE and the like). */
  failedRetryably(error: string): void {
    if (this.#failures++ === 0) this.#failingSince = Date.now();
    this.#lastError = error;
    this.notDelivering();
  }

  /** Downstream takes nothing now (it refuses every request, or every entry of a batch). */
  notDelivering(): void {
    this.#delivering = false;
    for (const listener of this.#onStopped) listener();
  }

  /**
   * False once UNREACHABLE_AFTER_FAILURES export attempts in a row failed retryably, until one
   * succeeds or downstream answers. A refusal does not count: downstream is reachable.
   */
  health(): DownstreamHealth {
    return this.#failures < UNREACHABLE_AFTER_FAILURES
      ? { reachable: true }
      : { reachable: false, error: this.#lastError, since: new Date(this.#failingSince).toISOString() };
  }
}
