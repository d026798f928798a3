/**
 * The embedded-mode violation store: an append-only JSON-lines file in the data
 * directory, read back at start, so violations survive a restart. The newest
 * `maxInMemory` are kept in memory for queries (the file keeps them all).
 */
import { createWriteStream, mkdirSync, readFileSync, existsSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Component } from '../component.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ViolationRecord } from './violation-record.ts';

export interface ViolationQuery {
  /** Unix seconds, inclusive, on the violation's start time. */
  readonly startTime?: number;
  readonly endTime?: number;
  readonly severity?: string;
  readonly ruleId?: string;
  readonly traceId?: string;
  readonly limit?: number;
  /** Opaque cursor from a previous page. */
  readonly cursor?: string;
}

export interface ViolationPage {
  readonly violations: ViolationRecord[];
  readonly nextCursor: string | null;
}

/** Something that answers violation queries: the embedded store, or the Kafka-topic index. */
export interface ViolationReader {
  query(q: ViolationQuery): ViolationPage;
}

export interface ViolationSink {
  append(record: ViolationRecord): void;
}

export class ViolationStore implements Component, ViolationReader, ViolationSink {
  readonly #path: string;
  readonly #logger: Logger;
  readonly #maxInMemory: number;
  /** Oldest first; `#seq[i]` is the store-wide sequence of `#records[i]`. */
  #records: ViolationRecord[] = [];
  #firstSeq = 0;
  readonly #ids = new Set<string>();
  #stream: WriteStream | undefined;

  constructor(options: { dataDir: string; logger: Logger; maxInMemory?: number }) {
    this.#path = join(options.dataDir, 'violations.jsonl');
    this.#logger = options.logger;
    this.#maxInMemory = options.maxInMemory ?? 200_000;
    mkdirSync(options.dataDir, { recursive: true });
  }

  async start(): Promise<void> {
    if (this.#stream !== undefined) return;
    if (existsSync(this.#path)) {
      const lines = readFileSync(this.#path, 'utf8').split('\n');
      let bad = 0;
      for (const line of lines) {
        if (line.trim() === '') continue;
        try {
          this.#add(JSON.parse(line) as ViolationRecord);
        } catch {
          bad++; // a torn last line after a crash
        }
      }
      if (bad > 0) this.#logger.warn({ file: this.#path, bad }, 'violation store: unreadable lines skipped');
    }
    this.#stream = createWriteStream(this.#path, { flags: 'a' });
    await new Promise<void>((resolve, reject) => {
      this.#stream!.once('open', () => resolve());
      this.#stream!.once('error', reject);
    });
  }

  get size(): number {
    return this.#records.length;
  }

  #add(record: ViolationRecord): boolean {
    if (this.#ids.has(record.violation_id)) return false;
    this.#ids.add(record.violation_id);
    this.#records.push(record);
    if (this.#records.length > this.#maxInMemory) {
      const dropped = this.#records.splice(0, this.#records.length - this.#maxInMemory);
      for (const d of dropped) this.#ids.delete(d.violation_id);
      this.#firstSeq += dropped.length;
    }
    return true;
  }

  /** Stores a violation once (by violation id). */
  append(record: ViolationRecord): void {
    if (this.#add(record)) this.#stream?.write(`${JSON.stringify(record)}\n`);
  }

  query(q: ViolationQuery): ViolationPage {
    return queryRecords(this.#records, this.#firstSeq, q);
  }

  async shutdown(): Promise<void> {
    const stream = this.#stream;
    if (stream === undefined) return;
    this.#stream = undefined;
    await new Promise<void>((resolve) => stream.end(resolve));
  }
}

/** Newest first, filtered; the cursor is the sequence number to continue below. */
export function queryRecords(records: readonly ViolationRecord[], firstSeq: number, q: ViolationQuery): ViolationPage {
  const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
  let below = firstSeq + records.length;
  if (q.cursor !== undefined && q.cursor !== '') {
    const n = Number.parseInt(q.cursor, 36);
    if (Number.isFinite(n)) below = Math.min(below, n);
  }
  const severity = q.severity?.toLowerCase();
  const startNs = q.startTime === undefined ? undefined : BigInt(Math.floor(q.startTime)) * 1_000_000_000n;
  const endNs = q.endTime === undefined ? undefined : BigInt(Math.floor(q.endTime)) * 1_000_000_000n;
  const out: ViolationRecord[] = [];
  let i = below - firstSeq - 1;
  for (; i >= 0 && out.length < limit; i--) {
    const r = records[i]!;
    if (severity !== undefined && r.severity !== severity) continue;
    if (q.ruleId !== undefined && r.rule_id !== q.ruleId) continue;
    if (q.traceId !== undefined && r.trace_id !== q.traceId.toLowerCase()) continue;
    if (startNs !== undefined || endNs !== undefined) {
      const t = BigInt(r.start_time_unix_nano);
      if (startNs !== undefined && t < startNs) continue;
      if (endNs !== undefined && t > endNs) continue;
    }
    out.push(r);
  }
  const more = i >= 0 && out.length === limit;
  return { violations: out, nextCursor: more ? (i + 1 + firstSeq).toString(36) : null };
}
