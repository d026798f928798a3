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
 * kafka-socket.ts deliver it (whole responses, large ones in shared memory).
 */
function decodeResponsesInPlace(): void {
  const { prototype } = require('kafkajs/src/network/connection.js') as { prototype: KafkaJsConnection };
  const processData = prototype.processData;
  prototype.processData = function (this: KafkaJsConnection, rawData: Buffer): void {
    if (this.bytesBuffered === 0 && this.chunks.length > 0) this.chunks = [];
    processData.call(this, rawData);
  };
}

const kafkajs = require('kafkajs') as typeof KafkaJs;
decodeResponsesInPlace();
export const { Kafka, logLevel } = kafkajs;
export type Kafka = KafkaJs.Kafka;
