/**
 * Pipeline benchmarks on this machine (not tests): receiver into the embedded
 * transport and into Kafka, workers reading Kafka with 100 rules (1 and 2
 * processes), end to end, detection latency at 20k spans/s, and memory per
 * buffered span. The load generator runs in its own process pinned to another
 * core than betrace (taskset), replaying pre-encoded requests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import { stringify } from 'yaml';
import { ExportTraceServiceRequest, TRACE_SERVICE_DEFINITION, splitByTrace } from '../../src/otlp/index.ts';
import { scanRequest } from '../helpers/otlp-oracle.ts';
import { saramaPartition } from '../../src/transport/partitioner.ts';
import { startKafka, type KafkaBroker } from '../helpers/kafka.ts';
import { buildWorkload, packRequests, type Workload } from './workload.ts';

const here = import.meta.dirname;
const root = join(here, '..', '..');
const cli = join(root, 'src', 'cli', 'main.ts');
const rules100 = join(here, 'fixtures', 'rules-100.yaml');
export const SERVER_CPU = '0';
const CLIENT_CPU = '1';

export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssBytes(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/**
 * BENCH_PROFILE_DIR: betrace processes (not the load generator) write V8 CPU
 * profiles there (--cpu-prof, one file per thread), for `--cpu-prof` analysis.
 */
const profileDir = process.env.BENCH_PROFILE_DIR;

/** BENCH_NODE_ARGS: extra node arguments of the measured betrace processes (`--trace-gc`, say). */
const extraNodeArgs = () => (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter((a) => a !== '');
/** BENCH_LOG_DIR: the output of every measured betrace process is written there (`betrace-<pid>.log`). */
const logDir = process.env.BENCH_LOG_DIR;

function spawnPinned(cpu: string, args: string[], env: Record<string, string> = {}, measured = false): { child: ChildProcess; output: () => string } {
  const node = [process.execPath];
  if (measured && profileDir) node.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  if (measured) node.push(...extraNodeArgs());
  const child = spawn('taskset', ['-c', cpu, ...node, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  if (measured && logDir) child.once('exit', () => writeFileSync(join(logDir, `betrace-${child.pid}.log`), out));
  return { child, output: () => out };
}

export async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string, intervalMs: number | (() => number) = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, typeof intervalMs === 'number' ? intervalMs : intervalMs()));
  }
}

/** Polling a measured process's /metrics costs it CPU: not more often than this. */
const METRICS_POLL_MS = 200;

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** Runs the load generator; resolves with its report. */
export async function runClient(file: string, url: string, concurrency: number, rate?: number): Promise<{ ackedSpans: number; refused: number; seconds: number; sendTimes?: number[] }> {
  const args = [join(here, 'load-client.ts'), file, url, String(concurrency), ...(rate ? [String(rate)] : [])];
  const { child, output } = spawnPinned(CLIENT_CPU, args);
  await new Promise((r) => child.once('exit', r));
  const line = output().trim().split('\n').pop()!;
  try {
    return JSON.parse(line) as { ackedSpans: number; refused: number; seconds: number; sendTimes?: number[] };
  } catch {
    throw new Error(`load client failed: ${output().slice(-2000)}`);
  }
}

/** A downstream OTLP/gRPC sink that only counts (and notes violation spans' arrival). */
export async function countingSink(): Promise<{ url: string; spans: () => number; violations: Map<string, number>; close(): void }> {
  let spans = 0;
  const violations = new Map<string, number>();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  server.addService(
    TRACE_SERVICE_DEFINITION,
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const buf = call.request;
        if (buf.includes('betrace.violation')) {
          const now = Date.now();
          const req = ExportTraceServiceRequest.decode(buf) as unknown as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; traceId: Uint8Array }> }> }> };
          for (const rs of req.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) {
            if (s.name === 'betrace.violation') violations.set(Buffer.from(s.traceId).toString('hex'), now);
            else spans++;
          }
        } else spans += scanRequest(buf).spanCount;
        cb(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { url: `http://127.0.0.1:${port}`, spans: () => spans, violations, close: () => server.forceShutdown() };
}

