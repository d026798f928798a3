/**
 * A real Jaeger in tests: Jaeger v2 (`cmd/jaeger` of github.com/jaegertracing/jaeger,
 * an OpenTelemetry Collector distribution: what the `jaegertracing/jaeger` image runs),
 * with in-memory storage, built from the Go module proxy into the tool cache once per
 * version. It is betrace's downstream in the Jaeger setup test and a replay source in the
 * replay tests.
 *
 * `go install` refuses the module (its go.mod has a replace directive), so the build
 * runs in a scratch module under the cache: `go get -tool <pkg>@<version>`, then
 * `go build`. The module zip has no UI assets (they are built separately for the
 * image): the binary serves Jaeger's HTTP and gRPC query APIs and a placeholder page
 * instead of the UI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { stringify } from 'yaml';
import path from 'node:path';
import { freePorts } from './kafka.ts';
import { betraceCacheDir, cachedTool, cachedToolAt, goRunner, installBuiltTool } from './tools.ts';

export const JAEGER_PACKAGE = 'github.com/jaegertracing/jaeger/cmd/jaeger';
export const JAEGER_VERSION = 'v1.75.0';
const BINARY_NAME = 'jaeger';

let building: Promise<string> | undefined;

/**
 * Path of the Jaeger binary, built the first time (several minutes with a
 * cold Go module and build cache). Concurrent calls share one build; a failed build is
 * tried again by the next call.
 */
export function ensureJaeger(): Promise<string> {
  building ??= build();
  building.catch(() => (building = undefined));
  return building;
}

async function build(): Promise<string> {
  const { binary, marker } = cachedTool(BINARY_NAME);
  const cached = await cachedToolAt(BINARY_NAME, JAEGER_VERSION);
  if (cached !== undefined) return cached;
  const work = path.join(betraceCacheDir(), 'jaeger-build');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  await writeFile(path.join(work, 'go.mod'), 'module betrace.test/jaeger-build\n\ngo 1.24\n');
  const run = goRunner('ensureJaeger', `${JAEGER_PACKAGE}@${JAEGER_VERSION}`, { binary, marker, version: JAEGER_VERSION }, { ...process.env, CGO_ENABLED: '0' });
  const go = (args: string[]) => run(args, work);
  await go(['get', '-tool', `${JAEGER_PACKAGE}@${JAEGER_VERSION}`]);
  const built = path.join(work, BINARY_NAME);
  // The version `jaeger version` reports, as Jaeger's release build sets it.
  const ldflags = `-X github.com/jaegertracing/jaeger/internal/version.latestVersion=${JAEGER_VERSION}`;
  await go(['build', '-trimpath', `-ldflags=${ldflags}`, '-o', built, JAEGER_PACKAGE]);
  return installBuiltTool(BINARY_NAME, built, JAEGER_VERSION, work);
}

export interface Jaeger {
  /** OTLP/gRPC endpoint (betrace's downstream.endpoint), `http://127.0.0.1:PORT`. */
  readonly otlpGrpcUrl: string;
  /** Query service: the HTTP API (`/api/traces/{id}`, `/api/services`) and UI, `http://127.0.0.1:PORT`. */
  readonly queryUrl: string;
  /** Query service's gRPC API (api_v3 QueryService), `127.0.0.1:PORT`. */
  readonly queryGrpcAddress: string;
  output(): string;
  close(): Promise<void>;
}

