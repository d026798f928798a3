/**
 * The lifecycle every component shares: start() once, shutdown() idempotent and
 * safe before start; shutdown flushes what the component holds.
 */
export interface Component {
  start(): Promise<void>;
  shutdown(): Promise<void>;
}
