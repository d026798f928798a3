/**
 * Reads a range of one partition with Fetch requests to its leader, without
 * joining a consumer group (the client's Consumer.fetch): for a worker's
 * violation ledger and for replay, which must never take partitions from a
 * group. Retries while the leader moves or a broker restarts, up to a deadline.
 */
import { describeKafkaError, type Consumer } from '../kafka/client.ts';

export interface ReadRecord {
  readonly offset: bigint;
  readonly timestampMs: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Header values by name (UTF-8). */
  readonly headers: ReadonlyMap<string, Buffer>;
}

export interface ReadRangeOptions {
  readonly topic: string;
  readonly partition: number;
  readonly start: bigint;
  /** Exclusive. */
  readonly end: bigint;
  readonly maxBytes: number;
  /** Give up after this long without progress. */
  readonly stallTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Called for each record in order; a promise returned is awaited before the next fetch. */
  readonly onRecords: (records: ReadRecord[]) => void | Promise<void>;
}

/** Whether the batch holds transaction markers rather than records (attributes bit 5). */
const IS_CONTROL = 0x20;

function headersOf(entries: [Buffer | null, Buffer | null][]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of entries) if (k !== null && v !== null) out.set(k.toString('utf8'), v);
  return out;
}

/** Reads [start, end) of the partition; resolves the offset it reached (end, or less if the partition ended earlier). */
export async function readPartitionRange(consumer: Consumer, options: ReadRangeOptions): Promise<bigint> {
  const { topic, partition } = options;
  let next = options.start;
  let lastProgress = Date.now();
  let attempt = 0;
  let forceMetadata = false;
  while (next < options.end) {
    if (options.signal?.aborted === true) throw new Error('read cancelled');
    try {
      const metadata = await consumer.metadata({ topics: [topic], forceUpdate: forceMetadata });
      const t = metadata.topics.get(topic);
      if (t === undefined) throw new Error(`topic ${topic} does not exist`);
      const leader = t.partitions[partition]?.leader;
      if (leader === undefined) throw new Error(`topic ${topic} has no partition ${partition}`);
      if (leader < 0) throw new Error(`partition ${partition} of ${topic} has no leader`);
      const response = await consumer.fetch({
        node: leader,
        maxWaitTime: 100,
        minBytes: 1,
        maxBytes: options.maxBytes,
        topics: [
          { topicId: t.id, partitions: [{ partition, fetchOffset: next, partitionMaxBytes: options.maxBytes, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }] },
        ],
      });
      const p = response.responses[0]?.partitions.find((x) => x.partitionIndex === partition);
      if (p === undefined) throw new Error('no answer for the partition');
      if (p.errorCode !== 0) throw new Error(`fetch error code ${p.errorCode}`);
      const records: ReadRecord[] = [];
      let reached = next;
      for (const batch of p.records ?? []) {
        const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
        if (last + 1n > reached) reached = last + 1n;
        if ((batch.attributes & IS_CONTROL) !== 0) continue;
        for (const r of batch.records) {
          const offset = batch.firstOffset + BigInt(r.offsetDelta);
          if (offset < next || offset >= options.end) continue;
          records.push({ offset, timestampMs: Number(batch.firstTimestamp + r.timestampDelta), key: r.key, value: r.value, headers: headersOf(r.headers) });
        }
      }
      if (records.length > 0) await options.onRecords(records);
      if (reached > next) {
        next = reached;
        lastProgress = Date.now();
        attempt = 0;
        forceMetadata = false;
      } else if (p.highWatermark <= next) {
        return next; // the partition ends before `end`
      }
    } catch (err) {
      if (Date.now() - lastProgress > (options.stallTimeoutMs ?? 30_000)) {
        throw new Error(`cannot read partition ${partition} of ${topic} at offset ${next}: ${describeKafkaError(err)}`, { cause: err });
      }
      forceMetadata = true;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt++, 2000)));
    }
  }
  return next;
}
