/**
 * Assembles the roles of one betrace process from the configuration:
 *
 *   OTLP clients → receiver → transport (partitioned by trace id)
 *                                 ├─ forwarder group → downstream (unchanged spans)
 *                                 └─ worker group → rules → violation spans → downstream
 *   api: health, readiness, metrics, rules, violations
 *
 * Start order is downstream-first (exporters, consumers, then the receiver), so
 * nothing is accepted before it has somewhere to go; shutdown is the reverse, bounded by
 * shutdown_timeout: then the exporters are abandoned (what they hold is dropped and counted
 * with the embedded transport, left unacknowledged with Kafka), said in one log line.
 */
import type { Component } from '../component.ts';
import { isLoopbackHost, type Config } from '../config/index.ts';
import { ApiServer, mountRulesRoutes, mountViolationRoutes } from '../api/index.ts';
import { checkHeaders, createTokenCheck } from '../server/index.ts';
import { mountReplayRoutes } from '../api/replay-routes.ts';
import { ReplayJobs } from '../replay/jobs.ts';
import { KafkaRuleStore } from '../ruleset/kafka-rules.ts';
import { KafkaViolationIndex } from '../violations/kafka-violation-index.ts';
import { FileRuleStore, type RuleStore } from '../ruleset/rule-store.ts';
import { Forwarder, QueuedExporter, createOtlpGrpcSender } from '../exporter/index.ts';
import { GrpcReceiver, HttpReceiver, Ingest, ReceiveBudget } from '../receiver/index.ts';
import { Spool } from '../receiver/spool.ts';
import type { Logger } from '../telemetry/logger.ts';
import { createMetrics, type Metrics } from '../telemetry/metrics.ts';
import { createEmbeddedTransport } from '../transport/embedded.ts';
import type { Transport } from '../transport/transport.ts';
import { KafkaTransport } from '../transport/kafka.ts';
import { ViolationLedger } from '../violations/kafka-ledger.ts';
import { RuleQuarantine } from '../ruleset/rule-quarantine.ts';
import { RuleFiles, RuleRegistry } from '../ruleset/index.ts';
import { ViolationStore, type ViolationReader, type ViolationSink } from '../violations/index.ts';
import { EvaluatorPool, Worker } from '../worker/index.ts';

export const ALL_ROLES = ['receiver', 'worker', 'forwarder', 'api'] as const;
export type Role = (typeof ALL_ROLES)[number];

export interface PipelineOptions {
  readonly config: Config;
  readonly roles: readonly Role[];
  readonly logger: Logger;
  /** The module evaluation threads run (EvaluatorPoolOptions.threadModule); default the evaluator thread. */
  readonly evaluatorThreadModule?: URL;
}

export interface Pipeline extends Component {
  readonly metrics: Metrics;
  readonly transport: Transport;
  readonly rules: RuleRegistry;
  readonly violations: ViolationStore | undefined;
  /** Bound ports (after start), useful when the config asks for port 0. */
  ports(): { grpc?: number; http?: number; api?: number };
}

export function parseRoles(text: string): Role[] | string {
  const roles = text
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  const bad = roles.filter((r) => !(ALL_ROLES as readonly string[]).includes(r));
  if (bad.length > 0) return `unknown role ${bad.join(', ')}; roles are ${ALL_ROLES.join(', ')}`;
  if (roles.length === 0) return `no roles given; roles are ${ALL_ROLES.join(', ')}`;
  return [...new Set(roles)] as Role[];
}

