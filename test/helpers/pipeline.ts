/** Runs a betrace pipeline in the test process on free loopback ports. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { parseConfig, type Config } from '../../src/config/index.ts';
import { createPipeline, type Pipeline, type Role, ALL_ROLES } from '../../src/cli/pipeline.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

export interface TestPipeline {
  readonly pipeline: Pipeline;
  readonly config: Config;
  readonly grpcUrl: string;
  readonly httpUrl: string;
  readonly apiUrl: string;
  readonly dataDir: string;
  readonly logs: string[];
  stop(): Promise<void>;
}

/** Deep-merges `overrides` (YAML-shaped, snake_case) over test defaults: port 0 everywhere. */
export async function startTestPipeline(
  overrides: Record<string, unknown> = {},
  options: { roles?: Role[]; dataDir?: string; evaluatorThreadModule?: URL; env?: NodeJS.ProcessEnv } = {},
): Promise<TestPipeline> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'betrace-test-'));
  const base: Record<string, unknown> = {
    receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
    api: { endpoint: '127.0.0.1:0' },
    data_dir: dataDir,
    log: { level: 'info' },
  };
  const merged = merge(base, overrides);
  const config = parseConfig(stringify(merged), { source: 'test-config', env: options.env ?? {}, baseDir: dataDir });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger(config.log.level, sink);
  const pipeline = createPipeline({
    config,
    roles: options.roles ?? [...ALL_ROLES],
    logger,
    ...(options.evaluatorThreadModule === undefined ? {} : { evaluatorThreadModule: options.evaluatorThreadModule }),
  });
  await pipeline.start();
  const ports = pipeline.ports();
  return {
    pipeline,
    config,
    grpcUrl: `http://127.0.0.1:${ports.grpc}`,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    apiUrl: `http://127.0.0.1:${ports.api}`,
    dataDir,
    logs,
    async stop() {
      await pipeline.shutdown();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof prev === 'object' && prev !== null && !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Reads one metric value (sum over series matching the labels) from /metrics text. */
export async function metricValue(apiUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const series: Record<string, string> = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => series[k] === v)) total += Number(m[4]);
  }
  return total;
}

export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
