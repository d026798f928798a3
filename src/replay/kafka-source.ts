/**
 * Replay source: the spans topic. Reads [from − trace_max_duration,
 * to + trace_max_duration] of each partition, found with offsets-for-times on
 * the records' event-time timestamps (the earliest span start in the record,
 * docs/contract.md "Kafka records"), all
 * partitions in parallel, or only the given ones (to split one replay over
 * several processes). Each partition is a lane of the engine: a trace's records
 * share a partition (keyed by trace id).
 *
 * Through the trace index (transport.kafka.index_topic, kafka-index.ts) when the rules let
 * replay skip traces: the index records of [from − trace_max_duration, to +
 * trace_max_duration] by event time (the traces' earliest span starts) give each trace's
 * records; they are assembled in offset order exactly as the records would be, and only
 * the records of traces holding a trigger are fetched. Records of the spans range no index
 * record covers (not yet indexed, a worker that crashed, a Collector's records no worker
 * read) are read in full, in their place in the offset order, so the answer is the full
 * scan's. A trace found through the index is found by when it happened, whatever the
 * spans records' timestamps say (a Collector stamps them with its send time).
 *
 * No consumer group is joined: partitions are read with Fetch requests to their
 * leaders (kafka-read.ts), so a replay never takes partitions from the workers
 * and leaves nothing behind. A partition stops at its upper bound's offset (its
 * end offset at most), read when replay starts.
 */
import type { KafkaConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Consumer, describeKafkaError, kafkaClientOptions, withAdmin, type Admin } from '../kafka/client.ts';
import { recordTraces } from '../otlp/index.ts';
import { decodeTraceSummary } from '../transport/kafka-index.ts';
import { readPartitionRange, type ReadRecord } from '../transport/kafka-read.ts';
import type { RecordFetcher, ReplayEngine, ReplayLane } from './engine.ts';
import type { SourceProgress, SourceResult } from './source.ts';