export function createPipeline(options: PipelineOptions): Pipeline {
  const { config, roles, logger } = options;
  const metrics = createMetrics();
  const has = (role: Role) => roles.includes(role);
  const kafkaMode = config.transport.kind === 'kafka';
  // Without Kafka there is nothing to reach: the gauge is not exported (it would read 0).
  if (!kafkaMode) metrics.registry.removeSingleMetric('betrace_transport_kafka_reachable');
  if (!kafkaMode && roles.length < ALL_ROLES.length) {
    throw new Error('the embedded transport runs every role in one process; use transport.kind: kafka to split roles');
  }
  // In start order.
  const components: Component[] = [];
  let transport: Transport;
  let kafka: KafkaTransport | undefined;
  if (kafkaMode) {
    kafka = new KafkaTransport({
      config: config.transport.kafka,
      partitions: config.transport.partitions,
      partitioner: config.transport.partitioner,
      retryAfterMs: config.receiver.retryAfterMs,
      metrics,
      logger,
    });
    transport = kafka;
    const k = kafka;
    // Topics first; the reachability probe runs for as long as the process does (readiness of every role).
    components.push({
      start: async () => {
        await k.prepare();
        k.kafkaHealth.start();
      },
      shutdown: () => k.kafkaHealth.stop(),
    });
  } else {
    transport = createEmbeddedTransport({
      partitions: config.transport.partitions,
      partitioner: config.transport.partitioner,
      maxQueuedBytes: config.transport.maxQueuedBytes,
      retryAfterMs: config.receiver.retryAfterMs,
      metrics,
    });
  }

  // The exporters to abandon at the shutdown deadline, by name.
  const exporters: Array<readonly ['forwarder' | 'violations', QueuedExporter]> = [];
  const rules = new RuleRegistry();
  rules.onChange(() => metrics.rulesQuarantined.set(rules.quarantined().length));
  const ruleFiles = new RuleFiles({ patterns: config.rules.paths, registry: rules, logger, metrics });
  components.push(ruleFiles);
  let violations: ViolationStore | undefined;
  let ruleStore: RuleStore | undefined;
  if (has('worker') || has('api')) {
    ruleStore = kafkaMode
      ? new KafkaRuleStore({ config: config.transport.kafka, topic: config.transport.kafka.rulesTopic, registry: rules, logger })
      : new FileRuleStore({ dataDir: config.dataDir, registry: rules, logger });
    components.push(ruleStore);
  }

  if (has('worker')) {
    const sinks: ViolationSink[] = [];
    let ledger: ViolationLedger | undefined;
    if (kafkaMode) {
      // Started and stopped by the worker (written before spans go downstream, drained before the final commit).
      ledger = new ViolationLedger({ config: config.transport.kafka, metrics, logger, catchUpMs: config.worker.lateSpanGraceMs + 30_000 });
    } else {
      violations = new ViolationStore({ dataDir: config.dataDir, logger, metrics });
      components.push(violations);
      sinks.push(violations);
    }
    const pool = new EvaluatorPool({
      threads: config.worker.evaluationThreads,
      logger,
      limits: config.worker,
      stallMarginMs: config.worker.evaluationStallMarginMs,
      ...(options.evaluatorThreadModule === undefined ? {} : { threadModule: options.evaluatorThreadModule }),
    });
    const quarantine = new RuleQuarantine({
      registry: rules,
      store: ruleStore!,
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
    if (exporter !== undefined) exporters.push(['violations', exporter]);
    const w = config.worker;
    components.push(
      new Worker({
        transport,
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
        metrics,
        logger,
        evaluateOnShutdown: !kafkaMode,
        onOverBudget: (ruleId, stalled) => quarantine.overrun(ruleId, stalled),
      }),
    );
  }
  let api: ApiServer | undefined;
  let grpc: GrpcReceiver | undefined;
  let http: HttpReceiver | undefined;
  let started = false;

  if (has('forwarder') && config.forwarder.enabled) {
    const exporter = new QueuedExporter({
      name: 'forwarder',
      sender: createOtlpGrpcSender(config.downstream),
      config: config.downstream,
      metrics,
      logger,
      whenFull: kafkaMode ? 'wait' : 'wait_while_delivering',
      keepAbandoned: kafkaMode,
    });
    exporters.push(['forwarder', exporter]);
    components.push(
      new Forwarder({ transport, exporter, logger, group: config.transport.kafka.forwarderGroup }),
    );
  } else if (has('forwarder')) {
    logger.info('no downstream.endpoint configured: the forwarder is off');
  }

  let producer: ReturnType<Transport['createProducer']> | undefined;
  let spool: Spool | undefined;
  if (has('receiver')) {
    producer = transport.createProducer();
    // receiver.spool: every export is acknowledged once fsynced to local disk, then drained to Kafka in order.
    if (config.receiver.spool.enabled && kafkaMode) {
      const s = config.receiver.spool;
      spool = new Spool({
        dir: s.dir,
        inner: producer,
        maxBytes: s.maxBytes,
        segmentBytes: s.segmentBytes,
        // Within the pipeline's own bound: what is not handed to Kafka by then stays on disk.
        shutdownTimeoutMs: Math.min(s.shutdownTimeoutMs, config.shutdownTimeoutMs),
        behindMs: s.degradedAfterMs,
        retryAfterMs: config.receiver.retryAfterMs,
        metrics,
        logger,
      });
      producer = spool;
    }
    const ingest = new Ingest({
      producer,
      metrics,
      maxPartBytes: kafkaMode ? config.transport.kafka.maxRecordBytes : undefined,
      maxInFlightBytes: config.receiver.maxInFlightBytes,
      maxSpansPerRequest: config.receiver.maxSpansPerRequest,
      retryAfterMs: config.receiver.retryAfterMs,
    });
    components.push(producer);
    const common = {
      receiveBudget: new ReceiveBudget(config.receiver.maxReceivingBytes, metrics),
      readTimeoutMs: config.receiver.readTimeoutMs,
      maxConnections: config.receiver.maxConnections,
      retryAfterMs: config.receiver.retryAfterMs,
      maxRequestBytes: config.receiver.maxRequestBytes,
      ingest,
      metrics,
      logger,
      tls: config.receiver.tls,
      auth: createTokenCheck(config.receiver.authToken),
    };
    const open = [config.receiver.grpc, config.receiver.http].filter((l) => l.enabled && !isLoopbackHost(l.host)).map((l) => `${l.host}:${l.port}`);
    if (open.length > 0 && config.receiver.authToken === '') {
      // Not refused: a receiver is usually open to the applications of a network.
      logger.warn(
        { endpoints: open },
        'the OTLP receiver listens beyond loopback without receiver.auth_token: anyone who reaches it can send spans (set BETRACE_RECEIVER_TOKEN to require a bearer token)',
      );
    }
    if (config.receiver.grpc.enabled) {
      const h = config.receiver.http;
      const httpEndpoint = (): string | undefined => {
        if (!h.enabled) return undefined;
        const host = h.host === '0.0.0.0' || h.host === '::' ? '<this host>' : h.host.includes(':') ? `[${h.host}]` : h.host;
        return `http${config.receiver.tls === undefined ? '' : 's'}://${host}:${http?.port || h.port}/v1/traces`;
      };
      grpc = new GrpcReceiver({ ...common, httpEndpoint, host: config.receiver.grpc.host, port: config.receiver.grpc.port, flowControlWindowBytes: config.receiver.grpc.flowControlWindowBytes, maxConcurrentStreams: config.receiver.grpc.maxConcurrentStreams });
      components.push(grpc);
    }
    if (config.receiver.http.enabled) {
      http = new HttpReceiver({ ...common, host: config.receiver.http.host, port: config.receiver.http.port });
      components.push(http);
    }
  }

  // Every process serves health, readiness and metrics on the admin port; the api role adds rules and violations.
  if (config.api.enabled) {
    api = new ApiServer({
      host: config.api.host,
      port: config.api.port,
      tls: config.api.tls,
      metrics,
      logger,
      maxConnections: config.api.maxConnections,
      readTimeoutMs: config.api.readTimeoutMs,
    });
  }
  if (api !== undefined && has('api')) {
    mountRulesRoutes(api, { registry: rules, store: ruleStore!, logger, auth: checkHeaders(createTokenCheck(config.api.token)) });
    let reader: ViolationReader | undefined = violations;
    if (kafkaMode) {
      const index = new KafkaViolationIndex({ config: config.transport.kafka, topic: config.transport.kafka.violationsTopic, logger });
      components.push(index);
      reader = index;
    }
    mountViolationRoutes(api, () => reader);
    const jobs = new ReplayJobs({
      config,
      logger,
      // Rules by id come from the registry: file and API rules alike (replayed even when disabled).
      resolveRuleIds: (ids) => {
        const missing = ids.filter((id) => rules.get(id) === undefined);
        if (missing.length > 0) return Promise.resolve({ ok: false, error: `unknown rule ${missing.join(', ')}` });
        return Promise.resolve({
          ok: true,
          rules: ids.map((id) => {
            const r = rules.get(id)!;
            return { ...r.rule, definition: { ...r.definition, enabled: true } };
          }),
          warnings: [],
        });
      },
    });
    mountReplayRoutes(api, jobs, checkHeaders(createTokenCheck(config.api.token)));
    components.push({ start: () => Promise.resolve(), shutdown: () => jobs.shutdown() });
  }
  if (api !== undefined) {
    api.addReadinessCheck('pipeline', () => (started ? { ready: true } : { ready: false, reason: 'starting' }));
    if (kafka !== undefined) {
      // Every role: whether this process's Kafka clients can reach the cluster. With the spool on,
      // the receiver goes on acknowledging exports (to its disk): degraded, not unready.
      const k = kafka;
      const spooling = spool !== undefined;
      api.addReadinessCheck('transport', () => {
        const h = k.health();
        if (h.ok) return { ready: true };
        const reason = h.reason ?? 'Kafka unreachable';
        return spooling ? { ready: true, degraded: `${reason} (exports are spooled to disk)` } : { ready: false, reason };
      });
    }
    if (spool !== undefined) {
      const sp = spool;
      // Degraded, not unready: while it refuses, clients get UNAVAILABLE and retry; taking the receiver
      // out of its Service would refuse them all.
      api.addReadinessCheck('spool', () => {
        const h = sp.health();
        return h.degraded ? { ready: true, degraded: h.reason } : { ready: true };
      });
    }
    for (const [name, exporter] of exporters) {
      // A forwarder of its own (Kafka mode) is unready while it cannot deliver: its spans wait in
      // Kafka, and no client talks to it. With a receiver in the same process (the all-in-one
      // embedded mode) degraded only: a 503 would take the receiver out of its Service, refusing
      // every client and stopping rule checking, and with no spans coming in no export would show
      // the downstream back. A worker's violation spans are kept too (violation store or topic):
      // degraded only.
      const unready = name === 'forwarder' && !has('receiver');
      api.addReadinessCheck(`downstream_${name}`, () => {
        const h = exporter.health();
        if (h.reachable) return { ready: true };
        const reason = `downstream ${config.downstream.endpoint} unreachable (${name} exports failing since ${h.since}): ${h.error}`;
        return unready ? { ready: false, reason } : { ready: true, degraded: reason };
      });
    }
    api.addReadinessCheck('rules', () => {
      const failing = ruleFiles.failingFiles;
      return failing.length === 0 || rules.all().length > 0
        ? { ready: true }
        : { ready: false, reason: `rule files do not compile: ${failing.join(', ')}` };
    });
    const store = violations;
    if (store !== undefined) {
      api.addReadinessCheck('violation_store', () => {
        const h = store.health();
        // Degraded, not unready: receiving, evaluation and violation spans go on; a 503 would take an
        // all-in-one pod out of its Service and cost every client its spans over a full disk.
        return h.degraded ? { ready: true, degraded: h.reason } : { ready: true };
      });
    }
    // A quarantined rule does not make the process unready (it evaluates every other rule, and in Kafka
    // mode a quarantine holds on every worker: failing readiness would stop intake everywhere); /ready says so.
    api.addReadinessCheck('rules_quarantined', () => {
      const q = rules.quarantined();
      return q.length === 0 ? { ready: true } : { ready: true, degraded: `quarantined: ${q.map((r) => `${r.definition.id} (${r.quarantine!.reason}, since ${r.quarantine!.since})`).join('; ')}` };
    });
    components.push(api);
  }

  const startedComponents: Component[] = [];
  /** shutdown_timeout passed: the exporters give up what they hold; one line says how much. */
  const abandonExports = (): void => {
    if (exporters.length === 0) return;
    const left = Object.fromEntries(exporters.map(([name, e]) => [name, e.abandon().spans]));
    const spans = Object.values(left).reduce((a, b) => a + b, 0);
    const timeout = `${config.shutdownTimeoutMs / 1000}s`;
    if (spans === 0) {
      logger.warn({ shutdownTimeout: timeout }, 'shutdown_timeout passed: stopping regardless (no spans were waiting for export)');
    } else if (kafkaMode) {
      logger.warn(
        { shutdownTimeout: timeout, spansLeft: spans, byExporter: left },
        `shutdown_timeout (${timeout}) passed: ${spans} spans not yet delivered downstream are left unacknowledged in Kafka; the next reader of their partitions sends them`,
      );
    } else {
      logger.warn(
        { shutdownTimeout: timeout, spansDropped: spans, byExporter: left },
        `shutdown_timeout (${timeout}) passed: ${spans} spans not yet delivered downstream are dropped (betrace_exporter_spans_dropped_total, reason shutdown)`,
      );
    }
  };
  return {
    metrics,
    transport,
    rules,
    violations,
    ports: () => ({ grpc: grpc?.port, http: http?.port, api: api?.port }),
    async start() {
      for (const c of components) {
        try {
          await c.start();
        } catch (err) {
          // Nothing half-started is left behind: the failed component (shutdown is
          // safe on a partial start) and those before it are shut down.
          startedComponents.push(c);
          await this.shutdown().catch((e: unknown) => logger.error({ err: e }, 'shutdown after a failed start failed'));
          throw err;
        }
        startedComponents.push(c);
      }
      started = true;
      logger.info({ roles, transport: config.transport.kind }, 'betrace started');
    },
    async shutdown() {
      started = false;
      const deadline = startedComponents.length === 0 ? undefined : setTimeout(abandonExports, config.shutdownTimeoutMs);
      try {
        // Intake first: receivers stop, then consumers drain, exporters flush.
        const order = [...startedComponents].reverse();
        const intake = order.filter((c) => c === grpc || c === http);
        const rest = order.filter((c) => !intake.includes(c) && c !== api);
        for (const c of [...intake, ...rest]) await c.shutdown();
        if (api !== undefined && startedComponents.includes(api)) await api.shutdown();
        startedComponents.length = 0;
      } finally {
        clearTimeout(deadline);
      }
    },
  };
}
