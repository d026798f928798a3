/**
 * kafkajs, loaded with a native CRC-32C. kafkajs checksums every record batch
 * it produces with a CRC-32C written in JavaScript (about 0.4 GB/s here); the
 * receiver checksums every span it writes, so that loop was a fifth of its CPU
 * time into Kafka. @node-rs/crc32 computes the same checksum natively (SSE 4.2,
 * over 5 GB/s). It is put in place of kafkajs's module before kafkajs loads;
 * when it cannot be (no native build for this platform, or kafkajs loaded
 * earlier by someone else) kafkajs keeps its own, and `nativeCrc32c` says so.
 *
 * Every value import of kafkajs in src goes through this module.
 */
import type * as KafkaJs from 'kafkajs';
import { createRequire, type Module } from 'node:module';

const require = createRequire(import.meta.url);

function installNativeCrc32c(): boolean {
  const target = require.resolve('kafkajs/src/protocol/recordBatch/crc32C/index.js');
  if (require.cache[target] !== undefined) return false;
  let crc32c: (input: Uint8Array) => number;
  try {
    ({ crc32c } = require('@node-rs/crc32') as { crc32c: (input: Uint8Array) => number });
  } catch {
    return false;
  }
  // kafkajs's contract for this module: buffer => unsigned 32-bit CRC-32C.
  const exported = (buffer: Uint8Array): number => crc32c(buffer) >>> 0;
  require.cache[target] = { id: target, filename: target, loaded: true, exports: exported, children: [], paths: [] } as unknown as Module;
  return true;
}

/** Whether kafkajs checksums record batches natively in this process. */
export const nativeCrc32c = installNativeCrc32c();

interface KafkaJsEncoder {
  buf: Buffer;
  offset: number;
  /** The bytes before buf[start], in order: finished stretches of buf and of nested encoders (undefined: none). */
  parts: Buffer[] | undefined;
  /** Bytes in parts. */
  partBytes: number;
  /** Where the bytes still written into buf begin. */
  start: number;
  readonly buffer: Buffer;
  size(): number;
  writeBufferInternal(buffer: Buffer): void;
}

interface KafkaJsEncoderPrototype extends KafkaJsEncoder {
  ensureAvailable: (this: KafkaJsEncoder, length: number) => void;
  writeEncoder: (this: KafkaJsEncoder, value: KafkaJsEncoder | null | undefined) => KafkaJsEncoder;
  writeEncoderArray: (this: KafkaJsEncoder, values: (KafkaJsEncoder | null | undefined)[]) => KafkaJsEncoder;
}

interface KafkaJsEncoderClass {
  new (initialSize?: number): KafkaJsEncoder;
  readonly prototype: KafkaJsEncoderPrototype;
  nextPowerOfTwo(value: number): number;
}

/** Nested encoders at least this large are taken by reference, smaller ones copied. */
export const NESTED_BY_REFERENCE_BYTES = 4096;

/**
 * kafkajs encodes every request (and each record in it) into buffers it takes
 * from Buffer.alloc: a new, zero-filled ArrayBuffer each time, 512 bytes at
 * least, doubled and copied as it grows. An encoder only ever exposes the bytes
 * it wrote (`buffer` is `buf` up to `offset`), so nothing needs zeroing: here
 * its buffers come from Buffer.allocUnsafe, which carves small ones out of a
 * shared pool. A worker producing violations to Kafka allocated about half a
 * gigabyte per million spans that way, all of it counted by V8 as external
 * memory (which starts full garbage collections).
 *
 * A request is encoders nested in encoders (record batch, partition, topic,
 * request body, request), and kafkajs copied each into the next, so every
 * record's bytes were copied about nine times on their way to the socket (a
 * sixth of a receiver's CPU into Kafka). Here a nested encoder of
 * NESTED_BY_REFERENCE_BYTES or more is kept by reference (`parts`), and the
 * bytes are joined once, when kafkajs first reads `buffer` (the CRC of a record
 * batch, the request written to the socket). The bytes are kafkajs's own,
 * checked in test/transport/kafkajs-pooled-encoders.test.ts.
 */
