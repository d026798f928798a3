/**
 * Side by side with the OpenTelemetry Collector (issue #28): the same load (the bench's
 * load client, 16 requests in flight, the pipeline bench's workload) to a Collector built
 * from the Go module proxy (test/bench/otelcol/builder-bench.yaml, core v0.165.0, contrib
 * v0.165.1) and to betrace, each server pinned to one core (the load client to the other),
 * CPU from /proc, runs alternating between the two; medians and their ratios.
 *
 * - pass-through, OTLP → OTLP: the Collector with the batch processor and the OTLP
 *   exporter; betrace embedded (every role in one process: its traces are assembled too)
 *   with no rules, trace_idle_timeout 1 s; both to the same counting sink, CPU counted until
 *   the sink holds every span (and betrace evaluated every trace).
 * - OTLP → Kafka, acks all: the Collector's Kafka exporter (otlp_proto, required_acks -1,
 *   partitioned by trace id, no sending queue: an export is answered once Kafka has it, as
 *   betrace's is); betrace `--roles receiver,api` in Kafka mode.
 * Peak RSS (VmHWM) of each server at the end of its run.
 *
 * Run: node test/bench/collector-bench.ts (part of `npm run bench`; BENCH_RUNS runs each,
 * default 3). Prints one JSON line. Not a test: nothing is asserted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePorts, startKafka, uniqueName, type KafkaBroker } from '../helpers/kafka.ts';
import { ensureOtelCollector } from '../helpers/otelcol.ts';
import { betraceConfig, countingSink, cpuSeconds, createTopic, metric, rssBytes, runClient, SERVER_CPU, startBetrace, stop, waitFor, workloadFile } from './pipeline-bench.ts';
import { buildWorkload, type Workload } from './workload.ts';

interface Run {
  readonly cpuSecondsPerMillionSpans: number;
  readonly peakRssMib: number;
}

/** A Collector pinned to the server core with `config`; resolves once it is ready. */
async function startCollector(config: Record<string, unknown>): Promise<{ child: ChildProcess; output: () => string }> {
  const binary = await ensureOtelCollector('bench');
  const dir = mkdtempSync(join(tmpdir(), 'betrace-bench-otelcol-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  const child = spawn('taskset', ['-c', SERVER_CPU, binary, '--config', `file:${file}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => (/Everything is ready/.test(out) ? true : child.exitCode !== null ? Promise.reject(new Error(`the Collector exited: ${out.slice(-2000)}`)) : undefined), 60_000, 'the Collector ready');
  return { child, output: () => out };
}

// Logs at info: "Everything is ready" says when it listens.
const telemetryOff = { telemetry: { metrics: { level: 'none' }, logs: { level: 'info' } } };
const otlpReceiver = (port: number) => ({ otlp: { protocols: { grpc: { endpoint: `127.0.0.1:${port}`, max_recv_msg_size_mib: 64 } } } });

/** One warm-up pass, then the measured pass: CPU per million spans until `done`, and the peak RSS. */
async function measure(pid: number, file: string, url: string, w: Workload, done: (pass: number) => Promise<boolean>): Promise<Run> {
  await runClient(file, url, 16);
  await waitFor(async () => ((await done(1)) ? true : undefined), 300_000, 'the warm-up pass through');
  const cpu0 = cpuSeconds(pid);
  const r = await runClient(file, url, 16);
  if (r.ackedSpans !== w.spans) throw new Error(`collector bench: ${r.ackedSpans} of ${w.spans} spans acknowledged`);
  await waitFor(async () => ((await done(2)) ? true : undefined), 300_000, 'the measured pass through', 200);
  return { cpuSecondsPerMillionSpans: ((cpuSeconds(pid) - cpu0) / w.spans) * 1e6, peakRssMib: rssBytes(pid, 'VmHWM') / 2 ** 20 };
}

async function passThroughCollector(w: Workload, file: string): Promise<Run> {
  const sink = await countingSink();
  const [port] = await freePorts(1);
  const c = await startCollector({
    receivers: otlpReceiver(port!),
    processors: { batch: {} },
    exporters: { otlp: { endpoint: sink.url.replace('http://', ''), tls: { insecure: true } } },
    service: { ...telemetryOff, pipelines: { traces: { receivers: ['otlp'], processors: ['batch'], exporters: ['otlp'] } } },
  });
  try {
    return await measure(c.child.pid!, file, `http://127.0.0.1:${port}`, w, (pass) => Promise.resolve(sink.spans() >= pass * w.spans));
  } finally {
    await stop(c.child);
    sink.close();
  }
}

async function passThroughBetrace(w: Workload, file: string): Promise<Run> {
  const sink = await countingSink();
  // The embedded transport runs every role in one process: its traces are assembled too (no rules to evaluate).
  const b = await startBetrace(betraceConfig({ downstream: { endpoint: sink.url }, rules: { paths: [] }, worker: { trace_idle_timeout: '1s' } }), 'receiver,worker,forwarder,api');
  try {
    return await measure(b.child.pid!, file, b.grpcUrl, w, async (pass) => sink.spans() >= pass * w.spans && (await metric(b.apiUrl, 'betrace_worker_traces_evaluated_total')) >= pass * w.traces);
  } finally {
    await stop(b.child);
    sink.close();
  }
}

async function kafkaCollector(w: Workload, file: string, kafka: KafkaBroker): Promise<Run> {
  const [port] = await freePorts(1);
  const topic = uniqueName('bench.otelcol');
  // As betrace's: 4 partitions (the broker creates no topic on first use).
  await createTopic(kafka, topic, 4);
  const c = await startCollector({
    receivers: otlpReceiver(port!),
    exporters: {
      kafka: {
        brokers: kafka.brokers,
        traces: { topic, encoding: 'otlp_proto' },
        partition_traces_by_id: true,
        producer: { required_acks: -1 },
        sending_queue: { enabled: false },
      },
    },
    service: { ...telemetryOff, pipelines: { traces: { receivers: ['otlp'], exporters: ['kafka'] } } },
  });
  try {
    // No sending queue: an acknowledged export is in Kafka.
    return await measure(c.child.pid!, file, `http://127.0.0.1:${port}`, w, () => Promise.resolve(true));
  } finally {
    await stop(c.child);
  }
}

async function kafkaBetrace(w: Workload, file: string, kafka: KafkaBroker): Promise<Run> {
  const prefix = uniqueName('bench.betrace');
  const config = betraceConfig({
    rules: { paths: [] },
    transport: { kind: 'kafka', partitions: 4, kafka: { brokers: kafka.brokers, spans_topic: `${prefix}.spans`, rules_topic: `${prefix}.rules`, violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index` } },
  });
  const b = await startBetrace(config, 'receiver,api');
  try {
    return await measure(b.child.pid!, file, b.grpcUrl, w, () => Promise.resolve(true));
  } finally {
    await stop(b.child);
  }
}

export async function runCollectorBench(runs = Number(process.env.BENCH_RUNS ?? 3)): Promise<Record<string, number>> {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const w = buildWorkload(3000, { seed: 1 });
  const file = workloadFile(w);
  await ensureOtelCollector('bench');
  const out: Record<string, number> = { collector_workload_spans: w.spans };
  const pair = async (name: string, collector: () => Promise<Run>, betrace: () => Promise<Run>) => {
    const c: Run[] = [];
    const b: Run[] = [];
    for (let i = 0; i < runs; i++) {
      c.push(await collector());
      b.push(await betrace());
    }
    out[`${name}_collector_cpu_s_per_1m_spans`] = median(c.map((r) => r.cpuSecondsPerMillionSpans));
    out[`${name}_betrace_cpu_s_per_1m_spans`] = median(b.map((r) => r.cpuSecondsPerMillionSpans));
    out[`${name}_cpu_ratio`] = out[`${name}_betrace_cpu_s_per_1m_spans`]! / out[`${name}_collector_cpu_s_per_1m_spans`]!;
    out[`${name}_collector_peak_rss_mib`] = median(c.map((r) => r.peakRssMib));
    out[`${name}_betrace_peak_rss_mib`] = median(b.map((r) => r.peakRssMib));
    out[`${name}_rss_ratio`] = out[`${name}_betrace_peak_rss_mib`]! / out[`${name}_collector_peak_rss_mib`]!;
    process.stderr.write(
      `  ${name}: Collector ${out[`${name}_collector_cpu_s_per_1m_spans`]!.toFixed(2)} CPU-s/1M spans, ${Math.round(out[`${name}_collector_peak_rss_mib`]!)} MiB; betrace ${out[`${name}_betrace_cpu_s_per_1m_spans`]!.toFixed(2)}, ${Math.round(out[`${name}_betrace_peak_rss_mib`]!)} MiB; x${out[`${name}_cpu_ratio`]!.toFixed(2)} CPU, x${out[`${name}_rss_ratio`]!.toFixed(2)} RSS\n`,
    );
  };
  await pair('pass_through', () => passThroughCollector(w, file), () => passThroughBetrace(w, file));
  const kafka = await startKafka({ heap: '1g' });
  try {
    await pair('otlp_to_kafka', () => kafkaCollector(w, file, kafka), () => kafkaBetrace(w, file, kafka));
  } finally {
    await kafka.destroy();
  }
  return out;
}

if (import.meta.main) {
  const r = await runCollectorBench();
  console.log(JSON.stringify({ bench: 'collector', ...r }));
}
