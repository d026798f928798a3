/**
 * Group replay (`betrace replay --group NAME`): several replay processes of one job
 * share the spans topic's partitions through a Kafka consumer group, so a Kubernetes
 * Job with `parallelism: N` splits the work without hand-made partition lists.
 *
 * - The group is `<client_id>-replay-<NAME>-<hash>`, the hash of the job (topic, range,
 *   rules, full scan): processes of one job meet in it, another job never does. Running
 *   the same job again under the same name finds it done; name each job anew (the Job's
 *   name).
 * - Each member replays the partitions the group assigns it, one at a time, each with an
 *   engine of its own (the spans of a trace share a partition), and commits the partition's
 *   end offset as its "done" mark. A member skips partitions already marked done.
 * - A partition taken away by a rebalance while it is read is dropped unfinished (its new
 *   owner reads it whole). A partition whose mark is committed by a member that still owns
 *   it in the same generation is that member's: a commit that needed a rejoin (the group
 *   moved on meanwhile) drops the partition, whose new owner reads it again. So every
 *   partition is reported by exactly one member.
 * - `onPartitionDone` (`--emit`) runs before the mark: a member that dies after it and
 *   before the mark has its partition read again, and its violation spans (same ids) sent
 *   once more; one that dies before it loses nothing.
 * - A member ends when every partition of the topic is marked done; its report covers the
 *   partitions it replayed.
 *
 * Always the classic group protocol: members join without consuming (they read with Fetch
 * requests, kafka-read.ts), which KIP-848's protocol does not offer.
 */
import { createHash } from 'node:crypto';
import { Consumer, describeKafkaError, kafkaClientOptions, withAdmin } from '../kafka/client.ts';
import { sortViolations, type ReplayCounters, type ReplayViolation } from './engine.ts';
import { offsetsAt, readKafkaSource } from './kafka-source.ts';
import { buildReport } from './report.ts';
import { engineFor, progressOf, type ReplayRunOptions, type ReplayRunResult } from './run.ts';

/** How often a member without work checks whether the others are done. */
const DONE_POLL_MS = 500;
const UNTIMED_IDS_KEPT = 10;

interface PartitionResult {
  readonly counters: ReplayCounters;
  readonly violations: ReplayViolation[];
  readonly untimedTraceIds: readonly string[];
  readonly fromHistoryStart: boolean;
}

/** The consumer group of a replay job. */
export function replayGroupId(clientId: string, name: string, o: Pick<ReplayRunOptions, 'fromMs' | 'toMs' | 'rules' | 'fullScan' | 'skipByTriggers'>, topic: string): string {
  const job = JSON.stringify({ topic, from: o.fromMs, to: o.toMs, rules: o.rules.map((r) => r.definition), fullScan: o.fullScan === true, skip: o.skipByTriggers !== false });
  return `${clientId}-replay-${name}-${createHash('sha256').update(job).digest('hex').slice(0, 12)}`;
}

