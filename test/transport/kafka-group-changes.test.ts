/**
 * Acceptance (Kafka transport, real broker and processes): a worker added to a running
 * group of three, then one of the three killed (kill -9), while the shop scenario flows.
 * - No stop-the-world (the KIP-848 consumer protocol): by their "Kafka partitions
 *   assigned" log lines, the workers that survive are never left without partitions and
 *   never lose a partition they hold in the end; violations keep arriving downstream
 *   while the group changes.
 * - No violation lost: exactly the injected ones on every trace.
 * - Re-emissions only as defined: a violation span sent again carries the same id, and
 *   no more often than the workers counted re-emissions.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { getTestKafka } from '../helpers/kafka.ts';
import {
  assignments,
  checkViolations,
  missingAckedSpans,
  partitionsOf,
  startDeployment,
  startShopLoad,
  sumMetric,
  summarizeClients,
  violationSpans,
  waitForAssignment,
  waitForViolations,
  type RoleProcess,
} from '../helpers/kafka-deployment.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Longest pause in violations arriving downstream allowed while the group changes (a functional bound, far above their rate). */
const MAX_GAP_MS = 4000;

it('a worker added to a group of three, then one killed: the others keep their partitions, no violation lost, repeats only as re-emissions', async (t) => {
  const { brokers } = await getTestKafka();
  const d = await startDeployment(t, { brokers });
  const [w0, w1, w2] = d.workers as [RoleProcess, RoleProcess, RoleProcess];
  const load = startShopLoad(t, d);
  // Arrival times of violation spans downstream.
  const arrivals: number[] = [];
  let seen = 0;
  const watch = setInterval(() => {
    const n = violationSpans(d.sink).length;
    for (; seen < n; seen++) arrivals.push(Date.now());
  }, 100);
  t.after(() => clearInterval(watch));
  await sleep(5000);
  const settled = Date.now();
  const before = new Map(d.workers.map((w) => [w, partitionsOf(w)]));

  const changeStart = Date.now();
  const added = await d.addWorker();
  await waitForAssignment(d.workers, 6);
  await sleep(3000);
  // The victim's own re-emission count, read before it dies.
  const victimReemissions = await w2.metric('betrace_violation_reemissions_total');
  await w2.proc.kill();
  const survivors = [w0, w1, added];
  await waitForAssignment(survivors, 6);
  const changeEnd = Date.now();
  await sleep(3000);
  await load.stop();
  clearInterval(watch);

  const clients = summarizeClients(load);
  const lost = await missingAckedSpans(d.sink, clients.acked);
  await waitForViolations(d.sink, load.orders, clients.wholeTraces);
  const v = checkViolations(d.sink, load.orders, clients.wholeTraces);
  const reemissions = (await sumMetric(survivors, 'betrace_violation_reemissions_total')) + victimReemissions;
  const alreadyDelivered = await sumMetric(survivors, 'betrace_violations_already_delivered_total');
  const during = arrivals.filter((a) => a >= changeStart && a <= changeEnd);
  let gap = 0;
  for (let i = 1, prev = changeStart; i <= during.length; i++) {
    const at = i < during.length ? during[i]! : changeEnd;
    gap = Math.max(gap, at - prev);
    prev = at;
  }
  for (const w of [w0, w1, w2, added]) {
    t.diagnostic(`${w.name}: before ${JSON.stringify(before.get(w) ?? [])}; ${assignments(w).filter((a) => a.at >= settled).map((a) => `lost ${JSON.stringify(a.lost)} → ${JSON.stringify(a.partitions)}`).join('; ')}`);
  }
  t.diagnostic(
    `spans acknowledged ${clients.acked.size}, not downstream ${lost.length}; traces ${load.orders.length} (whole ${clients.wholeTraces.size}, acknowledged too far apart ${clients.lateTraces}); violations expected ${v.expected}, found ${v.found}, ` +
      `spans ${v.spans}, ids ${v.distinctIds}, repeats ${v.repeats}, re-emissions counted ${reemissions}, already delivered ${alreadyDelivered}; ` +
      `${during.length} violation spans arrived during the change (${changeEnd - changeStart} ms), longest pause ${gap} ms`,
  );

  for (const w of [w0, w1]) {
    const end = new Set(partitionsOf(w));
    for (const a of assignments(w).filter((x) => x.at >= settled)) {
      assert.ok(a.partitions.length > 0, `${w.name} never left without partitions`);
      assert.deepEqual(a.lost.filter((p) => end.has(p)), [], `${w.name} never loses a partition it holds in the end`);
    }
    // What it held before the change and holds in the end, it held all along.
    const kept = (before.get(w) ?? []).filter((p) => end.has(p));
    assert.ok(kept.length > 0, `${w.name} keeps partitions through the change`);
  }
  assert.ok(during.length > 0 && gap <= MAX_GAP_MS, `violations keep arriving during the change (longest pause ${gap} ms)`);
  assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged spans not downstream`);
  assert.deepEqual(v.problems, [], 'violations exactly those injected');
  assert.equal(v.found, v.expected);
  assert.ok(v.repeats <= reemissions, `violation spans sent again (${v.repeats}) ≤ re-emissions counted (${reemissions})`);
});