export function workloadFile(w: Workload): string {
  const file = join(mkdtempSync(join(tmpdir(), 'betrace-bench-')), 'requests.bin');
  writeFileSync(file, packRequests(w.requests));
  return file;
}

export interface Figure {
  spansPerSecond: number;
  cpuSecondsPerMillionSpans: number;
  /** Workers: CPU-seconds per million spans of a fresh process (its warm-up), JIT compilation included. */
  coldCpuSecondsPerMillionSpans?: number;
  /** Peak RSS (VmHWM) of the measured process at its end, warm-up included; of the largest one when several. */
  peakRssBytes?: number;
  /** Workers: failed writes to the violations topic (a worker retrying them holds its traces: the figure is not a worker's). */
  violationWriteFailures?: number;
}

/** Receiver alone: pre-encoded requests in, records into the transport. */
export async function benchReceiver(kind: 'embedded' | 'kafka', w: Workload, file: string, kafka?: KafkaBroker): Promise<Figure> {
  const topic = `bench.recv.${Date.now()}`;
  const { child, output } = spawnPinned(SERVER_CPU, [join(here, 'receiver-server.ts'), kind, ...(kafka ? [kafka.brokers.join(','), topic] : [])], {}, true);
  const port = await waitFor(() => /"port":(\d+)/.exec(output())?.[1], 60_000, `receiver (${output()})`);
  // Warm up, then measure.
  await runClient(file, `http://127.0.0.1:${port}`, 16);
  const cpu0 = cpuSeconds(child.pid!);
  const r = await runClient(file, `http://127.0.0.1:${port}`, 16);
  const cpu = cpuSeconds(child.pid!) - cpu0;
  const peakRssBytes = rssBytes(child.pid!, 'VmHWM');
  await stop(child);
  if (r.ackedSpans !== w.spans) throw new Error(`receiver bench: ${r.ackedSpans} of ${w.spans} spans acknowledged`);
  return { spansPerSecond: r.ackedSpans / r.seconds, cpuSecondsPerMillionSpans: (cpu / r.ackedSpans) * 1e6, peakRssBytes };
}

export function betraceConfig(settings: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-bench-'));
  const file = join(dir, 'betrace.yaml');
  writeFileSync(
    file,
    stringify({
      receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { enabled: false } },
      api: { endpoint: '127.0.0.1:0' },
      rules: { paths: [rules100] },
      data_dir: join(dir, 'data'),
      log: { level: 'warn' },
      ...settings,
    }),
  );
  return file;
}

export async function metric(apiUrl: string, name: string): Promise<number> {
  return (await metrics(apiUrl, [name]))[0]!;
}

/** Each metric's total over its series, from one scrape (a scrape costs the measured process CPU time). */
async function metrics(apiUrl: string, names: readonly string[]): Promise<number[]> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const totals = names.map(() => 0);
  for (const line of text.split('\n')) {
    const i = names.findIndex((name) => line.startsWith(name));
    if (i >= 0) totals[i]! += Number(line.split(' ').pop());
  }
  return totals;
}

export async function startBetrace(config: string, roles: string, cpu = SERVER_CPU): Promise<{ child: ChildProcess; apiUrl: string; grpcUrl: string }> {
  const p = spawnPinned(cpu, [cli, 'run', '--config', config, '--roles', roles], { BETRACE_LOG_LEVEL: 'info' }, true);
  const api = await waitFor(() => /"address":"([^"]+)","msg":"admin API listening"/.exec(p.output())?.[1], 60_000, `betrace admin port (${p.output().slice(-1000)})`);
  const grpcAddr = /"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/.exec(p.output())?.[1];
  await waitFor(() => (/betrace started/.test(p.output()) ? true : undefined), 60_000, 'betrace started');
  return { child: p.child, apiUrl: `http://${api}`, grpcUrl: `http://${grpcAddr}` };
}