function encodeWithoutZeroFill(): boolean {
  const target = require.resolve('kafkajs/src/protocol/encoder.js');
  if (require.cache[target] !== undefined) return false;
  const Encoder = require(target) as KafkaJsEncoderClass;
  const proto = Encoder.prototype;
  proto.ensureAvailable = function (this: KafkaJsEncoder, length: number): void {
    if (this.offset + length <= this.buf.length) return;
    // Bytes before `start` are in parts already: only the rest moves.
    const live = this.offset - this.start;
    const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(live + length));
    this.buf.copy(grown, 0, this.start, this.offset);
    this.buf = grown;
    this.offset = live;
    this.start = 0;
  };
  Object.defineProperty(proto, 'buffer', {
    configurable: true,
    get(this: KafkaJsEncoder): Buffer {
      if (this.parts === undefined) return this.buf.subarray(0, this.offset);
      // Joined once; the encoder holds the joined bytes from then on.
      const total = this.size();
      this.parts.push(this.buf.subarray(this.start, this.offset));
      const joined = Buffer.concat(this.parts, total);
      this.buf = joined;
      this.offset = total;
      this.start = 0;
      this.parts = undefined;
      this.partBytes = 0;
      return joined;
    },
  });
  proto.size = function (this: KafkaJsEncoder): number {
    return this.partBytes + this.offset - this.start;
  };
  const append = (target: KafkaJsEncoder, value: KafkaJsEncoder): void => {
    const n = value.size();
    if (n < NESTED_BY_REFERENCE_BYTES) {
      target.writeBufferInternal(value.buffer);
      return;
    }
    const parts = (target.parts ??= []);
    if (target.offset > target.start) {
      parts.push(target.buf.subarray(target.start, target.offset));
      target.partBytes += target.offset - target.start;
      target.start = target.offset;
    }
    if (value.parts !== undefined) for (const p of value.parts) parts.push(p);
    if (value.offset > value.start) parts.push(value.buf.subarray(value.start, value.offset));
    target.partBytes += n;
  };
  const isEncoder = (v: KafkaJsEncoder | null | undefined): v is KafkaJsEncoder => v != null && Buffer.isBuffer(v.buf);
  proto.writeEncoder = function (this: KafkaJsEncoder, value: KafkaJsEncoder | null | undefined): KafkaJsEncoder {
    if (!isEncoder(value)) throw new Error('value should be an instance of Encoder');
    append(this, value);
    return this;
  };
  proto.writeEncoderArray = function (this: KafkaJsEncoder, values: (KafkaJsEncoder | null | undefined)[]): KafkaJsEncoder {
    if (!Array.isArray(values) || !values.every(isEncoder)) throw new Error('all values should be an instance of Encoder[]');
    for (const v of values) append(this, v);
    return this;
  };
  // kafkajs constructs encoders with `new Encoder()`: an object returned by a constructor is the result.
  function PooledEncoder(initialSize = 511): KafkaJsEncoder {
    const encoder = Object.create(proto) as KafkaJsEncoder;
    encoder.buf = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(initialSize));
    encoder.offset = 0;
    encoder.parts = undefined;
    encoder.partBytes = 0;
    encoder.start = 0;
    return encoder;
  }
  PooledEncoder.prototype = Encoder.prototype;
  Object.setPrototypeOf(PooledEncoder, Encoder); // the static helpers
  require.cache[target]!.exports = PooledEncoder;
  return true;
}

/** Whether kafkajs encodes requests into unzeroed, pooled buffers in this process. */
export const pooledEncoders = encodeWithoutZeroFill();

