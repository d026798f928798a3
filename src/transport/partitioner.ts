/**
 * Partition of a trace id key, shared by the embedded and Kafka transports.
 * sarama: FNV-1a 32 as Sarama's (and franz-go's Sarama-compatible) hash
 * partitioner, which the OpenTelemetry Collector's Kafka exporter uses;
 * murmur2: the Java client's default partitioner.
 */
export type PartitionerName = 'sarama' | 'murmur2';
export type PartitionFn = (key: string, partitions: number) => number;

export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Kafka's Java murmur2 (org.apache.kafka.common.utils.Utils.murmur2), signed 32-bit result. */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  const m = 0x5bd1e995;
  const r = 24;
  let h = 0x9747b28c ^ length;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (bytes[i4]! & 0xff) | ((bytes[i4 + 1]! & 0xff) << 8) | ((bytes[i4 + 2]! & 0xff) << 16) | ((bytes[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= (bytes[tail + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (bytes[tail + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= bytes[tail]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

export function saramaPartition(key: string, partitions: number): number {
  const p = (fnv1a32(Buffer.from(key, 'latin1')) | 0) % partitions;
  return Math.abs(p);
}

export function murmur2Partition(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, 'latin1')) & 0x7fffffff) % partitions;
}

export function partitionerFor(name: PartitionerName): PartitionFn {
  return name === 'murmur2' ? murmur2Partition : saramaPartition;
}
