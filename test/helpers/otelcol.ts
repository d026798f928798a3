/**
 * A real OpenTelemetry Collector as a downstream of betrace in tests: OTLP/gRPC in,
 * decoded by the Collector's Go protobuf code, exported again over OTLP/gRPC to a test
 * sink (test/helpers/otlp-sink.ts), so a test sees exactly what a conformant decoder
 * accepted; or, with the file exporter, records what it accepted to a file (what
 * src/rules/README.md tells users to run for `rules test`). Built with the Collector builder from the Go module proxy
 * (test/helpers/otelcol/builder.yaml) into the tool cache, once per manifest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { betraceCacheDir, cachedToolAt, ensureGoTool, installBuiltTool, runTool } from './tools.ts';

/** Builder manifests (test/helpers/otelcol/*.yaml), each giving its own binary (`dist.name`). */
export type CollectorFlavour = 'otlp' | 'kafka' | 'bench';
const MANIFESTS: Record<CollectorFlavour, string> = {
  otlp: fileURLToPath(new URL('./otelcol/builder.yaml', import.meta.url)),
  kafka: fileURLToPath(new URL('./otelcol/builder-kafka.yaml', import.meta.url)),
  // The side-by-side bench's (test/bench/collector-bench.ts).
  bench: fileURLToPath(new URL('../bench/otelcol/builder-bench.yaml', import.meta.url)),
};

const building = new Map<CollectorFlavour, Promise<string>>();

/** Path of a test Collector binary, built the first time (about 2 minutes with a cold Go module cache). */
export function ensureOtelCollector(flavour: CollectorFlavour = 'otlp'): Promise<string> {
  let pending = building.get(flavour);
  if (!pending) {
    pending = build(MANIFESTS[flavour]);
    building.set(flavour, pending);
    pending.catch(() => building.delete(flavour));
  }
  return pending;
}

async function build(manifestPath: string): Promise<string> {
  const manifest = await readFile(manifestPath, 'utf8');
  const name = /^ {2}name: (\S+)$/m.exec(manifest)?.[1];
  if (!name) throw new Error(`${manifestPath}: no dist.name`);
  const version = createHash('sha256').update(manifest).digest('hex').slice(0, 16);
  const cached = await cachedToolAt(name, version);
  if (cached !== undefined) return cached;
  const builder = await ensureGoTool('otelcol-builder');
  const work = path.join(betraceCacheDir(), `${name}-build`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const withOutput = manifest.replace(/^dist:\n/m, `dist:\n  output_path: ${JSON.stringify(work)}\n`);
  const manifestCopy = path.join(work, 'builder.yaml');
  await writeFile(manifestCopy, withOutput);
  // The empty module the manifest's `replaces` names (only tests of a component import it).
  const stub = path.join(work, 'stub-otlpencodingextension');
  await mkdir(stub);
  await writeFile(path.join(stub, 'go.mod'), 'module github.com/open-telemetry/opentelemetry-collector-contrib/extension/encoding/otlpencodingextension\n\ngo 1.25\n');
  await writeFile(path.join(stub, 'doc.go'), '// Package otlpencodingextension stands in for a module only tests import.\npackage otlpencodingextension\n');
  const { code, output } = await runTool(builder, ['--config', manifestCopy], { ...process.env, CGO_ENABLED: '0' });
  const built = path.join(work, name);
  if (code !== 0 || !existsSync(built)) {
    throw new Error(`ensureOtelCollector: the Collector builder failed (exit ${code}); it needs Go and the Go module proxy:\n${output.slice(-4000)}`);
  }
  return installBuiltTool(name, built, version, work);
}

export interface OtelCollector {
  /** OTLP/gRPC endpoint betrace exports to, `http://127.0.0.1:PORT`. */
  readonly url: string;
  output(): string;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a Collector that receives OTLP/gRPC on a free loopback port and exports every
 * span it accepted to `exportTo` (an OTLP/gRPC URL, e.g. a test sink's), without a
 * sending queue, so the Collector answers an export only once the sink has it; or,
 * with `toFile`, writes them to that file with the file exporter (OTLP/JSON, a
 * request per line; complete once closed).
 */
export function startOtelCollector(options: { exportTo: string } | { toFile: string }): Promise<OtelCollector> {
  if ('toFile' in options) return runCollector('otlp', ['file'], ['  file:', `    path: ${JSON.stringify(options.toFile)}`, '    format: json']);
  return runCollector('otlp', ['otlp_grpc'], otlpExporter(options.exportTo));
}

/**
 * The "beside an existing Collector" setup's Collector: OTLP/gRPC in, every span exported
 * both to `exportTo` (the tracing backend, OTLP/gRPC) and, with the `kafka` exporter
 * configured as the README shows, to `topic` on `brokers`.
 */
export function startKafkaExportingCollector(options: { exportTo: string; brokers: readonly string[]; topic: string }): Promise<OtelCollector> {
  return runCollector('kafka', ['otlp_grpc', 'kafka'], [
    ...otlpExporter(options.exportTo),
    '  kafka:',
    `    brokers: [${options.brokers.join(', ')}]`,
    '    traces:',
    `      topic: ${options.topic}`,
    '      encoding: otlp_proto',
    '    partition_traces_by_id: true',
    '    sending_queue:',
    '      enabled: false',
  ]);
}

function otlpExporter(url: string): string[] {
  return [
    '  otlp_grpc:',
    `    endpoint: 127.0.0.1:${new URL(url).port}`,
    '    tls:',
    '      insecure: true',
    '    sending_queue:',
    '      enabled: false',
    '    retry_on_failure:',
    '      enabled: false',
  ];
}

/** Runs the flavour's Collector with an OTLP/gRPC receiver on a free port, `exporterLines` under `exporters:`. */
async function runCollector(flavour: CollectorFlavour, exporters: readonly string[], exporterLines: readonly string[]): Promise<OtelCollector> {
  const binary = await ensureOtelCollector(flavour);
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'betrace-otelcol-'));
  const configFile = path.join(dir, 'config.yaml');
  await writeFile(
    configFile,
    [
      'receivers:',
      '  otlp:',
      '    protocols:',
      '      grpc:',
      `        endpoint: 127.0.0.1:${port}`,
      '        max_recv_msg_size_mib: 64',
      'exporters:',
      ...exporterLines,
      'service:',
      '  telemetry:',
      '    metrics:',
      '      level: none',
      '  pipelines:',
      '    traces:',
      '      receivers: [otlp]',
      `      exporters: [${exporters.join(', ')}]`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(binary, ['--config', `file:${configFile}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!/Everything is ready/.test(out)) {
    if (child.exitCode !== null) throw new Error(`the test Collector exited (${child.exitCode}) at start:\n${out.slice(-3000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the test Collector did not get ready in 30 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
