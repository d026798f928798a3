/**
 * The worker role: the evaluator pool, the violations exporter (when downstream is set), the
 * violation store (embedded) or the violation ledger (Kafka), the rule quarantine, and the
 * worker's consumer group. Every one of them goes into the lifecycle list here; the Worker
 * starts and stops its consumer only. Imported by pipeline.ts only.
 */
import { QueuedExporter, createOtlpGrpcSender } from '../../exporter/index.ts';
import { RuleQuarantine } from '../../ruleset/rule-quarantine.ts';
import type { RuleStore } from '../../ruleset/rule-store.ts';
import { TraceIndexWriter } from '../../transport/kafka-index.ts';
import { ViolationLedger } from '../../violations/kafka-ledger.ts';
import { Notifier } from '../../notify/index.ts';
import { ViolationStore, type ViolationSink } from '../../violations/index.ts';
import { EvaluatorPool, Worker } from '../../worker/index.ts';
import { once } from '../lifecycle.ts';
import type { NamedCheck, Shared } from './shared.ts';

export interface WorkerRole {
  /** The violation store (embedded); with Kafka the violations topic holds them. */
  readonly violations: ViolationStore | undefined;
  /** violation_store (embedded), degraded only. */
  readonly checks: readonly NamedCheck[];
}

export function buildWorker(s: Shared, ruleStore: RuleStore, evaluatorThreadModule: URL | undefined): WorkerRole {
  const { config, kafkaMode, rules, metrics, logger, lifecycle } = s;
  const sinks: ViolationSink[] = [];
  const ledger = kafkaMode ? new ViolationLedger({ config: config.transport.kafka, metrics, logger, catchUpMs: config.worker.lateSpanGraceMs + 30_000 }) : undefined;
  let violations: ViolationStore | undefined;
  const checks: NamedCheck[] = [];
  if (ledger === undefined) {
    const store = new ViolationStore({ dataDir: config.dataDir, logger, metrics, maxAgeMs: config.violations.maxAgeMs, maxBytes: config.violations.maxBytes });
    lifecycle.add('violation store', 'stores', store);
    sinks.push(store);
    violations = store;
    checks.push([
      'violation_store',
      () => {
        const h = store.health();
        // Degraded, not unready: receiving, evaluation and violation spans go on; a 503 would take an
        // all-in-one pod out of its Service and cost every client its spans over a full disk.
        return h.degraded ? { ready: true, degraded: h.reason } : { ready: true };
      },
    ]);
  }
  // Notifications: embedded mode only; with Kafka nothing is sent (said at start when routes are set).
  const n = config.notifications;
  if (ledger === undefined) {
    const notifier = new Notifier({ config: n, dataDir: config.dataDir, rules, logger, metrics });
    lifecycle.add('notifier', 'exporters', notifier);
    sinks.push(notifier);
  } else {
    // Started after the rule files, so their alerts are known.
    lifecycle.add('notifications (not in Kafka mode)', 'stores', {
      start: () => {
        if (Object.values(n.defaults).some((d) => d.length > 0) || rules.all().some((r) => r.definition.alerts !== undefined)) {
          logger.warn('notifications are sent with transport.kind embedded only: with Kafka no notification is sent (notifications.defaults and alerts: are ignored)');
        }
        return Promise.resolve();
      },
      shutdown: () => Promise.resolve(),
    });
  }
  const pool = new EvaluatorPool({
    threads: config.worker.evaluationThreads,
    logger,
    limits: config.worker,
    stallMarginMs: config.worker.evaluationStallMarginMs,
    ...(evaluatorThreadModule === undefined ? {} : { threadModule: evaluatorThreadModule }),
  });
  // Stopped after the worker: the traces still assembling at shutdown are evaluated on it.
  lifecycle.add('evaluator pool', 'consumers', pool);
  const quarantine = new RuleQuarantine({
    registry: rules,
    store: ruleStore,
    after: config.worker.quarantineAfter,
    windowMs: config.worker.quarantineWindowMs,
    budgetMs: config.worker.evaluationBudgetMs,
    metrics,
    logger,
  });
  rules.onChange(() => pool.setRules(rules.definitions()));
  const exporter = config.downstream.endpoint
    ? new QueuedExporter({
        name: 'violations',
        sender: createOtlpGrpcSender(config.downstream),
        config: { ...config.downstream, batchTimeoutMs: Math.min(config.downstream.batchTimeoutMs, 50) },
        metrics,
        logger,
        keepAbandoned: kafkaMode,
      })
    : undefined;
  if (exporter !== undefined) {
    s.exporters.push(['violations', exporter]);
    lifecycle.add('violations exporter', 'exporters', exporter);
  }
  // Drained by the worker's final step (below) or, if the worker never got there, in the stores phase.
  let stopLedger: (() => Promise<void>) | undefined;
  if (ledger !== undefined) {
    const stop = once(() => ledger.shutdown());
    stopLedger = stop;
    lifecycle.add('violation ledger', 'stores', { start: () => ledger.start(), shutdown: stop });
  }
  // Kafka: the trace index (written before a trace's records are acknowledged).
  let stopIndex: (() => Promise<void>) | undefined;
  const index = kafkaMode ? new TraceIndexWriter({ config: config.transport.kafka, metrics, logger }) : undefined;
  if (index !== undefined) {
    const stop = once(() => index.shutdown());
    stopIndex = stop;
    lifecycle.add('trace index', 'stores', { start: () => index.start(), shutdown: stop });
  }
  const w = config.worker;
  const worker = new Worker({
    transport: s.transport,
    group: config.transport.kafka.workerGroup,
    pool,
    windows: {
      idleMs: w.traceIdleTimeoutMs,
      maxDurationMs: w.traceMaxDurationMs,
      rootIdleMs: w.rootIdleTimeoutMs,
      maxSpans: w.maxSpansPerTrace,
      maxBytes: w.maxTraceBytes,
      graceMs: w.lateSpanGraceMs,
    },
    maxLiveTraces: w.maxLiveTraces,
    evaluationBudgetMs: w.evaluationBudgetMs,
    exporter,
    sinks,
    ledger,
    index,
    metrics,
    logger,
    evaluateOnShutdown: !kafkaMode,
    onOverBudget: (ruleId, stalled) => quarantine.overrun(ruleId, stalled),
    // The ledger is written before a trace's spans go downstream, so it is drained after the
    // exporter flushed; both before the final commit, which then carries those traces.
    beforeFinalCommit: async () => {
      await exporter?.shutdown();
      await stopLedger?.();
      await stopIndex?.();
    },
  });
  lifecycle.add('worker', 'consumers', worker);
  return { violations, checks };
}