export interface JaegerOptions {
  /** The memory storage's max_traces (default 100,000, Jaeger's all-in-one setting); a search's depth may not exceed it. */
  readonly maxTraces?: number;
  /** The query gRPC API over TLS with this certificate and key (PEM files). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/**
 * Starts Jaeger v2 with in-memory storage from a configuration of its own (the
 * all-in-one's pipeline: OTLP receiver to the storage exporter, without the batch
 * processor, so an export the SDK saw acknowledged is stored), every listener on a free
 * loopback port (its OTLP/gRPC receiver off 4317, where betrace's receiver is by default),
 * its own telemetry off, and waits until the query APIs answer.
 */
export async function startJaeger(options: JaegerOptions = {}): Promise<Jaeger> {
  const binary = await ensureJaeger();
  const [otlpGrpc, otlpHttp, queryHttp, queryGrpc] = (await freePorts(4)).map((p) => `127.0.0.1:${p}`) as [string, string, string, string];
  const dir = await mkdtemp(path.join(tmpdir(), 'betrace-jaeger-'));
  const configFile = path.join(dir, 'jaeger.yaml');
  const config = {
    service: {
      extensions: ['jaeger_storage', 'jaeger_query'],
      pipelines: { traces: { receivers: ['otlp'], exporters: ['jaeger_storage_exporter'] } },
      telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } },
    },
    extensions: {
      jaeger_query: {
        storage: { traces: 'memstore' },
        grpc: { endpoint: queryGrpc, ...(options.tls === undefined ? {} : { tls: { cert_file: options.tls.cert, key_file: options.tls.key } }) },
        http: { endpoint: queryHttp },
      },
      jaeger_storage: { backends: { memstore: { memory: { max_traces: options.maxTraces ?? 100_000 } } } },
    },
    receivers: { otlp: { protocols: { grpc: { endpoint: otlpGrpc }, http: { endpoint: otlpHttp } } } },
    exporters: { jaeger_storage_exporter: { trace_storage: 'memstore' } },
  };
  await writeFile(configFile, stringify(config));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    // Jaeger traces itself with the OpenTelemetry SDK's defaults (OTLP to localhost:4317):
    // off, so it never sends its own spans to a betrace on the default port.
    OTEL_TRACES_SAMPLER: 'always_off',
  };
  const child: ChildProcess = spawn(binary, ['--config', configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const answers = async (url: string): Promise<boolean> => {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    return res?.ok === true;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Jaeger exited (${child.exitCode}) at start:\n${out.slice(-3000)}`);
    if ((await answers(`http://${queryHttp}/api/services`)) && (await reachable(queryGrpc)) && (await reachable(otlpGrpc))) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`Jaeger did not get ready in 30 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    otlpGrpcUrl: `http://${otlpGrpc}`,
    queryUrl: `http://${queryHttp}`,
    queryGrpcAddress: queryGrpc,
    output: () => out,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP listener accepts at `host:port`. */
function reachable(address: string): Promise<boolean> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A span as Jaeger's HTTP API (`/api/traces/{id}`) returns it. */
export interface JaegerSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  readonly references: ReadonlyArray<{ readonly refType: string; readonly traceID: string; readonly spanID: string }>;
  readonly startTime: number;
  readonly duration: number;
  readonly tags: ReadonlyArray<{ readonly key: string; readonly type: string; readonly value: unknown }>;
  readonly logs: ReadonlyArray<{ readonly timestamp: number; readonly fields: ReadonlyArray<{ readonly key: string; readonly value: unknown }> }>;
  readonly processID: string;
}

export interface JaegerTrace {
  readonly traceID: string;
  readonly spans: readonly JaegerSpan[];
  readonly processes: Readonly<Record<string, { readonly serviceName: string; readonly tags: ReadonlyArray<{ readonly key: string; readonly value: unknown }> }>>;
}

/** GET a query API path; its `data`, or undefined on 404 (a trace not, or not yet, stored). */
export async function jaegerApi<T>(jaeger: Jaeger, apiPath: string): Promise<T | undefined> {
  const res = await fetch(`${jaeger.queryUrl}${apiPath}`, { signal: AbortSignal.timeout(5000) });
  if (res.status === 404) return undefined;
  const body = (await res.json()) as { data: T; errors?: unknown };
  if (!res.ok) throw new Error(`Jaeger ${apiPath}: ${res.status} ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}
