/** JSON logs (pino). Never log per span: hot paths use a RateLimitedLog. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: 'betrace' }, redact: ['token', '*.token', 'headers.authorization'] },
    destination ?? pino.destination({ sync: false }),
  );
}

/**
 * Logs one line per key at most once per interval, reporting how many were
 * suppressed in between: what hot paths use for per-item problems.
 */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: Logger, intervalMs = 10_000) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const entry = this.#last.get(key);
    if (entry !== undefined && now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return;
    }
    this.#logger.warn({ ...fields, suppressed: entry?.suppressed ?? 0 }, message);
    this.#last.set(key, { at: now, suppressed: 0 });
  }
}
