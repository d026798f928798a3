/**
 * `npm run bench`: every benchmark, one table, the same figures as JSON
 * (bench-results/<date>.json, for comparing over time). Each pipeline figure
 * is the median of BENCH_RUNS runs (default 3). Not a test: nothing here
 * asserts a speed; the targets are printed beside the figures.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

type Row = [what: string, figure: string, target: string];

const started = new Date();
const runs = Number(process.env.BENCH_RUNS ?? 3);
process.stderr.write(`betrace benchmarks on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ${runs} runs each\n`);

/**
 * Each part in a process of its own: what one part leaves behind (a large heap
 * to collect, code compiled for other work) must not weigh on the next.
 * Resolves with the figures of the part's last output line (JSON).
 */
function part(file: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, file)], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        const { bench: _bench, ...figures } = JSON.parse(last) as Record<string, number> & { bench?: string };
        resolve(figures);
      } catch {
        reject(new Error(`${file} exited with ${code}: ${out.slice(-2000)}`));
      }
    });
  });
}

const figures: Record<string, number> = {};
process.stderr.write('rule evaluation…\n');
Object.assign(figures, await part('rules-bench.ts'));
process.stderr.write('pipeline…\n');
Object.assign(figures, await part('pipeline-bench.ts'));
process.stderr.write('replay…\n');
Object.assign(figures, Object.fromEntries(Object.entries(await part('replay-bench.ts')).map(([k, v]) => [`replay_${k}`, v])));
process.stderr.write('side by side with the OpenTelemetry Collector…\n');
Object.assign(figures, await part('collector-bench.ts'));
process.stderr.write('idle roles…\n');
Object.assign(figures, await part('idle-bench.ts'));
process.stderr.write('replay at scale…\n');
Object.assign(figures, Object.fromEntries(Object.entries(await part('replay-scale-bench.ts')).map(([k, v]) => [`replay_scale_${k}`, v])));

const f = (k: string, digits = 0) => (figures[k] === undefined ? 'n/a' : figures[k].toLocaleString('en-US', { maximumFractionDigits: digits }));
const rows: Row[] = [
  ['receiver → embedded transport', `${f('receiver_embedded_spans_per_s')} spans/s; ${f('receiver_embedded_cpu_s_per_1m_spans', 2)} CPU-s/1M spans = ${f('receiver_embedded_spans_per_core_s')} spans/s per core`, '>= 250k spans/s per core'],
  ['receiver → Kafka (acks=all)', `${f('receiver_kafka_spans_per_s')} spans/s; ${f('receiver_kafka_cpu_s_per_1m_spans', 2)} CPU-s/1M spans = ${f('receiver_kafka_spans_per_core_s')} spans/s per core`, '>= 150k spans/s per core'],
  ['worker from Kafka, 100 rules, 1 process', `${f('worker_kafka_1_spans_per_s')} spans/s; ${f('worker_kafka_1_cpu_s_per_1m_spans', 2)} CPU-s/1M = ${f('worker_kafka_1_spans_per_core_s')} spans/s per core (${f('worker_workload_spans')} spans)`, '>= 200k spans/s per core'],
  ['worker from Kafka, 100 rules, 2 processes', `${f('worker_kafka_2_spans_per_s')} spans/s (x${f('worker_scaling_2_over_1', 2)} of 1 process)`, 'near-linear'],
  ['end to end (embedded, 100 rules, forwarder)', `${f('end_to_end_spans_per_s')} spans/s; ${f('end_to_end_cpu_s_per_1m_spans', 2)} CPU-s/1M spans`, ''],
  ['rule evaluation, 100 rules, one core', `${f('rules_100_spans_per_s')} spans/s; 1000 rules cost x${f('cost_ratio_1000_vs_10', 2)} of 10`, '>= 2M spans/s; <= 3x'],
  ['detection latency at 20k spans/s (idle 5 s)', `p50 ${f('detection_latency_p50_ms')} ms, p99 ${f('detection_latency_p99_ms')} ms`, 'p99 <= 5,500 ms'],
  ['RSS per buffered span', `${f('rss_bytes_per_buffered_span')} bytes at ${f('buffered_spans')} spans`, '<= 1.5 KB'],
  ['replay from files (4 rules / 1 rule)', `${f('replay_files_all_rules_spans_per_s')} / ${f('replay_files_one_rule_spans_per_s')} spans/s per process`, '>= 300k spans/s'],
  ['replay from Kafka (4 rules / 1 rule)', `${f('replay_kafka_all_rules_spans_per_s')} / ${f('replay_kafka_one_rule_spans_per_s')} spans/s per process`, '>= 300k spans/s'],
  ['replay cost per trace, 5M / 50k traces (files; local log)', `full scan x${f('replay_scale_files_full_cost_ratio', 2)}; x${f('replay_scale_history_full_cost_ratio', 2)} (trigger scan x${f('replay_scale_files_trigger_cost_ratio', 2)}; x${f('replay_scale_history_trigger_cost_ratio', 2)})`, '<= 1.2x'],
  ['replay full scan at 5M traces (files; local log)', `${f('replay_scale_files_5000000_full_spans_per_s')}; ${f('replay_scale_history_5000000_full_spans_per_s')} spans/s per process`, '>= 500k spans/s'],
  ['OTLP → OTLP pass-through against the Collector (batch processor)', `x${f('pass_through_cpu_ratio', 2)} its CPU-s/1M spans (${f('pass_through_betrace_cpu_s_per_1m_spans', 2)} / ${f('pass_through_collector_cpu_s_per_1m_spans', 2)}); peak RSS x${f('pass_through_rss_ratio', 2)}`, '<= 0.5x CPU; <= 1.5x RSS'],
  ['OTLP → Kafka (acks all) against the Collector', `x${f('otlp_to_kafka_cpu_ratio', 2)} its CPU-s/1M spans (${f('otlp_to_kafka_betrace_cpu_s_per_1m_spans', 2)} / ${f('otlp_to_kafka_collector_cpu_s_per_1m_spans', 2)}); peak RSS x${f('otlp_to_kafka_rss_ratio', 2)}`, '<= 0.5x CPU'],
  ['idle CPU (receiver, worker, forwarder, api; all-in-one)', `${['receiver', 'worker', 'forwarder', 'api', 'all_in_one'].map((r) => `${f(`idle_${r}_cpu_percent`, 2)}%`).join(', ')} of a core`, '<= 0.2% each'],
  ['idle RSS (same roles)', `${['receiver', 'worker', 'forwarder', 'api', 'all_in_one'].map((r) => `${f(`idle_${r}_rss_mib`)} MiB`).join(', ')}`, ''],
  ['replay from files, 2 processes', `x${f('replay_scale_files_two_processes_speedup', 2)} of 1 process`, '>= 1.8x'],
];
const table = [
  `betrace benchmarks, ${started.toISOString().slice(0, 10)}, ${cpus().length} cores, Node ${process.version}`,
  '',
  '| what | figure (median) | target |',
  '|---|---|---|',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n');
process.stdout.write(`${table}\n`);
const dir = join(import.meta.dirname, '..', '..', 'bench-results');
mkdirSync(dir, { recursive: true });
const json = { date: started.toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, runs, figures };
writeFileSync(join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`), `${JSON.stringify(json, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(json)}\n`);