type RecordArgs = { offsetDelta?: number; timestampDelta?: number; key?: Buffer | string | null; value?: Buffer | string | null; headers?: Record<string, unknown> };

/** Bytes of the zigzag varint of the 32-bit integer v. */
function varintSize(v: number): number {
  const u = ((v << 1) ^ (v >> 31)) >>> 0;
  return u < 0x80 ? 1 : u < 0x4000 ? 2 : u < 0x200000 ? 3 : u < 0x10000000 ? 4 : 5;
}

/** Writes the zigzag varint of the 32-bit integer v at `at`; returns where it ends. */
function putVarint(buf: Buffer, at: number, v: number): number {
  let u = ((v << 1) ^ (v >> 31)) >>> 0;
  while (u >= 0x80) {
    buf[at++] = (u & 0x7f) | 0x80;
    u >>>= 7;
  }
  buf[at++] = u;
  return at;
}

const isInt32 = (v: unknown): v is number => typeof v === 'number' && (v | 0) === v;

/** Whether `o` has an own enumerable key (kafkajs reads headers with Object.keys). */
function hasOwnKeys(o: object): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/**
 * kafkajs's record encoder (recordBatch/record/v0) writes each record through
 * a second encoder for its headers, sizes its key and value twice, and turns
 * the timestamp delta into a 64-bit Long to write it: about 5 µs a record, and
 * a worker writes one record per violation (some 50,000 per million spans in
 * the bench workload). For a record without headers whose deltas fit 32 bits
 * (their zigzag varints are then the same bytes as kafkajs's 64-bit ones) and
 * whose key and value are strings, buffers or null, the same bytes are written
 * here into one encoder sized once: half the time. Any other record goes to
 * kafkajs's own encoder. Checked byte for byte in
 * test/transport/kafkajs-pooled-encoders.test.ts.
 */
function encodeRecordsDirectly(): boolean {
  const target = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/index.js');
  if (require.cache[target] !== undefined) return false;
  const original = require(target) as (args: RecordArgs) => KafkaJsEncoder;
  const Encoder = require('kafkajs/src/protocol/encoder.js') as KafkaJsEncoderClass;
  const bytesOf = (v: Buffer | string | null | undefined): number => (v == null ? -1 : typeof v === 'string' ? Buffer.byteLength(v) : v.length);
  const put = (buf: Buffer, at: number, v: Buffer | string | null | undefined, n: number): number => {
    at = putVarint(buf, at, n);
    if (typeof v === 'string') return at + buf.write(v, at, n, 'utf8');
    if (v != null) return at + v.copy(buf, at);
    return at;
  };
  const fast = (args: RecordArgs): KafkaJsEncoder => {
    const { offsetDelta = 0, timestampDelta = 0, key, value, headers } = args;
    if (!isInt32(offsetDelta) || !isInt32(timestampDelta)) return original(args);
    if (headers != null && hasOwnKeys(headers)) return original(args);
    if (!(key == null || typeof key === 'string' || Buffer.isBuffer(key)) || !(value == null || typeof value === 'string' || Buffer.isBuffer(value))) return original(args);
    const keyBytes = bytesOf(key);
    const valueBytes = bytesOf(value);
    const body = 1 + varintSize(timestampDelta) + varintSize(offsetDelta) + varintSize(keyBytes) + Math.max(0, keyBytes) + varintSize(valueBytes) + Math.max(0, valueBytes) + 1;
    const total = varintSize(body) + body;
    const encoder = new Encoder(total); // its buffer: the next power of two above total
    const buf = encoder.buf;
    let at = encoder.offset;
    at = putVarint(buf, at, body);
    buf[at++] = 0; // attributes
    at = putVarint(buf, at, timestampDelta);
    at = putVarint(buf, at, offsetDelta);
    at = put(buf, at, key, keyBytes);
    at = put(buf, at, value, valueBytes);
    buf[at++] = 0; // no headers
    encoder.offset = at;
    return encoder;
  };
  require.cache[target]!.exports = fast;
  return true;
}

