/**
 * Idle cost of each role: betrace processes with no traffic, CPU time over 30 s once
 * they have settled (15 s after start), and their RSS. Kafka roles (`--roles receiver`,
 * `worker`, `forwarder`, `api`) run against one local broker with Kafka's own consumer
 * group timings (heartbeat 5 s, session 45 s; the tests' broker shortens them), the
 * all-in-one process on the embedded transport. The target (issue #28): at most 0.2% of
 * a core each.
 *
 * Run: node test/bench/idle-bench.ts (part of `npm run bench`). Prints one JSON line.
 * Not a test: nothing is asserted.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startKafka, uniqueName } from '../helpers/kafka.ts';
import { spawnBetrace, type BetraceProcess } from '../helpers/process.ts';
import { cpuSeconds, rssBytes } from './pipeline-bench.ts';

const ROLES = ['receiver', 'worker', 'forwarder', 'api', 'all-in-one'] as const;
const SETTLE_MS = 15_000;
const MEASURE_MS = 30_000;

export async function runIdleBench(): Promise<Record<string, number>> {
  const kafka = await startKafka({ properties: { 'group.consumer.heartbeat.interval.ms': 5000, 'group.consumer.session.timeout.ms': 45_000 } });
  const dir = mkdtempSync(join(tmpdir(), 'betrace-idle-bench-'));
  const prefix = uniqueName('idle');
  const procs: Array<{ role: (typeof ROLES)[number]; b: BetraceProcess }> = [];
  try {
    for (const role of ROLES) {
      const file = join(dir, `${role}.yaml`);
      const kafkaMode = role !== 'all-in-one';
      writeFileSync(
        file,
        stringify({
          receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { endpoint: '127.0.0.1:0' } },
          api: { endpoint: '127.0.0.1:0' },
          data_dir: join(dir, `data-${role}`),
          // A downstream nobody answers: the forwarder and the violations exporter are built, and idle.
          downstream: { endpoint: 'http://127.0.0.1:1' },
          ...(kafkaMode
            ? {
                transport: {
                  kind: 'kafka',
                  kafka: { brokers: kafka.brokers, spans_topic: `${prefix}.spans`, rules_topic: `${prefix}.rules`, violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`, worker_group: `${prefix}-w`, forwarder_group: `${prefix}-f` },
                },
              }
            : {}),
        }),
      );
      procs.push({ role, b: spawnBetrace(`idle-${role}`, ['run', '--config', file, ...(kafkaMode ? ['--roles', role] : [])]) });
    }
    for (const { b } of procs) await b.waitFor(/betrace started/, 120_000);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const before = procs.map(({ b }) => cpuSeconds(b.child.pid!));
    await new Promise((r) => setTimeout(r, MEASURE_MS));
    const out: Record<string, number> = {};
    procs.forEach(({ role, b }, i) => {
      const key = role.replace(/-/g, '_');
      out[`idle_${key}_cpu_percent`] = ((cpuSeconds(b.child.pid!) - before[i]!) / (MEASURE_MS / 1000)) * 100;
      out[`idle_${key}_rss_mib`] = rssBytes(b.child.pid!) / 2 ** 20;
    });
    return out;
  } finally {
    for (const { b } of procs) await b.stop();
    await kafka.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const r = await runIdleBench();
  for (const [k, v] of Object.entries(r)) process.stderr.write(`${k.padEnd(32)} ${v.toFixed(2)}\n`);
  console.log(JSON.stringify({ bench: 'idle', ...r }));
}
