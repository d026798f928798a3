/**
 * The lifecycle every component shares: start() once, shutdown() idempotent and
 * safe before start; shutdown flushes what the component holds. A component starts
 * and stops only what it owns: what it is given (a pool, an exporter, a store) is
 * started before it and stopped after it by the composition root's lifecycle list
 * (src/cli/lifecycle.ts).
 */
export interface Component {
  start(): Promise<void>;
  shutdown(): Promise<void>;
}
