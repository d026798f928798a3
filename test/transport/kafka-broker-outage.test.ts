/**
 * Acceptance (Kafka transport, real broker and processes): the single broker stopped
 * for 20 s while the shop scenario flows (front: receiver, forwarder, api; 3 workers;
 * OpenTelemetry SDK clients over gRPC and HTTP at their defaults), then started again.
 * - Spool off: every export that failed was answered UNAVAILABLE with a retry delay,
 *   none ran into the client's deadline; every violation that reached downstream is
 *   served by GET /v1/violations; /ready of every process (front and each worker) is
 *   503 with a reason naming Kafka for the rest of the outage once the probe noticed it,
 *   and 200 again afterwards.
 * - Spool on: no export fails, every acknowledged span reaches downstream, and the
 *   violations are exactly the injected ones.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startKafka, type KafkaBroker } from '../helpers/kafka.ts';
import { waitUntil } from '../helpers/pipeline.ts';
import {
  assertOnlyUnavailableWithRetryDelay,
  checkViolations,
  missingAckedSpans,
  startDeployment,
  startShopLoad,
  summarizeClients,
  traceTimeline,
  violationSpans,
  waitForViolations,
  type RoleProcess,
} from '../helpers/kafka-deployment.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const OUTAGE_MS = 20_000;
/** Functional deadline: how soon after the broker went away every /ready must say so (probe every 2 s, 3 s deadline). */
const NOTICED_MS = 10_000;

interface ReadyAnswer {
  readonly at: number;
  readonly status: number;
  readonly reasons: Record<string, string>;
}

