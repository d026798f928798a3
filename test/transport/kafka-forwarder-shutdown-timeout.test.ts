/**
 * Acceptance (Kafka transport, real broker and processes): a forwarder stopped with SIGTERM while
 * the downstream is down stops within shutdown_timeout (not after downstream.max_retry_time, 5 min),
 * says in one log line how many spans it leaves unacknowledged, and leaves them in Kafka: the
 * next forwarder delivers every one once the downstream is back.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { getTestKafka } from '../helpers/kafka.ts';
import { startDeployment } from '../helpers/kafka-deployment.ts';
import { waitUntil } from '../helpers/pipeline.ts';

/** The configuration's default. */
const SHUTDOWN_TIMEOUT_MS = 10_000;
const SLACK_MS = 4000;

it('forwarder stopped with the downstream down: exits within shutdown_timeout, the queued spans kept in Kafka for the next forwarder', async (t) => {
  const { brokers } = await getTestKafka();
  const d = await startDeployment(t, { brokers, frontRoles: 'receiver,api', workers: 0 });
  const first = await d.start('forwarder-0', 'forwarder');
  const client = rawTraceClient(d.grpcUrl);
  t.after(() => client.close());
  const ids = (n: number) => Array.from({ length: n }, () => [randomBytes(16).toString('hex'), randomBytes(8).toString('hex')] as const);

  const before = ids(10);
  assert.equal((await client.export(paddedRequest('kafka-shutdown', before))).err, null);
  await d.sink.waitFor((s) => s.length === 10, 20_000, 'the first spans downstream');

  await d.sink.stop();
  const during = ids(30);
  assert.equal((await client.export(paddedRequest('kafka-shutdown', during))).err, null);
  await waitUntil(async () => (await first.metric('betrace_exporter_queue_spans', { exporter: 'forwarder' })) === 30, 20_000, 'the spans held by the forwarder, retrying');

  const t0 = Date.now();
  first.proc.child.kill('SIGTERM');
  const code = await Promise.race([
    new Promise<number | null>((resolve) => first.proc.child.once('exit', resolve)),
    new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), SHUTDOWN_TIMEOUT_MS + SLACK_MS)),
  ]);
  const took = Date.now() - t0;
  assert.notEqual(code, 'late', `still running ${SHUTDOWN_TIMEOUT_MS + SLACK_MS} ms after SIGTERM`);
  assert.equal(code, 0);
  assert.match(first.proc.output(), /"msg":"shutdown_timeout \(10s\) passed: 30 spans not yet delivered downstream are left unacknowledged in Kafka; the next reader of their partitions sends them"/);
  t.diagnostic(`forwarder exited ${took} ms after SIGTERM`);

  await d.sink.start();
  await d.start('forwarder-1', 'forwarder');
  const wanted = new Set(during.map(([traceId, spanId]) => `${traceId}/${spanId}`));
  await d.sink.waitFor((s) => [...wanted].every((k) => s.some((x) => x.key === k)), 30_000, 'every span left in Kafka, delivered by the next forwarder');
});
