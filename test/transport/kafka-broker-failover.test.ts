/**
 * Acceptance (Kafka transport, real brokers and processes): a 3-node KRaft cluster
 * (replication factor 3, min.insync.replicas 2; broker timeouts in kafka-cluster.ts), a
 * front process (receiver, forwarder, api) and 3 worker processes, the shop scenario
 * sent continuously by OpenTelemetry SDK clients (gRPC and HTTP exporters at their
 * defaults), and a `kill -9` mid-run of the broker leading the most spans partitions:
 * - every span the clients' exporters reported exported reaches downstream;
 * - every export that failed was answered UNAVAILABLE with a retry delay, none ran
 *   into the client's deadline;
 * - on every trace the clients delivered whole, exactly the injected violation, under
 *   one id; a violation span sent again only with its id, and no more often than the
 *   workers counted re-emissions;
 * - with receiver.spool on: no export fails at all, and the violations are exactly the
 *   injected ones.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startKafkaCluster, type KafkaCluster } from '../helpers/kafka-cluster.ts';
import { uniqueName } from '../helpers/kafka.ts';
import { saramaPartition } from '../../src/transport/partitioner.ts';
import {
  assertOnlyUnavailableWithRetryDelay,
  checkViolations,
  MAX_TRACE_SPREAD_MS,
  missingAckedSpans,
  startDeployment,
  startShopLoad,
  sumMetric,
  summarizeClients,
  traceTimeline,
  waitForViolations,
} from '../helpers/kafka-deployment.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('broker failover under load (3-node cluster, RF 3)', () => {
  let cluster: KafkaCluster;
  before(async () => {
    cluster = await startKafkaCluster();
  });
  after(() => cluster?.destroy());

  async function run(t: TestContext, spool: boolean) {
    // A node killed by an earlier case is back first: topics of replication factor 3 need all three.
    for (const n of cluster.nodes) if (!n.running) await n.start();
    const prefix = uniqueName(spool ? 'failover-spool' : 'failover');
    const d = await startDeployment(t, { brokers: cluster.brokers, prefix, spool, kafka: { replication_factor: 3 } });
    const load = startShopLoad(t, d);
    await sleep(6000);
    const victim = await cluster.nodeLeadingMost(`${prefix}.spans`);
    const led = [...(await cluster.leaders(`${prefix}.spans`))].filter(([, l]) => l === victim.id).map(([p]) => p);
    const ackedBefore = load.outcomes.filter((o) => o.ok).length;
    const killedAt = Date.now();
    await victim.kill();
    t.diagnostic(`kill -9 of node ${victim.id}, leader of spans partitions ${led.join(',')}`);
    await sleep(15_000);
    await load.stop();
    const clients = summarizeClients(load);
    assert.ok(load.outcomes.filter((o) => o.ok).length > ackedBefore, 'exports acknowledged after the kill');

    const lost = await missingAckedSpans(d.sink, clients.acked);
    await waitForViolations(d.sink, load.orders, clients.wholeTraces);
    const violations = checkViolations(d.sink, load.orders, clients.wholeTraces);
    const reemissions = await sumMetric(d.workers, 'betrace_violation_reemissions_total');
    const requests = await d.front.series('betrace_receiver_requests_total');
    const spans = load.outcomes.reduce((s, o) => s + o.keys.length, 0);
    t.diagnostic(
      `spans sent ${spans}, acknowledged ${clients.acked.size}, given up ${clients.givenUp.size}; client failures ${JSON.stringify(clients.byCode)}; ` +
        `receiver answers ${requests.map((r) => `${r.labels.protocol}:${r.labels.code}=${r.value}`).join(' ')}; ` +
        `traces ${load.orders.length} (whole ${clients.wholeTraces.size}, acknowledged over more than ${MAX_TRACE_SPREAD_MS} ms ${clients.lateTraces}); violations expected ${violations.expected}, found ${violations.found}, ` +
        `spans ${violations.spans}, ids ${violations.distinctIds}, repeats ${violations.repeats}, re-emissions counted ${reemissions}`,
    );

    const late = await Promise.all(d.workers.map((w) => w.series('betrace_worker_late_spans_total')));
    t.diagnostic(`late spans: ${late.flat().map((x) => `${x.labels.outcome}=${x.value}`).join(' ')}`);
    for (const p of violations.problems.slice(0, 10)) {
      const traceId = /[0-9a-f]{32}/.exec(p)?.[0] ?? '';
      t.diagnostic(`${p}: partition ${saramaPartition(traceId, 6)}, exports (ms after the kill) ${traceTimeline(load, traceId, killedAt)}`);
    }
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged spans not downstream`);
    assertOnlyUnavailableWithRetryDelay(clients);
    // The receiver's own count of its answers: the HTTP exporter does not report the status it gave up on.
    const bad = requests.filter((r) => !['OK', 'UNAVAILABLE', '200', '503'].includes(r.labels.code ?? ''));
    assert.deepEqual(bad, [], 'the receiver answered only OK or UNAVAILABLE (503)');
    assert.deepEqual(violations.problems, [], 'violations exactly those injected, on every whole trace');
    assert.equal(violations.found, violations.expected);
    assert.ok(violations.expected >= 50, `enough violating whole traces to judge (${violations.expected})`);
    assert.ok(violations.repeats <= reemissions, `violation spans sent again (${violations.repeats}) ≤ re-emissions counted (${reemissions})`);
    if (spool) {
      assert.equal(clients.givenUp.size, 0, 'with the spool, no span the clients give up on');
      assert.equal(clients.failures.length, 0, 'with the spool, no export fails');
    }
  }

  it('kill -9 of the busiest broker: 0 acknowledged spans lost, only UNAVAILABLE with a retry delay, violations exact on whole traces', async (t) => {
    await run(t, false);
  });

  // The spool retries a batch whole while some of its partitions have no leader, so the rest
  // of a trace waits in the spool: the workers see the broker go (the cluster disturbed) and
  // stop their idle clocks until the leaders moved and the spool drained.
  it('kill -9 of the busiest broker with receiver.spool on: 0 spans given up, violations exactly those injected', async (t) => {
    await run(t, true);
  });
});