export interface KafkaSourceOptions {
  readonly kafka: KafkaConfig;
  readonly logger: Logger;
  /** Partitions to read; all when omitted. */
  readonly partitions?: readonly number[];
  /** Margin read before `from` and after `to` (worker.trace_max_duration). */
  readonly marginMs: number;
  /** Read every record of the range, not the index (default false). */
  readonly fullScan?: boolean;
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
    let describe = `${topic} partition${ranges.length === 1 ? '' : 's'} ${planned.partitions.join(',')}, ${totalRecords} record${totalRecords === 1 ? '' : 's'}`;
    const lower = engine.fromMs - options.marginMs;
    const upper = engine.toMs + options.marginMs;
    const indexPlan = options.fullScan === true ? { ok: false as const, why: 'full scan' } : await withAdmin(config, (a) => planIndex(a, config.indexTopic, planned.all.length, engine, lower, upper, planned.partitions));
    if (indexPlan.ok) {
      const c = engine.counters;
      const read = await readThroughIndex(engine, reader, config, ranges, indexPlan.ranges, options);
      describe += ` through the index ${config.indexTopic} (${read.summaries} index records; ${c.indexedRecords} records indexed, ${c.fetchedRecords} of them read; ${read.gapRecords} not indexed, read in full)`;
      return { ok: true, description: describe, fromHistoryStart: ranges.some((r) => r.fromLogStart) };
    }
    describe += ` (${indexPlan.why})`;
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

interface IndexRange {
  readonly partition: number;
  readonly start: bigint;
  readonly end: bigint;
}

/** Whether the index can be read for this replay, and its ranges by event time. */
async function planIndex(
  admin: Admin,
  indexTopic: string,
  spansPartitions: number,
  engine: ReplayEngine,
  lowerMs: number,
  upperMs: number,
  partitions: readonly number[],
): Promise<{ ok: true; ranges: Map<number, IndexRange> } | { ok: false; why: string }> {
  if (engine.triggerNames === null) return { ok: false, why: 'full scan: some rule has no triggers, or fails without them' };
  if (!(await admin.listTopics()).includes(indexTopic)) return { ok: false, why: `full scan: no index topic ${indexTopic}` };
  const metadata = await admin.metadata({ topics: [indexTopic] });
  const count = metadata.topics.get(indexTopic)?.partitionsCount ?? 0;
  if (count !== spansPartitions) return { ok: false, why: `full scan: the index topic ${indexTopic} has ${count} partitions, the spans topic ${spansPartitions}` };
  const [highs, starts, ends] = await Promise.all([
    offsetsAt(admin, indexTopic, partitions, -1n),
    offsetsAt(admin, indexTopic, partitions, BigInt(Math.max(0, lowerMs))),
    offsetsAt(admin, indexTopic, partitions, BigInt(Math.max(0, upperMs))),
  ]);
  const ranges = new Map<number, IndexRange>();
  for (const partition of partitions) {
    const high = highs.get(partition) ?? 0n;
    const s = starts.get(partition) ?? -1n;
    const e = ends.get(partition) ?? -1n;
    const start = s < 0n ? high : s;
    const end = e < 0n || e > high ? high : e;
    ranges.set(partition, { partition, start, end: end < start ? start : end });
  }
  return { ok: true, ranges };
}

/** A record known from the index, in a partition's offset order. */
interface Indexed {
  readonly offset: number;
  readonly traceId: string;
  readonly timestampMs: number;
  readonly earliestStartMs: number;
  readonly spanCount: number;
  readonly untimedSpans: number;
  triggered: boolean;
}

/** Where an indexed record is: its spans partition, offset and trace (a record may hold several). */
interface KafkaLocation {
  readonly partition: number;
  readonly offset: number;
  readonly traceId: string;
}

/**
 * Per partition: its index records read (by event time), then the lane fed in offset order
 * with the indexed records' summaries and, read in full, the records of the spans range no
 * index record covers.
 */
async function readThroughIndex(
  engine: ReplayEngine,
  reader: Consumer,
  config: KafkaConfig,
  ranges: readonly PartitionRange[],
  indexRanges: ReadonlyMap<number, IndexRange>,
  options: KafkaSourceOptions,
): Promise<{ summaries: number; gapRecords: number }> {
  const triggers = engine.triggerNames!;
  const maxBytes = Math.max(8 * 1024 * 1024, config.maxRecordBytes);
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  let summaries = 0;
  let gapRecords = 0;
  const fetch: RecordFetcher = (locations) => fetchRecords(reader, config.spansTopic, locations as KafkaLocation[], maxBytes, signal);
  await Promise.all(
    ranges.map(async (range) => {
      const partition = range.partition;
      const ir = indexRanges.get(partition);
      // The partition's index records: per (offset, trace) once (a re-evaluated trace is indexed again).
      const byKey = new Map<string, Indexed>();
      const parts = new Map<number, number>();
      const triggeredTraces = new Set<string>();
      if (ir !== undefined && ir.start < ir.end) {
        await readPartitionRange(reader, {
          topic: config.indexTopic,
          partition,
          start: ir.start,
          end: ir.end,
          maxBytes,
          ...signal,
          onRecords: (records) => {
            for (const r of records) {
              if (r.key === null || r.value === null) continue;
              const s = decodeTraceSummary(r.key.toString('latin1'), r.value);
              if (s === undefined) continue;
              summaries++;
              if (s.names.some((n) => triggers.has(n))) triggeredTraces.add(s.traceId);
              for (const rec of s.records) {
                const key = `${rec.offset}:${s.traceId}`;
                if (byKey.has(key)) continue;
                byKey.set(key, { offset: rec.offset, traceId: s.traceId, timestampMs: rec.timestampMs, earliestStartMs: rec.earliestStartMs, spanCount: rec.spanCount, untimedSpans: rec.untimedSpans, triggered: false });
                parts.set(rec.offset, Math.max(parts.get(rec.offset) ?? 0, rec.parts));
              }
            }
          },
        });
      }
      const indexed = [...byKey.values()].sort((a, b) => a.offset - b.offset);
      for (const e of indexed) e.triggered = triggeredTraces.has(e.traceId);
      // Offsets whose every trace part is indexed.
      const seen = new Map<number, number>();
      for (const e of indexed) seen.set(e.offset, (seen.get(e.offset) ?? 0) + 1);
      const covered = (offset: number) => (seen.get(offset) ?? 0) >= (parts.get(offset) ?? Infinity);
      const gaps = gapRuns(Number(range.start), Number(range.end), covered);
      const lane = engine.lane();
      let next = 0;
      const feedIndexedBefore = (offset: number) => {
        while (next < indexed.length && indexed[next]!.offset < offset) {
          const e = indexed[next++]!;
          if (!covered(e.offset)) continue; // read whole as a record instead
          lane.addSummary({ ...e, location: { partition, offset: e.offset, traceId: e.traceId } satisfies KafkaLocation });
        }
      };
      for (const [start, end] of gaps) {
        await readPartitionRange(reader, {
          topic: config.spansTopic,
          partition,
          start: BigInt(start),
          end: BigInt(end),
          maxBytes,
          ...signal,
          onRecords: async (records: ReadRecord[]) => {
            for (const r of records) {
              const offset = Number(r.offset);
              feedIndexedBefore(offset);
              if (covered(offset) || r.value === null) continue;
              gapRecords++;
              lane.addRecord(r.value, r.timestampMs);
            }
            await engine.fetchPending(fetch);
          },
        });
        feedIndexedBefore(end);
        await engine.fetchPending(fetch);
      }
      // The rest, a few thousand at a time, fetching what they complete in between.
      while (next < indexed.length) {
        feedIndexedBefore(indexed[Math.min(indexed.length, next + 4096) - 1]!.offset + 1);
        await engine.fetchPending(fetch);
        options.onProgress?.({ fraction: next / indexed.length });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      lane.end();
      await engine.fetchPending(fetch);
    }),
  );
  return { summaries, gapRecords };
}

/** Runs [start, end) of offsets in [from, to) not covered; runs closer than 64 offsets are read as one. */
function gapRuns(from: number, to: number, covered: (offset: number) => boolean): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let o = from; o < to; o++) {
    if (covered(o)) continue;
    const last = runs.at(-1);
    if (last !== undefined && o - last[1] < 64) last[1] = o + 1;
    else runs.push([o, o + 1]);
  }
  return runs;
}

