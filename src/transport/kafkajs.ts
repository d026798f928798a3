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
