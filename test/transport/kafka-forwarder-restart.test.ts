/**
 * Acceptance (Kafka transport, real broker and processes): the forwarder, a process of
 * its own (roles forwarder; the receiver and api in another), stopped with SIGTERM while
 * the shop scenario flows and started again. Its shutdown commits what downstream
 * acknowledged, so the restarted forwarder sends no span a second time; none is lost.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { getTestKafka } from '../helpers/kafka.ts';
import { missingAckedSpans, startDeployment, startShopLoad, summarizeClients } from '../helpers/kafka-deployment.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('forwarder stopped with SIGTERM mid-stream and restarted: every span downstream exactly once', async (t) => {
  const { brokers } = await getTestKafka();
  const d = await startDeployment(t, { brokers, frontRoles: 'receiver,api', workers: 0 });
  const first = await d.start('forwarder-0', 'forwarder');
  const load = startShopLoad(t, d);
  await sleep(5000);
  const beforeStop = d.sink.spans.length;
  const code = await first.proc.stop();
  assert.equal(code, 0, 'the forwarder exits cleanly on SIGTERM');
  const atStop = d.sink.spans.length;
  await sleep(2000);
  await d.start('forwarder-1', 'forwarder');
  await sleep(5000);
  await load.stop();

  const clients = summarizeClients(load);
  const lost = await missingAckedSpans(d.sink, clients.acked);
  await sleep(2000);
  const counts = new Map<string, number>();
  for (const s of d.sink.spans) counts.set(s.key, (counts.get(s.key) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1);
  const unknown = [...counts.keys()].filter((k) => !clients.acked.has(k));
  t.diagnostic(
    `spans acknowledged ${clients.acked.size} (client failures ${clients.failures.length}); downstream ${d.sink.spans.length} spans, ${counts.size} distinct; ` +
      `${beforeStop} downstream when SIGTERM was sent, ${atStop} when the forwarder had exited; sent twice ${twice.length}, not acknowledged to a client ${unknown.length}, lost ${lost.length}`,
  );
  assert.ok(atStop > 0 && atStop < d.sink.spans.length, 'spans flowed before the stop and after the restart');
  assert.deepEqual(lost.slice(0, 5), [], `${lost.length} acknowledged spans not downstream`);
  assert.deepEqual(twice.slice(0, 5), [], `${twice.length} spans sent downstream twice`);
  assert.deepEqual(unknown, [], 'no span downstream that no client exported');
});
