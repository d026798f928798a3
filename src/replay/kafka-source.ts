/**
 * Replay source: the spans topic. Reads [from − trace_max_duration,
 * to + trace_max_duration] of each partition, found with offsets-for-times on
 * the records' event-time timestamps (the earliest span start in the record,
 * docs/contract.md "Kafka records"), all
 * partitions in parallel, or only the given ones (to split one replay over
 * several processes). Each partition is a lane of the engine: a trace's records
 * share a partition (keyed by trace id).
 *
 * The workers' consumer group is never joined. kafkajs has no assign(), so a
 * throwaway group with a random id is used: its consumer seeks each partition to
 * the start offset, never commits (autoCommit off, no commitOffsets), and the
 * group is deleted afterwards. A partition stops at the first offset at or past
 * the upper bound (its end offset), read when replay starts.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { KafkaConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { createKafkaClient, withAdmin } from '../transport/kafka.ts';
import type { ReplayEngine, ReplayLane } from './engine.ts';
import type { SourceProgress, SourceResult } from './source.ts';

export interface KafkaSourceOptions {
  readonly kafka: KafkaConfig;
  readonly logger: Logger;
  /** Partitions to read; all when omitted. */
  readonly partitions?: readonly number[];
  /** Margin read before `from` and after `to` (worker.trace_max_duration). */
  readonly marginMs: number;
  readonly onProgress?: (p: SourceProgress) => void;
  readonly signal?: AbortSignal;
}

interface PartitionRange {
  readonly partition: number;
  readonly start: bigint;
  /** Exclusive. */
  readonly end: bigint;
  lane?: ReplayLane;
  read: bigint;
  done: boolean;
}

/** Reads the topic range into `engine` (one lane per partition). */
export async function readKafkaSource(engine: ReplayEngine, options: KafkaSourceOptions): Promise<SourceResult> {
  const { kafka: config, logger } = options;
  const topic = config.spansTopic;
  const kafka = createKafkaClient(config, logger, '-replay');
  const groupId = `betrace-replay-${randomUUID()}`;
  let consumer: Consumer | undefined;
  let groupJoined = false;
  try {
    const planned = await withAdmin(kafka, (a) => plan(a, topic, engine.fromMs - options.marginMs, engine.toMs + options.marginMs, options.partitions));
    if (!planned.ok) return planned;
    const ranges = planned.ranges;
    const totalRecords = ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
    const describe = `${topic} partition${ranges.length === 1 ? '' : 's'} ${planned.partitions.join(',')}, ${totalRecords} record${totalRecords === 1 ? '' : 's'}`;
    const active = ranges.filter((r) => r.start < r.end);
    if (active.length === 0) return { ok: true, description: describe };
    for (const r of active) r.lane = engine.lane();

    consumer = kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: Math.max(8 * 1024 * 1024, config.maxRecordBytes),
      maxBytes: 64 * 1024 * 1024,
      maxWaitTimeInMs: 250,
      sessionTimeout: Math.max(config.sessionTimeoutMs, 30_000),
      retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
    });
    const byPartition = new Map(active.map((r) => [r.partition, r]));
    let readRecords = 0;
    let finish!: (r: SourceResult) => void;
    const finished = new Promise<SourceResult>((resolve) => (finish = resolve));
    let remaining = active.length;
    const c = consumer;
    c.on(c.events.CRASH, (event) => {
      if (!event.payload.restart) finish({ ok: false, error: `Kafka consumer failed: ${event.payload.error.message}` });
    });
    c.on(c.events.GROUP_JOIN, () => {
      groupJoined = true;
    });
    const onAbort = () => finish({ ok: false, error: 'replay cancelled' });
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
      const { batch } = payload;
      const range = byPartition.get(batch.partition);
      if (range === undefined || range.done || !payload.isRunning() || payload.isStale()) return;
      const lane = range.lane!;
      for (const m of batch.messages) {
        const offset = BigInt(m.offset);
        if (offset < range.start) continue;
        if (offset >= range.end) break;
        range.read = offset + 1n;
        readRecords++;
        if (m.value !== null) lane.addRecord(m.value, Number(m.timestamp));
        payload.resolveOffset(m.offset);
      }
      if (range.read >= range.end || BigInt(batch.lastOffset()) >= range.end - 1n) {
        range.done = true;
        lane.end();
        c.pause([{ topic, partitions: [range.partition] }]);
        if (--remaining === 0) finish({ ok: true, description: describe });
      }
      options.onProgress?.({ fraction: totalRecords === 0 ? 1 : readRecords / totalRecords });
      await payload.heartbeat();
    };

    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: true });
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.min(active.length, 16),
      eachBatch,
    });
    const others = planned.all.filter((p) => !byPartition.has(p));
    if (others.length > 0) c.pause([{ topic, partitions: others }]);
    for (const r of active) c.seek({ topic, partition: r.partition, offset: r.start.toString() });
    const result = await finished;
    options.signal?.removeEventListener('abort', onAbort);
    return result;
  } catch (err) {
    return { ok: false, error: `cannot read Kafka topic ${topic} (brokers ${config.brokers.join(',')}): ${(err as Error).message}` };
  } finally {
    if (consumer !== undefined) await consumer.disconnect().catch(() => undefined);
    if (consumer !== undefined || groupJoined) await deleteGroup(kafka, groupId, logger);
  }
}

async function deleteGroup(kafka: Kafka, groupId: string, logger: Logger): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await withAdmin(kafka, (admin) => admin.deleteGroups([groupId]), 5000);
      return;
    } catch (err) {
      const message = (err as Error).message;
      // A group that never formed is not there to delete.
      if (/does not exist|GROUP_ID_NOT_FOUND|not found/i.test(message)) return;
      if (attempt === 4) {
        logger.warn({ groupId, error: message }, 'replay: could not delete the throwaway consumer group');
        return;
      }
      await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
    }
  }
}

async function plan(
  admin: Admin,
  topic: string,
  lowerMs: number,
  upperMs: number,
  wanted: readonly number[] | undefined,
): Promise<{ ok: true; ranges: PartitionRange[]; partitions: number[]; all: number[] } | { ok: false; error: string }> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) return { ok: false, error: `Kafka topic ${topic} does not exist` };
  const watermarks = await admin.fetchTopicOffsets(topic);
  const all = watermarks.map((w) => w.partition).sort((a, b) => a - b);
  if (wanted !== undefined) {
    const missing = wanted.filter((p) => !all.includes(p));
    if (missing.length > 0) return { ok: false, error: `--partitions: ${topic} has no partition ${missing.join(', ')} (it has 0-${all.length - 1})` };
  }
  const partitions = wanted === undefined ? all : [...new Set(wanted)].sort((a, b) => a - b);
  const [starts, ends] = await Promise.all([
    admin.fetchTopicOffsetsByTimestamp(topic, Math.max(0, lowerMs)),
    admin.fetchTopicOffsetsByTimestamp(topic, Math.max(0, upperMs)),
  ]);
  const ranges: PartitionRange[] = [];
  for (const partition of partitions) {
    const w = watermarks.find((x) => x.partition === partition)!;
    const low = BigInt(w.low);
    const high = BigInt(w.high);
    const s = BigInt(starts.find((x) => x.partition === partition)?.offset ?? w.high);
    const e = BigInt(ends.find((x) => x.partition === partition)?.offset ?? w.high);
    const start = s < low ? low : s;
    const end = e > high ? high : e;
    ranges.push({ partition, start, end: end < start ? start : end, read: start, done: false });
  }
  return { ok: true, ranges, partitions, all };
}
