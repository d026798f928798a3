/**
 * What every role of a process shares: the metrics, the transport (embedded or Kafka, with its
 * topics and reachability probe), the rule registry with the rule files, the rule store (workers
 * and the API), the exporters to abandon at the shutdown deadline, and the lifecycle list the
 * role builders add their components to. Imported by the role builders and pipeline.ts only.
 */
import type { ReadinessCheck } from '../../api/index.ts';
import type { Config } from '../../config/index.ts';
import type { QueuedExporter } from '../../exporter/index.ts';
import { KafkaRuleStore } from '../../ruleset/kafka-rules.ts';
import { FileRuleStore, type RuleStore } from '../../ruleset/rule-store.ts';
import { RuleFiles, RuleRegistry } from '../../ruleset/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { createMetrics, type Metrics } from '../../telemetry/metrics.ts';
import { createEmbeddedTransport } from '../../transport/embedded.ts';
import { LocalHistory } from '../../transport/local-history.ts';
import { KafkaTransport } from '../../transport/kafka.ts';
import type { Transport } from '../../transport/transport.ts';
import { Lifecycle } from '../lifecycle.ts';

export const ALL_ROLES = ['receiver', 'worker', 'forwarder', 'api'] as const;
export type Role = (typeof ALL_ROLES)[number];

/** A readiness check with its name on /ready. */
export type NamedCheck = readonly [name: string, check: ReadinessCheck];

/** An exporter the shutdown deadline abandons, by the name its log line and readiness check use. */
export type NamedExporter = readonly [name: 'forwarder' | 'violations', exporter: QueuedExporter];

export interface Shared {
  readonly config: Config;
  readonly roles: readonly Role[];
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly kafkaMode: boolean;
  readonly transport: Transport;
  /** The Kafka transport, when the transport is Kafka. */
  readonly kafka: KafkaTransport | undefined;
  readonly rules: RuleRegistry;
  readonly ruleFiles: RuleFiles;
  readonly lifecycle: Lifecycle;
  /** Filled by the worker and forwarder builders, in build order. */
  readonly exporters: NamedExporter[];
  readonly has: (role: Role) => boolean;
}

export function buildShared(config: Config, roles: readonly Role[], logger: Logger): Shared {
  const metrics = createMetrics();
  const kafkaMode = config.transport.kind === 'kafka';
  // Without Kafka there is nothing to reach: the gauge is not exported (it would read 0).
  if (!kafkaMode) metrics.registry.removeSingleMetric('betrace_transport_kafka_reachable');
  if (!kafkaMode && roles.length < ALL_ROLES.length) {
    throw new Error('the embedded transport runs every role in one process; use transport.kind: kafka to split roles');
  }
  const lifecycle = new Lifecycle(logger);
  let transport: Transport;
  let kafka: KafkaTransport | undefined;
  if (kafkaMode) {
    const k = new KafkaTransport({
      config: config.transport.kafka,
      partitions: config.transport.partitions,
      partitioner: config.transport.partitioner,
      retryAfterMs: config.receiver.retryAfterMs,
      metrics,
      logger,
    });
    transport = kafka = k;
    // Topics first; the reachability probe runs for as long as the process does (readiness of every role).
    lifecycle.add('kafka topics and probe', 'stores', {
      start: async () => {
        await k.prepare();
        k.kafkaHealth.start();
      },
      shutdown: () => k.kafkaHealth.stop(),
    });
  } else {
    const { history: h } = config.transport;
    const history = h.enabled ? new LocalHistory({ dir: h.dir, maxAgeMs: h.maxAgeMs, maxBytes: h.maxBytes, segmentBytes: h.segmentBytes, metrics, logger }) : undefined;
    // Opened before anything is received; closed once intake and consumers stopped.
    if (history !== undefined) lifecycle.add('local history', 'stores', { start: () => history.start(), shutdown: () => history.stop() });
    transport = createEmbeddedTransport({
      ...(history === undefined ? {} : { history }),
      partitions: config.transport.partitions,
      partitioner: config.transport.partitioner,
      maxQueuedBytes: config.transport.maxQueuedBytes,
      retryAfterMs: config.receiver.retryAfterMs,
      metrics,
    });
  }
  const rules = new RuleRegistry();
  rules.onChange(() => metrics.rulesQuarantined.set(rules.quarantined().length));
  const ruleFiles = new RuleFiles({ patterns: config.rules.paths, registry: rules, logger, metrics });
  lifecycle.add('rule files', 'stores', ruleFiles);
  return { config, roles, logger, metrics, kafkaMode, transport, kafka, rules, ruleFiles, lifecycle, exporters: [], has: (role) => roles.includes(role) };
}

/** The rules added through the API (workers read them, the api role writes them): a file, or the rules topic. */
export function buildRuleStore(s: Shared): RuleStore {
  const { config, rules, logger } = s;
  const store = s.kafkaMode
    ? new KafkaRuleStore({ config: config.transport.kafka, topic: config.transport.kafka.rulesTopic, registry: rules, logger })
    : new FileRuleStore({ dataDir: config.dataDir, registry: rules, logger });
  s.lifecycle.add('rule store', 'stores', store);
  return store;
}

/**
 * Every role: whether this process's Kafka clients can reach the cluster. With the spool on,
 * the receiver goes on acknowledging exports (to its disk): degraded, not unready.
 */
export function transportCheck(kafka: KafkaTransport, spooling: boolean): NamedCheck {
  return [
    'transport',
    () => {
      const h = kafka.health();
      if (h.ok) return { ready: true };
      const reason = h.reason ?? 'Kafka unreachable';
      return spooling ? { ready: true, degraded: `${reason} (exports are spooled to disk)` } : { ready: false, reason };
    },
  ];
}

export function ruleChecks(s: Shared): { rules: NamedCheck; quarantined: NamedCheck } {
  const { rules, ruleFiles } = s;
  return {
    rules: [
      'rules',
      () => {
        const failing = ruleFiles.failingFiles;
        return failing.length === 0 || rules.all().length > 0 ? { ready: true } : { ready: false, reason: `rule files do not compile: ${failing.join(', ')}` };
      },
    ],
    // A quarantined rule does not make the process unready (it evaluates every other rule, and in Kafka
    // mode a quarantine holds on every worker: failing readiness would stop intake everywhere); /ready says so.
    quarantined: [
      'rules_quarantined',
      () => {
        const q = rules.quarantined().flatMap((r) => (r.quarantine === undefined ? [] : [`${r.definition.id} (${r.quarantine.reason}, since ${r.quarantine.since})`]));
        return q.length === 0 ? { ready: true } : { ready: true, degraded: `quarantined: ${q.join('; ')}` };
      },
    ],
  };
}
