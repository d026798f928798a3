/**
 * Replay throughput per process: spans read per second, from trace files (the
 * Collector file exporter's protobuf stream) and from a Kafka spans topic (its
 * own broker, startKafka()), median of 3 runs each.
 *
 * History: 40,000 shop traces of 8–10 spans in ~3 records each (one per service,
 * as the receiver writes them), plus 25% health-check traces no seed rule is
 * triggered by; 1% of shop traces break a rule.
 *   all-rules: the four seed rules (every shop trace holds a trigger: decoded);
 *   one-rule:  admin-audit-log only (a third of shop traces hold admin.action;
 *              the rest are skipped undecoded by the trigger scan).
 *
 * Run: node test/bench/replay-bench.ts  (prints a table and one JSON line)
 * Goal: >= 300k spans/s per process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, parseConfig, type Config } from '../../src/config/index.ts';
import { resolveRules, runReplay, type ReplayReport, type ReplaySource } from '../../src/replay/index.ts';
import type { CompiledRule } from '../../src/rules/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { startKafka, uniqueName } from '../helpers/kafka.ts';
import { BASE_MS, noiseTrace, produceHistory, recordsOf, shopTrace, writeHistoryFiles, type Breaks, type SimTrace } from '../replay/history.ts';

const TRACES = 40_000;
const RUNS = 3;
const PARTITIONS = 4;
const RULES = resolve('config/rules/seed-invariants.yaml');
const BREAKS: Breaks[] = ['payment-idempotency', 'admin-audit-log', 'shipment-requires-payment', 'cross-tenant-isolation'];

function history(): SimTrace[] {
  const traces: SimTrace[] = [];
  const start = BASE_MS - 10 * 86_400_000;
  for (let i = 0; i < TRACES; i++) {
    const at = start + i * 2000;
    if (i % 4 === 3) traces.push(noiseTrace(`b${i}`, at));
    else traces.push(shopTrace(`b${i}`, at, i % 100 === 0 ? BREAKS[(i / 100) % 4] : undefined, { admin: i % 3 === 0 }));
  }
  return traces;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function rules(ids: readonly string[] | undefined): Promise<CompiledRule[]> {
  const config = loadConfig(undefined, {});
  const r = await resolveRules({ kind: 'file', path: RULES }, config);
  if (!r.ok) throw new Error(r.error);
  return ids === undefined ? r.rules : r.rules.filter((x) => ids.includes(x.definition.id));
}

async function measure(source: ReplaySource, ruleSet: CompiledRule[], config: Config): Promise<{ rate: number; report: ReplayReport }> {
  const rates: number[] = [];
  let report: ReplayReport | undefined;
  for (let i = 0; i < RUNS; i++) {
    const r = await runReplay({ rules: ruleSet, fromMs: BASE_MS - 30 * 86_400_000, toMs: BASE_MS, source, config, logger: createLogger('error', process.stderr) });
    if (!r.ok) throw new Error(r.error);
    rates.push(r.report.spans_per_second);
    report = r.report;
  }
  return { rate: median(rates), report: report! };
}

export async function runReplayBench(): Promise<Record<string, number>> {
  const traces = history();
  const records = recordsOf(traces);
  const dir = await mkdtemp(join(tmpdir(), 'betrace-replay-bench-'));
  const out: Record<string, number> = { traces: traces.length, records: records.length, spans: traces.reduce((n, t) => n + t.spans.length, 0) };
  const all = await rules(undefined);
  const one = await rules(['admin-audit-log']);
  try {
    await writeHistoryFiles(dir, records, 5000);
    const files: ReplaySource = { kind: 'files', patterns: [join(dir, 'traces-*.pb')] };
    const defaults = loadConfig(undefined, {});
    await measure(files, all, defaults); // warm-up
    const fa = await measure(files, all, defaults);
    out.files_all_rules_spans_per_s = fa.rate;
    out.files_all_rules_violations = fa.report.total;
    const fo = await measure(files, one, defaults);
    out.files_one_rule_spans_per_s = fo.rate;
    out.files_one_rule_skipped_traces = fo.report.traces_skipped;

    const broker = await startKafka();
    try {
      const topic = uniqueName('replay-bench');
      await produceHistory(broker.brokers, topic, PARTITIONS, records);
      const env = { BETRACE_KAFKA_BROKERS: broker.brokers.join(',') };
      const config = parseConfig(`transport:\n  kafka:\n    spans_topic: ${topic}\n`, { env });
      const kafka: ReplaySource = { kind: 'kafka' };
      const ka = await measure(kafka, all, config);
      out.kafka_all_rules_spans_per_s = ka.rate;
      out.kafka_all_rules_violations = ka.report.total;
      const ko = await measure(kafka, one, config);
      out.kafka_one_rule_spans_per_s = ko.rate;
    } finally {
      await broker.destroy();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

if (import.meta.main) {
  const r = await runReplayBench();
  const row = (name: string, key: string) => `| ${name.padEnd(22)} | ${String(r[key]).padStart(12)} |`;
  console.log(
    [
      `replay bench: ${r.traces} traces, ${r.spans} spans, ${r.records} records; median of ${RUNS} runs, one process`,
      '| source / rules         |      spans/s |',
      '|:-----------------------|-------------:|',
      row('files, 4 seed rules', 'files_all_rules_spans_per_s'),
      row('files, 1 rule', 'files_one_rule_spans_per_s'),
      row('kafka, 4 seed rules', 'kafka_all_rules_spans_per_s'),
      row('kafka, 1 rule', 'kafka_one_rule_spans_per_s'),
    ].join('\n'),
  );
  console.log(JSON.stringify({ bench: 'replay', ...r }));
}
