/**
 * The admin API, on every process (health, readiness, metrics), and the api role's routes: rules,
 * violations (the store, or the violations topic's index with Kafka), replay jobs and the web console (/ui). Imported by
 * pipeline.ts only.
 */
import { ApiServer, mountRulesRoutes, mountViolationRoutes } from '../../api/index.ts';
import { mountReplayRoutes } from '../../api/replay-routes.ts';
import { mountConsole } from '../../console/routes.ts';
import { ReplayJobs } from '../../replay/jobs.ts';
import type { RuleStore } from '../../ruleset/rule-store.ts';
import { checkHeaders, createTokenCheck } from '../../server/index.ts';
import type { ViolationReader, ViolationStore } from '../../violations/index.ts';
import { KafkaViolationIndex } from '../../violations/kafka-violation-index.ts';
import { onShutdown } from '../lifecycle.ts';
import type { NamedCheck, Shared } from './shared.ts';

/** The admin server, not yet in the lifecycle list (it goes last, after its readiness checks). */
export function buildApiServer(s: Shared): ApiServer | undefined {
  const { config, metrics, logger } = s;
  if (!config.api.enabled) return undefined;
  return new ApiServer({
    host: config.api.host,
    port: config.api.port,
    tls: config.api.tls,
    metrics,
    logger,
    maxConnections: config.api.maxConnections,
    readTimeoutMs: config.api.readTimeoutMs,
  });
}

/** The api role's routes on `api`, with the violation index (Kafka) and the replay jobs in the lifecycle list. */
export function mountApiRole(s: Shared, api: ApiServer, ruleStore: RuleStore, violations: ViolationStore | undefined): void {
  const { config, rules, logger, lifecycle } = s;
  mountRulesRoutes(api, { registry: rules, store: ruleStore, logger, auth: checkHeaders(createTokenCheck(config.api.token)) });
  let reader: ViolationReader | undefined = violations;
  if (s.kafkaMode) {
    const index = new KafkaViolationIndex({ config: config.transport.kafka, topic: config.transport.kafka.violationsTopic, logger });
    lifecycle.add('violation index', 'stores', index);
    reader = index;
  }
  mountViolationRoutes(api, () => reader, s.config.notifications.traceUrl);
  const jobs = new ReplayJobs({
    config,
    logger,
    // Rules by id come from the registry: file and API rules alike (replayed even when disabled).
    resolveRuleIds: (ids) => {
      const found = ids.map((id) => rules.get(id));
      const missing = ids.filter((_, i) => found[i] === undefined);
      if (missing.length > 0) return Promise.resolve({ ok: false, error: `unknown rule ${missing.join(', ')}` });
      return Promise.resolve({
        ok: true,
        rules: found.flatMap((r) => (r === undefined ? [] : [{ ...r.rule, definition: { ...r.definition, enabled: true } }])),
        warnings: [],
      });
    },
  });
  mountReplayRoutes(api, jobs, checkHeaders(createTokenCheck(config.api.token)));
  // The console calls the routes above from the browser: served where they are, when api.console is on.
  if (config.api.console) mountConsole(api);
  // A replay reads the transport and evaluates: stopped with the consumers.
  lifecycle.add('replay jobs', 'consumers', onShutdown(() => jobs.shutdown()));
}

/**
 * The exporters' readiness. A forwarder of its own (Kafka mode) is unready while it cannot deliver:
 * its spans wait in Kafka, and no client talks to it. With a receiver in the same process (the
 * all-in-one embedded mode) degraded only: a 503 would take the receiver out of its Service,
 * refusing every client and stopping rule checking, and with no spans coming in no export would
 * show the downstream back. A worker's violation spans are kept too (violation store or topic):
 * degraded only.
 */
export function downstreamChecks(s: Shared): NamedCheck[] {
  return s.exporters.map(([name, exporter]): NamedCheck => {
    const unready = name === 'forwarder' && !s.has('receiver');
    return [
      `downstream_${name}`,
      () => {
        const h = exporter.health();
        if (h.reachable) return { ready: true };
        const reason = `downstream ${s.config.downstream.endpoint} unreachable (${name} exports failing since ${h.since}): ${h.error}`;
        return unready ? { ready: false, reason } : { ready: true, degraded: reason };
      },
    ];
  });
}