/** Polls /ready of each process every 500 ms until stopped. */
function pollReady(procs: readonly RoleProcess[]): { answers: Map<RoleProcess, ReadyAnswer[]>; stop(): Promise<void> } {
  const answers = new Map(procs.map((p) => [p, [] as ReadyAnswer[]]));
  let running = true;
  const loops = procs.map(async (p) => {
    while (running) {
      const at = Date.now();
      const r = await p.ready().catch((err: unknown) => ({ status: 0, reasons: { error: String(err) } }));
      answers.get(p)!.push({ at, ...r });
      await sleep(500);
    }
  });
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('single broker stopped for 20 s under load', () => {
  let kafka: KafkaBroker;
  before(async () => {
    kafka = await startKafka();
  });
  after(() => kafka?.destroy());

  async function outage(t: TestContext, spool: boolean) {
    const d = await startDeployment(t, { brokers: kafka.brokers, spool });
    const procs = [d.front, ...d.workers];
    const load = startShopLoad(t, d);
    await sleep(5000);
    const poll = pollReady(procs);
    t.after(() => poll.stop());
    const stoppedAt = Date.now();
    await kafka.stop();
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));
    const startedAt = Date.now();
    await kafka.start();
    await sleep(8000);
    await load.stop();
    await poll.stop();
    const clients = summarizeClients(load);
    const lost = await missingAckedSpans(d.sink, clients.acked);
    const spans = load.outcomes.reduce((s, o) => s + o.keys.length, 0);
    const requests = await d.front.series('betrace_receiver_requests_total');
    t.diagnostic(
      `spans sent ${spans}, acknowledged ${clients.acked.size}, given up ${clients.givenUp.size}, acknowledged but not downstream ${lost.length}; ` +
        `client failures ${JSON.stringify(clients.byCode)}; receiver answers ${requests.map((r) => `${r.labels.protocol}:${r.labels.code}=${r.value}`).join(' ')}`,
    );
    for (const p of procs) {
      const during = poll.answers.get(p)!.filter((a) => a.at >= stoppedAt && a.at < startedAt);
      const first503 = during.find((a) => a.status === 503);
      t.diagnostic(
        `${p.name} /ready during the outage: ${during.filter((a) => a.status === 503).length} x 503, ${during.filter((a) => a.status === 200).length} x 200` +
          (first503 ? `, first 503 ${first503.at - stoppedAt} ms after the stop: ${JSON.stringify(first503.reasons)}` : ''),
      );
    }
    return { d, procs, load, clients, lost, poll, stoppedAt, startedAt };
  }

  it('spool off: UNAVAILABLE with a retry delay, every violation downstream served by the API, /ready 503 naming Kafka on every process', async (t) => {
    const { d, procs, clients, lost, poll, stoppedAt, startedAt } = await outage(t, false);
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged spans not downstream`);
    assertOnlyUnavailableWithRetryDelay(clients);
    assert.ok(clients.failures.length > 0, 'the outage was felt by the clients');
    for (const p of procs) {
      const late = poll.answers.get(p)!.filter((a) => a.at >= stoppedAt + NOTICED_MS && a.at < startedAt);
      assert.ok(late.length >= 10, `${p.name}: /ready polled during the outage (${late.length})`);
      const bad = late.filter((a) => a.status !== 503 || !Object.values(a.reasons).some((r) => /Kafka/.test(r)));
      assert.deepEqual(bad.slice(0, 3), [], `${p.name}: /ready 503 with a reason naming Kafka from ${NOTICED_MS} ms into the outage`);
    }
    for (const p of procs) await waitUntil(async () => (await p.ready()).status === 200, 30_000, `${p.name} ready again`);

    // Every violation downstream is in the API (the index follows the violations topic).
    await sleep(3000);
    const downstream = new Set(violationSpans(d.sink).map((s) => String(s.attributes['betrace.violation.id'])));
    const served = async (): Promise<Set<string>> => {
      const ids = new Set<string>();
      let cursor: string | null = null;
      do {
        const r = await fetch(`${d.front.adminUrl}/v1/violations?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        const body = (await r.json()) as { violations: Array<{ violation_id: string }>; next_cursor: string | null };
        for (const v of body.violations) ids.add(v.violation_id);
        cursor = body.next_cursor;
      } while (cursor !== null);
      return ids;
    };
    let api = new Set<string>();
    await waitUntil(
      async () => {
        api = await served();
        return [...downstream].every((id) => api.has(id));
      },
      30_000,
      'every downstream violation in the API',
    ).catch(() => undefined);
    const missing = [...downstream].filter((id) => !api.has(id));
    t.diagnostic(`violations downstream ${downstream.size}, in the API ${api.size}, downstream but not in the API ${missing.length}`);
    assert.ok(downstream.size >= 20, 'violations flowed');
    assert.deepEqual(missing, [], 'every violation that reached downstream is served by GET /v1/violations');
  });

  // A trace that straddles the stop: its rest waits in the receiver's spool until Kafka is
  // back; the workers keep their idle clocks stopped meanwhile and for a while after.
  it('spool on: 0 spans lost, violations exactly those injected', async (t) => {
    const { d, load, clients, lost, stoppedAt, startedAt } = await outage(t, true);
    assert.equal(clients.failures.length, 0, `no export fails: ${JSON.stringify(clients.byCode)}`);
    assert.equal(clients.givenUp.size, 0);
    assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged spans not downstream`);
    await waitForViolations(d.sink, load.orders, clients.wholeTraces);
    const v = checkViolations(d.sink, load.orders, clients.wholeTraces);
    t.diagnostic(`traces ${load.orders.length} (whole ${clients.wholeTraces.size}, acknowledged too far apart ${clients.lateTraces}); violations expected ${v.expected}, found ${v.found}, spans ${v.spans}, ids ${v.distinctIds}, repeats ${v.repeats}`);
    for (const p of v.problems.slice(0, 10)) {
      const traceId = /[0-9a-f]{32}/.exec(p)?.[0] ?? '';
      t.diagnostic(`${p}: exports (ms after the stop; started again at ${startedAt - stoppedAt}) ${traceTimeline(load, traceId, stoppedAt)}`);
    }
    const late = await Promise.all(d.workers.map((w) => w.series('betrace_worker_late_spans_total')));
    t.diagnostic(`late spans: ${late.flat().map((x) => `${x.labels.outcome}=${x.value}`).join(' ')}`);
    assert.deepEqual(v.problems, [], 'violations exactly those injected');
    assert.equal(v.found, v.expected);
    assert.ok(v.expected >= 50, `enough violating traces to judge (${v.expected})`);
  });
});
