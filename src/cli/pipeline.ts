/**
 * The composition root: assembles the roles of one betrace process from the configuration,
 * one builder per role (src/cli/build), every component in one lifecycle list (lifecycle.ts).
 *
 *   OTLP clients → receiver → transport (partitioned by trace id)
 *                                 ├─ forwarder group → downstream (unchanged spans)
 *                                 └─ worker group → rules → violation spans → downstream
 *   api: health, readiness, metrics, rules, violations
 *
 * Start order is downstream-first (topics and stores, exporters, consumers, then the receivers),
 * so nothing is accepted before it has somewhere to go; a failed start shuts down what started.
 * Shutdown goes by phase (intake, consumers, exporters, stores, api), bounded by
 * shutdown_timeout: then the exporters are abandoned (what they hold is dropped and counted
 * with the embedded transport, left unacknowledged with Kafka), said in one log line.
 * Imported by the run command (and tests); nothing of the data path imports src/cli.
 */
import type { Component } from '../component.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Transport } from '../transport/transport.ts';
import type { RuleRegistry } from '../ruleset/index.ts';
import type { ViolationStore } from '../violations/index.ts';
import { buildApiServer, downstreamChecks, mountApiRole } from './build/api.ts';
import { buildForwarder } from './build/forwarder.ts';
import { buildReceiver } from './build/receiver.ts';
import { ALL_ROLES, buildRuleStore, buildShared, ruleChecks, transportCheck, type NamedCheck, type NamedExporter, type Role } from './build/shared.ts';
import { buildWorker } from './build/worker.ts';

export { ALL_ROLES, type Role };

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
  const shared = buildShared(config, roles, logger);
  const { metrics, transport, rules, lifecycle, kafka, has } = shared;
  // Each builder adds its components to the list in start order.
  const ruleStore = has('worker') || has('api') ? buildRuleStore(shared) : undefined;
  const worker = ruleStore !== undefined && has('worker') ? buildWorker(shared, ruleStore, options.evaluatorThreadModule) : undefined;
  if (has('forwarder')) buildForwarder(shared);
  const receiver = has('receiver') ? buildReceiver(shared) : undefined;
  // Every process serves health, readiness and metrics on the admin port; the api role adds rules and violations.
  const api = buildApiServer(shared);
  let started = false;
  if (api !== undefined) {
    if (ruleStore !== undefined && has('api')) mountApiRole(shared, api, ruleStore, worker?.violations);
    const { rules: rulesCheck, quarantined } = ruleChecks(shared);
    const checks: NamedCheck[] = [
      ['pipeline', () => (started ? { ready: true } : { ready: false, reason: 'starting' })],
      ...(kafka === undefined ? [] : [transportCheck(kafka, receiver?.spooling ?? false)]),
      ...(receiver?.checks ?? []),
      ...downstreamChecks(shared),
      rulesCheck,
      ...(worker?.checks ?? []),
      quarantined,
    ];
    for (const [name, check] of checks) api.addReadinessCheck(name, check);
    lifecycle.add('admin api', 'api', api);
  }

  const exporters: readonly NamedExporter[] = shared.exporters;
  /** shutdown_timeout passed: the exporters give up what they hold; one line says how much. */
  const abandonExports = (): void => {
    if (exporters.length === 0) return;
    const left = Object.fromEntries(exporters.map(([name, e]) => [name, e.abandon().spans]));
    const spans = Object.values(left).reduce((a, b) => a + b, 0);
    const timeout = `${config.shutdownTimeoutMs / 1000}s`;
    if (spans === 0) {
      logger.warn({ shutdownTimeout: timeout }, 'shutdown_timeout passed: stopping regardless (no spans were waiting for export)');
    } else if (shared.kafkaMode) {
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
  const shutdown = async (): Promise<void> => {
    started = false;
    const deadline = lifecycle.running ? setTimeout(abandonExports, config.shutdownTimeoutMs) : undefined;
    try {
      await lifecycle.shutdown();
    } finally {
      clearTimeout(deadline);
    }
  };
  return {
    metrics,
    transport,
    rules,
    violations: worker?.violations,
    ports: () => ({ ...receiver?.ports(), api: api?.port }),
    async start() {
      // A failed start shuts down what started (the failed part included), within shutdown_timeout, then throws.
      await lifecycle.start(shutdown);
      started = true;
      logger.info({ roles, transport: config.transport.kind }, 'betrace started');
    },
    shutdown,
  };
}