/** The workload as the receiver writes it: one record per (request, trace). */
function workloadRecords(w: Workload): Array<{ key: string; value: Buffer; timestamp: string }> {
  const out: Array<{ key: string; value: Buffer; timestamp: string }> = [];
  for (const req of w.requests) {
    const split = splitByTrace(req);
    if (!split.ok) throw new Error(split.error);
    for (const t of split.traces) out.push({ key: t.traceId, value: Buffer.from(t.payload), timestamp: String(t.earliestStartNs / 1_000_000n) });
  }
  return out;
}

export async function createTopic(kafka: KafkaBroker, topic: string, partitions: number): Promise<void> {
  const client = new Kafka({ clientId: 'bench-admin', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
}

/** Produces the records (several sends in flight, each within the broker's batch limit). */
const byTraceId = () => ({ message, partitionMetadata }: { message: { key?: Buffer | string | null }; partitionMetadata: unknown[] }) =>
  saramaPartition(String(message.key), partitionMetadata.length);

/** Produces the records (several sends in flight, each within the broker's batch limit). */
async function fillTopic(kafka: KafkaBroker, topic: string, records: ReturnType<typeof workloadRecords>): Promise<void> {
  const client = new Kafka({ clientId: 'bench-fill', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
  const producer = client.producer({ createPartitioner: byTraceId });
  await producer.connect();
  const batches: Array<typeof records> = [];
  for (let i = 0; i < records.length; i += 200) batches.push(records.slice(i, i + 200));
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < batches.length) await producer.send({ topic, acks: 1, messages: batches[next++]! });
    }),
  );
  await producer.disconnect();
}

/**
 * Produces the records in one Kafka transaction, left open: consumers (read-committed, as
 * workers are) see none of them until commit() is called, then all at once.
 */
