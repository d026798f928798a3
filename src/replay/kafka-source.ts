/**
 * Replay source: the spans topic. Reads [from − trace_max_duration,
 * to + trace_max_duration] of each partition, found with offsets-for-times on
 * the records' event-time timestamps (the earliest span start in the record,
 * docs/contract.md "Kafka records"), all
 * partitions in parallel, or only the given ones (to split one replay over
 * several processes). Each partition is a lane of the engine: a trace's records
 * share a partition (keyed by trace id).
 *
 * No consumer group is joined: partitions are read with Fetch requests to their
 * leaders (kafka-read.ts), so a replay never takes partitions from the workers
 * and leaves nothing behind. A partition stops at its upper bound's offset (its
 * end offset at most), read when replay starts.
 */
import type { KafkaConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Consumer, describeKafkaError, kafkaClientOptions, withAdmin, type Admin } from '../kafka/client.ts';
import { readPartitionRange } from '../transport/kafka-read.ts';
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
  /** The range starts at the partition's first retained record (or the partition holds none). */
  readonly fromLogStart: boolean;
  lane?: ReplayLane;
  read: bigint;
  done: boolean;
}

/** Reads the topic range into `engine` (one lane per partition). */
export async function readKafkaSource(engine: ReplayEngine, options: KafkaSourceOptions): Promise<SourceResult> {
  const { kafka: config } = options;
  const topic = config.spansTopic;
  const reader = new Consumer({ ...kafkaClientOptions(config, '-replay'), groupId: `${config.clientId}-replay` });
  try {
    const planned = await withAdmin(config, (a) => plan(a, topic, engine.fromMs - options.marginMs, engine.toMs + options.marginMs, options.partitions));
    if (!planned.ok) return planned;
    const ranges = planned.ranges;
    const totalRecords = ranges.reduce((n, r) => n + Number(r.end - r.start), 0);
    const describe = `${topic} partition${ranges.length === 1 ? '' : 's'} ${planned.partitions.join(',')}, ${totalRecords} record${totalRecords === 1 ? '' : 's'}`;
    const active = ranges.filter((r) => r.start < r.end);
    let readRecords = 0;
    await Promise.all(
      active.map(async (range) => {
        const lane = (range.lane = engine.lane());
        range.read = await readPartitionRange(reader, {
          topic,
          partition: range.partition,
          start: range.start,
          end: range.end,
          maxBytes: Math.max(8 * 1024 * 1024, config.maxRecordBytes),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          onRecords: async (records) => {
            for (const r of records) if (r.value !== null) lane.addRecord(r.value, r.timestampMs);
            readRecords += records.length;
            options.onProgress?.({ fraction: totalRecords === 0 ? 1 : Math.min(1, readRecords / totalRecords) });
            // Let timers (progress, cancellation) run between fetches.
            await new Promise<void>((resolve) => setImmediate(resolve));
          },
        });
        range.done = true;
        lane.end();
      }),
    );
    return { ok: true, description: describe, fromHistoryStart: ranges.some((r) => r.fromLogStart) };
  } catch (err) {
    if (options.signal?.aborted === true) return { ok: false, error: 'replay cancelled' };
    return { ok: false, error: `cannot read Kafka topic ${topic} (brokers ${config.brokers.join(',')}): ${describeKafkaError(err)}` };
  } finally {
    await reader.close().catch(() => undefined);
  }
}

/** Offsets of the partitions at `timestamp` (-2: earliest, -1: latest); -1 for a time past the end. */
async function offsetsAt(admin: Admin, topic: string, partitions: readonly number[], timestamp: bigint): Promise<Map<number, bigint>> {
  const listed = await admin.listOffsets({ topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }] });
  return new Map((listed[0]?.partitions ?? []).map((p) => [p.partitionIndex, p.offset]));
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
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  const all = Array.from({ length: count }, (_, i) => i);
  if (wanted !== undefined) {
    const missing = wanted.filter((p) => !all.includes(p));
    if (missing.length > 0) return { ok: false, error: `--partitions: ${topic} has no partition ${missing.join(', ')} (it has 0-${all.length - 1})` };
  }
  const partitions = wanted === undefined ? all : [...new Set(wanted)].sort((a, b) => a - b);
  const [lows, highs, starts, ends] = await Promise.all([
    offsetsAt(admin, topic, partitions, -2n),
    offsetsAt(admin, topic, partitions, -1n),
    offsetsAt(admin, topic, partitions, BigInt(Math.max(0, lowerMs))),
    offsetsAt(admin, topic, partitions, BigInt(Math.max(0, upperMs))),
  ]);
  const ranges: PartitionRange[] = [];
  for (const partition of partitions) {
    const low = lows.get(partition) ?? 0n;
    const high = highs.get(partition) ?? 0n;
    const s = starts.get(partition) ?? -1n;
    const e = ends.get(partition) ?? -1n;
    const start = s < 0n ? high : s < low ? low : s;
    const end = e < 0n || e > high ? high : e;
    ranges.push({ partition, start, end: end < start ? start : end, fromLogStart: start <= low || low === high, read: start, done: false });
  }
  return { ok: true, ranges, partitions, all };
}