/** Reads the records at the locations (per partition, nearby offsets in one read) and takes each trace's part. */
async function fetchRecords(reader: Consumer, topic: string, locations: readonly KafkaLocation[], maxBytes: number, signal: { signal?: AbortSignal }): Promise<Uint8Array[]> {
  const out = new Array<Uint8Array>(locations.length);
  const byPartition = new Map<number, number[]>();
  locations.forEach((l, i) => {
    const list = byPartition.get(l.partition);
    if (list === undefined) byPartition.set(l.partition, [i]);
    else list.push(i);
  });
  for (const [partition, idx] of byPartition) {
    idx.sort((a, b) => locations[a]!.offset - locations[b]!.offset);
    let k = 0;
    while (k < idx.length) {
      const start = locations[idx[k]!]!.offset;
      let j = k + 1;
      while (j < idx.length && locations[idx[j]!]!.offset - locations[idx[j - 1]!]!.offset < 64) j++;
      const end = locations[idx[j - 1]!]!.offset + 1;
      const values = new Map<number, Buffer>();
      await readPartitionRange(reader, {
        topic,
        partition,
        start: BigInt(start),
        end: BigInt(end),
        maxBytes,
        ...signal,
        onRecords: (records) => {
          for (const r of records) if (r.value !== null) values.set(Number(r.offset), r.value);
        },
      });
      for (; k < j; k++) {
        const l = locations[idx[k]!]!;
        const value = values.get(l.offset);
        const part = value === undefined ? undefined : recordTraces(value)?.find((t) => t.traceId === l.traceId);
        if (part === undefined) throw new Error(`${topic} partition ${partition} offset ${l.offset} does not hold trace ${l.traceId}, as its index says (gone by retention? replay with --full-scan)`);
        out[idx[k]!] = part.payload;
      }
    }
  }
  return out;
}

/** Offsets of the partitions at `timestamp` (-2: earliest, -1: latest); -1 for a time past the end. */
export async function offsetsAt(admin: Admin, topic: string, partitions: readonly number[], timestamp: bigint): Promise<Map<number, bigint>> {
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