async function fillTopicPending(kafka: KafkaBroker, topic: string, records: ReturnType<typeof workloadRecords>): Promise<{ commit: () => Promise<void> }> {
  const client = new Kafka({ clientId: 'bench-fill-pending', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
  const producer = client.producer({ createPartitioner: byTraceId, transactionalId: `${topic}-fill`, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 600_000 });
  await producer.connect();
  const transaction = await producer.transaction();
  for (let i = 0; i < records.length; i += 200) await transaction.send({ topic, messages: records.slice(i, i + 200) });
  return {
    async commit() {
      await transaction.commit();
      await producer.disconnect();
    },
  };
}

/** Workloads of the worker bench: a warm-up, then the measured one (other trace ids). */
export interface WorkerWorkloads {
  readonly warmup: Workload;
  readonly measured: Workload;
  readonly warmupRecords: ReturnType<typeof workloadRecords>;
  readonly measuredRecords: ReturnType<typeof workloadRecords>;
}

export function workerWorkloads(): WorkerWorkloads {
  // Twice the measured workload: the worker's memory (payload slabs, V8 heap) grows to what
  // the measured part needs, as in a worker that has run at this load for a minute; fresh
  // memory costs a page fault per page (on this VM also one on the host), memory used again
  // does not. With a warm-up of a third of the measured workload, the measured part still
  // grew the slabs by 200 MB and page clearing took 7-10% of the worker's CPU time.
  const warmup = buildWorkload(18_000, { seed: 4, baseTimeMs: Date.now() - 120_000 });
  // Three times the receiver's workload: about 900k spans.
  const measured = buildWorkload(9000, { seed: 3, baseTimeMs: Date.now() - 60_000 });
  return { warmup, measured, warmupRecords: workloadRecords(warmup), measuredRecords: workloadRecords(measured) };
}

/**
 * Workers on a fresh spans topic (4 partitions) with 100 rules, `processes` of them in a
 * fresh consumer group, started together (the bench broker delays a new group's first
 * rebalance, group.initial.rebalance.delay.ms, so every process starts with its share).
 *
 * The topic holds the warm-up workload, then the measured one in a Kafka transaction left
 * open. The workers read and evaluate the warm-up (V8 compiles the hot code, the 100
 * rules' closures among it: start-up, as the receiver bench's first pass) and fall idle;
 * then the transaction commits and the measured workload is there all at once: the figure
 * is the CPU time and the wall time from the commit until its last trace was evaluated
 * (its idle timeout, 1 s, included: the rate is a lower bound). The cold figure is the
 * warm-up's, from the first record on.
 */
export async function benchWorkers(kafka: KafkaBroker, ws: WorkerWorkloads, processes: number): Promise<Figure> {
  const prefix = `bench.w${processes}.${Date.now()}`;
  const topic = `${prefix}.spans`;
  const partitions = 4;
  await createTopic(kafka, topic, partitions);
  await fillTopic(kafka, topic, ws.warmupRecords);
  const pending = await fillTopicPending(kafka, topic, ws.measuredRecords);
  const config = betraceConfig({
    transport: {
      kind: 'kafka',
      partitions,
      kafka: { brokers: kafka.brokers, spans_topic: topic, rules_topic: `${prefix}.rules`, violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`, worker_group: `${prefix}-w`, session_timeout: '10s' },
    },
    worker: { trace_idle_timeout: '1s' },
  });
  const workers = await Promise.all(Array.from({ length: processes }, (_, i) => startBetrace(config, 'worker', String(i % 2))));
  const cpuNow = () => workers.reduce((sum, p) => sum + cpuSeconds(p.child.pid!), 0);
  const totals = async () => {
    let consumed = 0;
    let evaluated = 0;
    for (const p of workers) {
      const [c, e] = await metrics(p.apiUrl, ['betrace_worker_spans_consumed_total', 'betrace_worker_traces_evaluated_total']);
      consumed += c!;
      evaluated += e!;
    }
    return { consumed, evaluated };
  };
  // Until `spans` were consumed and `traces` evaluated, counted from the last poll that saw no
  // more than `before` consumed (polls of a busy worker are answered late: no clock).
  const consume = async (before: number, spans: number, traces: number) => {
    let from = { cpu: cpuNow(), at: performance.now() };
    let started = false;
    await waitFor(
      async () => {
        const at = performance.now();
        const cpu = cpuNow();
        const t = await totals();
        if (t.consumed <= before) from = { cpu, at };
        else started = true;
        return t.consumed >= spans && t.evaluated >= traces ? true : undefined;
      },
      600_000,
      'workers to consume the topic',
      () => (started ? METRICS_POLL_MS : 20),
    );
    return { cpu: cpuNow() - from.cpu, seconds: (performance.now() - from.at) / 1000 };
  };
  try {
    const cold = await consume(0, ws.warmup.spans, ws.warmup.traces);
    const idle = { cpu: cpuNow(), at: performance.now() };
    await pending.commit();
    // BENCH_MEASURE_MARKER: a file written when the measured part starts (to attach a profiler then).
    if (process.env.BENCH_MEASURE_MARKER) writeFileSync(process.env.BENCH_MEASURE_MARKER, `${workers.map((p) => p.child.pid).join(' ')}\n`);
    await consume(ws.warmup.spans, ws.warmup.spans + ws.measured.spans, ws.warmup.traces + ws.measured.traces);
    const cpu = cpuNow() - idle.cpu;
    const seconds = (performance.now() - idle.at) / 1000;
    let violationWriteFailures = 0;
    for (const p of workers) violationWriteFailures += await metric(p.apiUrl, 'betrace_violation_writes_failed_total');
    return {
      violationWriteFailures,
      spansPerSecond: ws.measured.spans / seconds,
      cpuSecondsPerMillionSpans: (cpu / ws.measured.spans) * 1e6,
      coldCpuSecondsPerMillionSpans: (cold.cpu / ws.warmup.spans) * 1e6,
      peakRssBytes: Math.max(...workers.map((p) => rssBytes(p.child.pid!, 'VmHWM'))),
    };
  } finally {
    for (const p of workers) await stop(p.child);
  }
}

/** Everything in one process (embedded): receiver, workers with 100 rules, forwarder to a sink. */
export async function benchEndToEnd(w: Workload, file: string): Promise<Figure> {
  const sink = await countingSink();
  const config = betraceConfig({ downstream: { endpoint: sink.url }, worker: { trace_idle_timeout: '1s' } });
  const b = await startBetrace(config, 'receiver,worker,forwarder,api');
  const cpu0 = cpuSeconds(b.child.pid!);
  const started = performance.now();
  const r = await runClient(file, b.grpcUrl, 16);
  await waitFor(async () => (sink.spans() >= w.spans && (await metric(b.apiUrl, 'betrace_worker_traces_evaluated_total')) >= w.traces ? true : undefined), 300_000, 'all spans forwarded and evaluated', METRICS_POLL_MS);
  const seconds = Math.max(r.seconds, (performance.now() - started) / 1000);
  const cpu = cpuSeconds(b.child.pid!) - cpu0;
  await stop(b.child);
  sink.close();
  return { spansPerSecond: w.spans / seconds, cpuSecondsPerMillionSpans: (cpu / w.spans) * 1e6 };
}

/** Last span in → violation span out, at a steady 20k spans/s, default 5 s idle timeout. */
export async function benchDetectionLatency(): Promise<{ p50Ms: number; p99Ms: number; idleTimeoutMs: number; violations: number }> {
  const w = buildWorkload(4000, { seed: 7, batchSpans: 64, marker: (t) => t % 10 === 0 });
  const file = workloadFile(w);
  const sink = await countingSink();
  const config = betraceConfig({ downstream: { endpoint: sink.url, batch_timeout: '50ms' } });
  const b = await startBetrace(config, 'receiver,worker,forwarder,api');
  const r = await runClient(file, b.grpcUrl, 8, 20_000);
  const lastSend = new Map<string, number>();
  w.requests.forEach((req, i) => {
    for (const t of scanRequest(req).traceIds) lastSend.set(t, Math.max(lastSend.get(t) ?? 0, r.sendTimes![i]!));
  });
  const expected = Math.ceil(w.traces / 10);
  await waitFor(() => (sink.violations.size >= expected ? true : undefined), 120_000, 'violation spans');
  const latencies = [...sink.violations].map(([trace, at]) => at - lastSend.get(trace)!).sort((a, b) => a - b);
  await stop(b.child);
  sink.close();
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { p50Ms: q(0.5), p99Ms: q(0.99), idleTimeoutMs: 5000, violations: latencies.length };
}

/** RSS growth per span held in open traces, with about a million buffered. */
export async function benchMemoryPerSpan(): Promise<{ bytesPerSpan: number; bufferedSpans: number }> {
  const w = buildWorkload(10_000, { seed: 11 });
  const file = workloadFile(w);
  const config = betraceConfig({ worker: { trace_idle_timeout: '10m', trace_max_duration: '20m', max_live_traces: 1_000_000 } });
  const b = await startBetrace(config, 'receiver,worker,forwarder,api');
  await new Promise((r) => setTimeout(r, 2000));
  const before = rssBytes(b.child.pid!);
  await runClient(file, b.grpcUrl, 8);
  await waitFor(async () => ((await metric(b.apiUrl, 'betrace_worker_live_spans')) >= w.spans ? true : undefined), 120_000, 'spans buffered');
  await new Promise((r) => setTimeout(r, 3000));
  const after = rssBytes(b.child.pid!);
  await stop(b.child);
  return { bytesPerSpan: (after - before) / w.spans, bufferedSpans: w.spans };
}

/** BENCH_ONLY=receiver_kafka,worker_kafka_1 runs only those figures (for profiling one part). */
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const selected = (name: string) => only === undefined || only.includes(name);

export async function runPipelineBench(options: { runs?: number } = {}): Promise<Record<string, number>> {
  const runs = options.runs ?? 3;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const out: Record<string, number> = {};
  const w = buildWorkload(3000, { seed: 1 });
  const file = workloadFile(w);
  out.workload_spans = w.spans;
  const figures = async (name: string, fn: () => Promise<Figure>) => {
    if (!selected(name)) return;
    const rs: Figure[] = [];
    for (let i = 0; i < runs; i++) rs.push(await fn());
    out[`${name}_spans_per_s`] = Math.round(median(rs.map((r) => r.spansPerSecond)));
    out[`${name}_cpu_s_per_1m_spans`] = Number(median(rs.map((r) => r.cpuSecondsPerMillionSpans)).toFixed(2));
    out[`${name}_spans_per_core_s`] = Math.round(1e6 / median(rs.map((r) => r.cpuSecondsPerMillionSpans)));
    const cold = rs.flatMap((r) => (r.coldCpuSecondsPerMillionSpans === undefined ? [] : [r.coldCpuSecondsPerMillionSpans]));
    if (cold.length > 0) out[`${name}_cold_cpu_s_per_1m_spans`] = Number(median(cold).toFixed(2));
    const coldNote = cold.length > 0 ? ` (warm-up: ${out[`${name}_cold_cpu_s_per_1m_spans`]})` : '';
    const rss = rs.flatMap((r) => (r.peakRssBytes === undefined ? [] : [r.peakRssBytes]));
    if (rss.length > 0) out[`${name}_peak_rss_mb`] = Math.round(median(rss) / 2 ** 20);
    const rssNote = rss.length > 0 ? `, peak RSS ${out[`${name}_peak_rss_mb`]} MiB` : '';
    const failures = rs.reduce((sum, r) => sum + (r.violationWriteFailures ?? 0), 0);
    if (failures > 0) out[`${name}_violation_write_failures`] = failures;
    const failureNote = failures > 0 ? `; ${failures} failed writes to the violations topic: not a worker's figure` : '';
    process.stderr.write(`  ${name}: ${out[`${name}_spans_per_s`]} spans/s, ${out[`${name}_cpu_s_per_1m_spans`]} CPU-s per 1M spans${coldNote}${rssNote}${failureNote}\n`);
  };
  // Embedded figures first, with no broker running: a JVM warming up (JIT and GC threads on
  // every core) is not part of them.
  await figures('receiver_embedded', () => benchReceiver('embedded', w, file));
  await figures('end_to_end', () => benchEndToEnd(w, file));
  if (['receiver_kafka', 'worker_kafka_1', 'worker_kafka_2'].some(selected)) {
    const kafka = await startKafka({ heap: '1g', properties: { 'group.initial.rebalance.delay.ms': 4000 } });
    try {
      await figures('receiver_kafka', () => benchReceiver('kafka', w, file, kafka));
      if (selected('worker_kafka_1') || selected('worker_kafka_2')) {
        const ws = workerWorkloads();
        out.worker_workload_spans = ws.measured.spans;
        out.worker_warmup_spans = ws.warmup.spans;
        await figures('worker_kafka_1', () => benchWorkers(kafka, ws, 1));
        await figures('worker_kafka_2', () => benchWorkers(kafka, ws, 2));
      }
      if (selected('worker_kafka_1') && selected('worker_kafka_2')) out.worker_scaling_2_over_1 = Number((out.worker_kafka_2_spans_per_s! / out.worker_kafka_1_spans_per_s!).toFixed(2));
    } finally {
      await kafka.destroy();
    }
  }
  if (selected('detection_latency')) {
    const latency = await benchDetectionLatency();
    out.detection_latency_p50_ms = latency.p50Ms;
    out.detection_latency_p99_ms = latency.p99Ms;
    process.stderr.write(`  detection latency at 20k spans/s: p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms (${latency.violations} violations)\n`);
  }
  if (selected('memory')) {
    const memory = await benchMemoryPerSpan();
    out.rss_bytes_per_buffered_span = Math.round(memory.bytesPerSpan);
    out.buffered_spans = memory.bufferedSpans;
    process.stderr.write(`  memory: ${out.rss_bytes_per_buffered_span} bytes RSS per buffered span at ${memory.bufferedSpans} spans\n`);
  }
  return out;
}

if (import.meta.main) {
  const figures = await runPipelineBench({ runs: Number(process.env.BENCH_RUNS ?? 3) });
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
