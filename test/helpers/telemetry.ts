/** Logs and metrics of components run directly in a test (without a pipeline or its API). */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/telemetry/logger.ts';
import type { Metrics } from '../../src/telemetry/metrics.ts';

/** A logger at `level` whose lines the test reads, parsed. */
export function capturedLogger(level = 'warn'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger(
    level,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    }),
  );
  return { logger, lines };
}

/** A metric's value summed over the series matching `labels`, read from the registry. */
export async function registryValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  let total = 0;
  for (const v of (m?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>) {
    if (Object.entries(labels).every(([k, want]) => v.labels[k] === want)) total += v.value;
  }
  return total;
}