/** Whether kafkajs's producers encode plain records with encodeRecordsDirectly above in this process. */
export const directRecords = encodeRecordsDirectly();

type Grouping = (args: { topic: string; partitionMetadata: readonly unknown[]; messages: readonly KafkaJs.Message[]; partitioner: (args: { topic: string; partitionMetadata: readonly unknown[]; message: KafkaJs.Message }) => number }) => Record<number, KafkaJs.Message[]>;

/**
 * What kafkajs's producer/groupMessagesPerPartition.js does (each message to the partition
 * the partitioner picks, in order; {} without partition metadata), in linear time: kafkajs
 * spreads the list so far into a new one for every message, quadratic in the messages of
 * one send (2% of a worker's I/O thread producing violations in batches of up to 2000,
 * 1.3% of a receiver's into Kafka).
 */
export const groupMessagesPerPartition: Grouping = ({ topic, partitionMetadata, messages, partitioner }) => {
  const result: Record<number, KafkaJs.Message[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
};

function groupInLinearTime(): boolean {
  const target = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  if (require.cache[target] !== undefined) return false;
  require.cache[target] = { id: target, filename: target, loaded: true, exports: groupMessagesPerPartition, children: [], paths: [] } as unknown as Module;
  return true;
}

/** Whether kafkajs's producers group messages with groupMessagesPerPartition above in this process. */
export const linearGrouping = groupInLinearTime();

interface KafkaJsConnection {
  chunks: Buffer[];
  bytesBuffered: number;
  processData: (this: KafkaJsConnection, rawData: Buffer) => void;
}

/**
 * After each response kafkajs keeps the bytes that followed it (`chunks`, often
 * one empty buffer) and joins the next data onto them with Buffer.concat: a
 * copy of every response into fresh memory. With nothing buffered there is
 * nothing to join: the data is decoded where it lies, as the sockets of
 * kafka-socket.ts deliver it (whole responses).
 */
function decodeResponsesInPlace(): void {
  const { prototype } = require('kafkajs/src/network/connection.js') as { prototype: KafkaJsConnection };
  const processData = prototype.processData;
  prototype.processData = function (this: KafkaJsConnection, rawData: Buffer): void {
    if (this.bytesBuffered === 0 && this.chunks.length > 0) this.chunks = [];
    processData.call(this, rawData);
  };
}

interface KafkaJsRequestQueue {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests: () => void;
  scheduleCheckPendingRequests: (this: KafkaJsRequestQueue) => void;
}

/** kafkajs's interval for checking queued requests (requestQueue/index.js). */
export const CHECK_PENDING_REQUESTS_MS = 10;

/**
 * kafkajs schedules its check of queued requests `throttledUntil - now` ahead,
 * and when nothing is throttled or queued (`throttledUntil` is -1) that is minus
 * the current time: Node warns "TimeoutNegativeWarning" and waits 1 ms. Same
 * schedule here, never negative.
 */
function scheduleChecksNeverNegative(): void {
  const { prototype } = require('kafkajs/src/network/requestQueue/index.js') as { prototype: KafkaJsRequestQueue };
  prototype.scheduleCheckPendingRequests = function (this: KafkaJsRequestQueue): void {
    if (this.throttleCheckTimeoutId) return;
    const untilThrottleEnds = this.throttledUntil - Date.now();
    const delay = untilThrottleEnds > 0 ? untilThrottleEnds : this.pending.length > 0 ? CHECK_PENDING_REQUESTS_MS : 1;
    this.throttleCheckTimeoutId = setTimeout(() => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    }, delay);
  };
}

const kafkajs = require('kafkajs') as typeof KafkaJs;
decodeResponsesInPlace();
scheduleChecksNeverNegative();
export const { Kafka, logLevel } = kafkajs;
export type Kafka = KafkaJs.Kafka;