export async function runGroupReplay(o: ReplayRunOptions, name: string): Promise<ReplayRunResult> {
  const startedAt = performance.now();
  const kafka = o.config.transport.kafka;
  const topic = kafka.spansTopic;
  const groupId = replayGroupId(kafka.clientId, name, o, topic);
  const consumer = new Consumer({
    ...kafkaClientOptions(kafka, '-replay'),
    groupId,
    groupProtocol: 'classic',
    sessionTimeout: kafka.sessionTimeoutMs,
    heartbeatInterval: Math.max(500, Math.floor(kafka.sessionTimeoutMs / 10)),
    rebalanceTimeout: Math.max(kafka.sessionTimeoutMs, 10_000),
  });
  const cancelled = (): boolean => o.signal?.aborted === true;
  const results = new Map<number, PartitionResult>();
  let current: { partition: number; abort: AbortController } | undefined;
  const owned = (): number[] => (consumer.assignments ?? []).filter((a) => a.topic === topic).flatMap((a) => a.partitions);
  let wake: (() => void) | undefined;
  // A rebalance that takes the partition being read away stops its read.
  consumer.on('consumer:group:join', () => {
    if (current !== undefined && !owned().includes(current.partition)) current.abort.abort();
    wake?.();
  });
  try {
    const count = await withAdmin(kafka, async (admin) => (await admin.metadata({ topics: [topic] })).topics.get(topic)?.partitionsCount ?? 0);
    if (count === 0) return { ok: false, error: `cannot replay: Kafka topic ${topic} does not exist or has no partitions` };
    const all = Array.from({ length: count }, (_, i) => i);
    consumer.topics.trackAll(topic);
    await consumer.joinGroup({});
    const markedDone = async (): Promise<Set<number>> => {
      const committed = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: all }] });
      const offsets = committed.get(topic) ?? [];
      return new Set(all.filter((p) => (offsets[p] ?? -1n) >= 0n));
    };
    for (;;) {
      if (cancelled()) return { ok: false, error: 'replay cancelled' };
      const done = await markedDone();
      if (done.size === count) break;
      const next = owned().sort((a, b) => a - b).find((p) => !done.has(p) && !results.has(p));
      if (next === undefined) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, DONE_POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        continue;
      }
      const generation = consumer.generationId;
      const abort = new AbortController();
      current = { partition: next, abort };
      const engine = engineFor(o);
      const read = await readKafkaSource(engine, {
        kafka,
        logger: o.logger,
        marginMs: o.config.worker.traceMaxDurationMs,
        partitions: [next],
        ...(o.fullScan === true ? { fullScan: true } : {}),
        signal: o.signal === undefined ? abort.signal : AbortSignal.any([o.signal, abort.signal]),
        onProgress: (p) => o.onProgress?.({ ...progressOf(engine, startedAt, undefined), fraction: (done.size + (p.fraction ?? 0)) / count }),
      });
      current = undefined;
      if (abort.signal.aborted && !cancelled()) {
        o.logger.info({ group: groupId, partition: next }, 'replay partition moved to another member of the group; dropped unfinished');
        continue;
      }
      if (!read.ok) return read;
      engine.finish();
      const violations = engine.violations();
      if (o.onPartitionDone !== undefined) {
        const r = await o.onPartitionDone(violations);
        if (!r.ok) return r;
      }
      const end = (await withAdmin(kafka, (admin) => offsetsAt(admin, topic, [next], -1n))).get(next) ?? 0n;
      await consumer.commit({ offsets: [{ topic, partition: next, offset: end < 0n ? 0n : end, leaderEpoch: -1 }] });
      // Synchronous after the commit's answer: a generation that moved on means the commit rejoined first.
      if (consumer.generationId !== generation || !owned().includes(next)) {
        o.logger.info({ group: groupId, partition: next }, 'replay partition marked done after a rebalance; left to its new owner');
        continue;
      }
      results.set(next, { counters: { ...engine.counters }, violations, untimedTraceIds: engine.untimedTraceIds, fromHistoryStart: read.fromHistoryStart });
    }
  } catch (err) {
    if (cancelled()) return { ok: false, error: 'replay cancelled' };
    return { ok: false, error: `group replay ${name} (consumer group ${groupId}) on ${topic} (brokers ${kafka.brokers.join(',')}): ${describeKafkaError(err)}` };
  } finally {
    // Leaving at once hands the partitions to the members still running (errors: the session times out instead).
    await new Promise<void>((resolve) => consumer.leaveGroup(false, () => resolve()));
    await consumer.close().catch(() => undefined);
  }
  return { ok: true, report: merged(o, name, groupId, topic, results, performance.now() - startedAt) };
}

function merged(o: ReplayRunOptions, name: string, groupId: string, topic: string, results: ReadonlyMap<number, PartitionResult>, elapsedMs: number) {
  const parts = [...results.keys()].sort((a, b) => a - b);
  const counters = engineFor(o).counters;
  const violations: ReplayViolation[] = [];
  const untimed: string[] = [];
  for (const p of parts) {
    const r = results.get(p)!;
    for (const key of Object.keys(counters) as Array<keyof ReplayCounters>) {
      counters[key] = key === 'firstRecordMs' ? Math.min(counters[key], r.counters[key]) : counters[key] + r.counters[key];
    }
    violations.push(...r.violations);
    untimed.push(...r.untimedTraceIds.slice(0, UNTIMED_IDS_KEPT - untimed.length));
  }
  const source =
    parts.length === 0
      ? `${topic}, group ${name} (${groupId}): every partition was replayed by other members`
      : `${topic} partition${parts.length === 1 ? '' : 's'} ${parts.join(',')} of group ${name} (${groupId}; the others by other members)`;
  return buildReport({
    fromMs: o.fromMs,
    toMs: o.toMs,
    rules: o.rules.filter((r) => r.definition.enabled).map((r) => r.definition.id),
    source,
    counters,
    violations: sortViolations(violations, o.rules.map((r) => r.definition.id)),
    elapsedMs,
    fromHistoryStart: parts.some((p) => results.get(p)!.fromHistoryStart),
    untimedTraceIds: untimed,
  });
}
