/**
 * The embedded-mode violation store: an append-only JSON-lines file in the data
 * directory, read back at start, so violations survive a restart. The newest
 * `maxInMemory` stored records are kept in memory for queries (the file keeps them all).
 *
 * What the store serves is what the file holds: a record becomes visible to
 * queries once its line is written. A write that fails (ENOSPC, EIO, …) is cut
 * back to the last complete line and retried with a backoff; meanwhile records
 * wait in a bounded queue (`maxPending`; past it the oldest are dropped and
 * counted as lost), the store reports itself degraded (readiness, a gauge), and
 * writing resumes by itself when the file accepts data again.
 *
 * At start a torn last line (a crash mid-write) is cut off, so the next line
 * starts on a line of its own; lines that are not violation records are skipped,
 * logged and counted, never served.
 *
 * Retention (`violations.max_age`, `violations.max_bytes`): when the file grows past
 * max_bytes, or its oldest violation was evaluated more than max_age ago (checked at start,
 * after writes and every few minutes), the file is rewritten without its oldest lines —
 * down to three quarters of max_bytes and nothing older than max_age — into a temporary
 * file renamed over it (a crash leaves the old file or the new one, never half of one),
 * and what the store serves drops the same violations. A rewrite that fails (a full disk)
 * leaves the file as it was, is logged and tried again later.
 */
import { mkdirSync, readFileSync, existsSync, statSync, truncateSync } from 'node:fs';
import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Component } from '../component.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { violationRecordProblem, type ViolationRecord } from './violation-record.ts';

export interface ViolationQuery {
  /** Unix seconds, inclusive, on the violation's start time. */
  readonly startTime?: number;
  readonly endTime?: number;
  readonly severity?: string;
  readonly ruleId?: string;
  readonly traceId?: string;
  /** Among the record's services (records without them match no service). */
  readonly service?: string;
  readonly limit?: number;
  /** Opaque cursor from a previous page (checked with `isViolationCursor`). */
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

/** Ready, or why violations are not being persisted. */
export type StoreHealth = { readonly degraded: false } | { readonly degraded: true; readonly reason: string };

/** Records waiting for the file at most, by default: a few MiB. */
export const DEFAULT_MAX_PENDING = 10_000;
const BATCH_RECORDS = 512;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** How often the age bound is checked when nothing is written. */
const AGE_CHECK_MS = 5 * 60_000;

interface Pending {
  readonly record: ViolationRecord;
  readonly line: string;
}

export class ViolationStore implements Component, ViolationReader, ViolationSink {
  readonly #path: string;
  readonly #logger: Logger;
  readonly #rateLimited: RateLimitedLog;
  readonly #metrics: Metrics | undefined;
  readonly #maxInMemory: number;
  readonly #maxPending: number;
  /** Stored records, oldest first; `#firstSeq + i` is the store-wide sequence of `#records[i]`. */
  #records: ViolationRecord[] = [];
  #firstSeq = 0;
  /** Ids stored, being written or waiting: a violation is taken once. */
  readonly #ids = new Set<string>();
  #pending: Pending[] = [];
  #inFlight = 0;
  #fh: FileHandle | undefined;
  /** File size up to the last complete line written. */
  #size = 0;
  /** Written before the next line: the file ends without a newline. */
  #prefix = '';
  #pump: Promise<void> | undefined;
  #failures = 0;
  #lastError: string | undefined;
  #lost = 0;
  #closing = false;
  #wake: (() => void) | undefined;
  readonly #maxAgeMs: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  /** evaluated_at_ms of the file's first record (Infinity when it holds none). */
  #oldestMs = Infinity;
  #ageTimer: NodeJS.Timeout | undefined;

  constructor(options: {
    dataDir: string;
    logger: Logger;
    metrics?: Metrics;
    maxInMemory?: number;
    maxPending?: number;
    /** violations.max_age (0: no age bound; default 0). */
    maxAgeMs?: number;
    /** violations.max_bytes (0: no size bound; default 0). */
    maxBytes?: number;
    /** Tests: the clock retention compares with (default Date.now). */
    now?: () => number;
  }) {
    this.#path = join(options.dataDir, 'violations.jsonl');
    this.#logger = options.logger;
    this.#rateLimited = new RateLimitedLog(options.logger);
    this.#metrics = options.metrics;
    this.#maxInMemory = options.maxInMemory ?? 200_000;
    this.#maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.#maxAgeMs = options.maxAgeMs ?? 0;
    this.#maxBytes = options.maxBytes ?? 0;
    this.#now = options.now ?? Date.now;
    mkdirSync(options.dataDir, { recursive: true });
  }

  async start(): Promise<void> {
    if (this.#fh !== undefined) return;
    if (existsSync(this.#path)) {
      if (statSync(this.#path).isFile()) this.#load();
      else this.#logger.warn({ file: this.#path }, 'violation store: not a regular file, nothing read back (written to as it is)');
    }
    this.#fh = await open(this.#path, 'a');
    this.#metrics?.violationStoreDegraded.set(0);
    this.#metrics?.violationStorePending.set(0);
    await this.#applyRetention();
    if (this.#maxAgeMs > 0) {
      this.#ageTimer = setInterval(() => {
        if (this.#retentionDue()) this.#kick();
      }, Math.min(AGE_CHECK_MS, this.#maxAgeMs));
      this.#ageTimer.unref();
    }
  }

  #retentionDue(): boolean {
    if (this.#maxBytes > 0 && this.#size > this.#maxBytes) return true;
    return this.#maxAgeMs > 0 && this.#oldestMs < this.#now() - this.#maxAgeMs;
  }

  /**
   * Rewrites the file without its oldest lines when a bound is passed: the lines kept are
   * the newest, within three quarters of max_bytes and evaluated within max_age. Runs only
   * between writes (from start and the drain loop), so no append is in flight.
   */
  async #applyRetention(): Promise<void> {
    if (!this.#retentionDue() || this.#fh === undefined) return;
    const tmp = `${this.#path}.compact`;
    try {
      const data = (await readFile(this.#path)).subarray(0, this.#size);
      const lines = data.toString('utf8').split('\n');
      if (lines.at(-1) === '') lines.pop();
      const cutoff = this.#maxAgeMs > 0 ? this.#now() - this.#maxAgeMs : -Infinity;
      const budget = this.#maxBytes > 0 ? Math.floor(this.#maxBytes * 0.75) : Infinity;
      let bytes = 0;
      let first = lines.length;
      const kept = new Set<string>();
      let oldest = Infinity;
      for (let i = lines.length - 1; i >= 0; i--) {
        const line = lines[i]!;
        const lineBytes = Buffer.byteLength(line) + 1;
        const record = line.trim() === '' ? undefined : parseRecord(line).record;
        if (record !== undefined && record.evaluated_at_ms < cutoff) break;
        if (bytes + lineBytes > budget) break;
        bytes += lineBytes;
        first = i;
        if (record !== undefined) {
          kept.add(record.violation_id);
          oldest = record.evaluated_at_ms;
        }
      }
      const removed = first;
      const text = lines.slice(first).map((l) => `${l}\n`).join('');
      const out = await open(tmp, 'w');
      try {
        await out.writeFile(text);
        await out.sync();
      } finally {
        await out.close();
      }
      await rename(tmp, this.#path);
      const fh = this.#fh;
      this.#fh = await open(this.#path, 'a');
      await fh.close();
      this.#size = Buffer.byteLength(text);
      this.#prefix = '';
      this.#oldestMs = oldest;
      // Serve what the file holds: the stored records are its newest, so the dropped ones are at the front.
      let dropped = 0;
      while (dropped < this.#records.length && !kept.has(this.#records[dropped]!.violation_id)) dropped++;
      for (const r of this.#records.splice(0, dropped)) this.#ids.delete(r.violation_id);
      this.#firstSeq += dropped;
      this.#metrics?.violationStoreRemoved.inc(removed);
      this.#logger.info({ file: this.#path, removed, kept: lines.length - removed, bytes: this.#size }, 'violation store: the oldest violations were removed (violations.max_age, violations.max_bytes)');
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      this.#rateLimited.warn('retention', { file: this.#path, err: String(err) }, 'violation store: the file could not be rewritten without its oldest violations; tried again later');
    }
  }

  /** Reads the file back: a torn tail is cut off, lines that are not records are skipped and counted. */
  #load(): void {
    const data = readFileSync(this.#path);
    const lastNewline = data.lastIndexOf(0x0a);
    let complete = data.length;
    if (data.length > 0 && lastNewline !== data.length - 1) {
      const tail = data.subarray(lastNewline + 1).toString('utf8');
      const parsed = parseRecord(tail);
      if (parsed.record !== undefined) {
        // A whole record whose newline did not make it: kept, the newline comes with the next line.
        this.#prefix = '\n';
      } else {
        complete = lastNewline + 1;
        truncateSync(this.#path, complete);
        this.#metrics?.violationStoreDamagedLines.inc({ reason: 'torn' });
        this.#logger.warn(
          { file: this.#path, bytes: data.length - complete, offset: complete },
          'violation store: a torn last line (an interrupted write) was cut off the file',
        );
      }
    }
    this.#size = complete;
    const lines = data.subarray(0, this.#size).toString('utf8').split('\n');
    const skipped: { line: number; reason: string; problem: string }[] = [];
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === '') continue;
      const parsed = parseRecord(line);
      if (parsed.record === undefined) {
        skipped.push({ line: i + 1, reason: parsed.reason, problem: parsed.problem });
        this.#metrics?.violationStoreDamagedLines.inc({ reason: parsed.reason });
        continue;
      }
      if (this.#oldestMs === Infinity) this.#oldestMs = parsed.record.evaluated_at_ms;
      if (this.#ids.has(parsed.record.violation_id)) continue;
      this.#ids.add(parsed.record.violation_id);
      this.#stored(parsed.record);
    }
    if (skipped.length > 0) {
      this.#logger.warn(
        { file: this.#path, skipped: skipped.length, first: skipped.slice(0, 10) },
        'violation store: lines that are not violation records were skipped (left in the file, never served)',
      );
    }
  }

  get size(): number {
    return this.#records.length;
  }

  /** Resolves once nothing is being written (the queue written out, retention applied), or the writes are failing. */
  async settled(): Promise<void> {
    while (this.#pump !== undefined && this.#failures === 0) await this.#pump;
  }

  /** Records accepted but not yet in the file. */
  get pending(): number {
    return this.#pending.length + this.#inFlight;
  }

  /** Degraded while the last write failed: violations are then not being persisted. */
  health(): StoreHealth {
    if (this.#lastError === undefined) return { degraded: false };
    return {
      degraded: true,
      reason: `violations are not being written to ${this.#path}: ${this.#lastError} (${this.pending} waiting, ${this.#lost} lost); retrying`,
    };
  }

  #stored(record: ViolationRecord): void {
    this.#records.push(record);
    if (this.#records.length > this.#maxInMemory) {
      const dropped = this.#records.splice(0, this.#records.length - this.#maxInMemory);
      for (const d of dropped) this.#ids.delete(d.violation_id);
      this.#firstSeq += dropped.length;
    }
  }

  /** Stores a violation once (by violation id): queued for the file, served once written. */
  append(record: ViolationRecord): void {
    if (this.#ids.has(record.violation_id)) return;
    if (this.#fh === undefined || this.#closing) {
      this.#loseRecords([{ record, line: '' }], 'closed');
      return;
    }
    this.#ids.add(record.violation_id);
    this.#pending.push({ record, line: `${JSON.stringify(record)}\n` });
    if (this.#pending.length > this.#maxPending) this.#loseRecords(this.#pending.splice(0, this.#pending.length - this.#maxPending), 'queue_full');
    this.#metrics?.violationStorePending.set(this.pending);
    this.#kick();
  }

  /** Starts the writer (queue, then retention) unless it runs. */
  #kick(): void {
    this.#pump ??= this.#drain().finally(() => (this.#pump = undefined));
  }

  #loseRecords(records: readonly Pending[], reason: 'queue_full' | 'shutdown' | 'closed'): void {
    if (records.length === 0) return;
    for (const p of records) this.#ids.delete(p.record.violation_id);
    this.#lost += records.length;
    this.#metrics?.violationStoreLost.inc({ reason }, records.length);
    this.#rateLimited.warn(
      `lost-${reason}`,
      { file: this.#path, lost: records.length, reason, ruleIds: [...new Set(records.map((p) => p.record.rule_id))].slice(0, 10) },
      'violation store: violations could not be written and were dropped',
    );
  }

  /** Writes the queue out, batch by batch; on a failure waits and retries until it succeeds or the store closes. */
  async #drain(): Promise<void> {
    await this.#applyRetention();
    while (this.#pending.length > 0 && this.#fh !== undefined) {
      const batch = this.#pending.splice(0, BATCH_RECORDS);
      this.#inFlight = batch.length;
      const ok = await this.#write(batch);
      this.#inFlight = 0;
      if (ok) {
        for (const p of batch) this.#stored(p.record);
        if (this.#oldestMs === Infinity) this.#oldestMs = batch[0]!.record.evaluated_at_ms;
        this.#metrics?.violationStoreWritten.inc(batch.length);
        await this.#applyRetention();
      } else {
        this.#pending.unshift(...batch);
        if (this.#pending.length > this.#maxPending) this.#loseRecords(this.#pending.splice(0, this.#pending.length - this.#maxPending), 'queue_full');
      }
      this.#metrics?.violationStorePending.set(this.pending);
      if (!ok) {
        if (this.#closing) return;
        const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.#failures - 1, 10));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    }
  }

  /** Appends the lines in full, or cuts the file back to its last complete line and says false. */
  async #write(batch: readonly Pending[]): Promise<boolean> {
    const fh = this.#fh!;
    const data = Buffer.from(this.#prefix + batch.map((p) => p.line).join(''), 'utf8');
    try {
      if (this.#failures > 0) await this.#cutBack(fh);
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await fh.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.#failures++;
      this.#lastError = e.code !== undefined ? `${e.code}: ${e.message}` : String(err);
      this.#metrics?.violationStoreWriteErrors.inc({ code: e.code ?? 'unknown' });
      this.#metrics?.violationStoreDegraded.set(1);
      await this.#cutBack(fh).catch(() => undefined);
      this.#rateLimited.warn(
        'write',
        { file: this.#path, err: this.#lastError, pending: this.pending, failures: this.#failures },
        'violation store: writing violations failed; they wait in memory and the write is retried',
      );
      return false;
    }
    this.#size += data.length;
    this.#prefix = '';
    if (this.#failures > 0) {
      this.#logger.info({ file: this.#path, failures: this.#failures, lost: this.#lost }, 'violation store: writes resumed');
      this.#failures = 0;
      this.#lastError = undefined;
      this.#metrics?.violationStoreDegraded.set(0);
    }
    return true;
  }

  /** A failed write may have left part of a line: cut the file back to the last complete one. */
  async #cutBack(fh: FileHandle): Promise<void> {
    const { size } = await fh.stat();
    if (size === this.#size) return;
    if (size < this.#size) {
      // Shortened from outside: start the next line on a line of its own.
      this.#size = size;
      this.#prefix = size > 0 ? '\n' : '';
      return;
    }
    try {
      await fh.truncate(this.#size);
    } catch {
      // Cannot cut: keep the fragment on its own line (skipped as not a record at the next start).
      this.#size = size;
      this.#prefix = '\n';
    }
  }

  query(q: ViolationQuery): ViolationPage {
    return queryRecords(this.#records, this.#firstSeq, q);
  }

  /** Writes what is waiting (one more attempt if the file refuses), counts the rest as lost, closes. */
  async shutdown(): Promise<void> {
    if (this.#fh === undefined) return;
    this.#closing = true;
    clearInterval(this.#ageTimer);
    this.#wake?.();
    await this.#pump;
    const fh = this.#fh;
    if (this.#pending.length > 0) {
      const batch = this.#pending.splice(0);
      if (await this.#write(batch)) for (const p of batch) this.#stored(p.record);
      else {
        this.#loseRecords(batch, 'shutdown');
        this.#logger.error({ file: this.#path, lost: batch.length, err: this.#lastError }, 'violation store: violations not written at shutdown');
      }
      this.#metrics?.violationStorePending.set(0);
    }
    this.#fh = undefined;
    await fh.close();
  }
}

function parseRecord(line: string): { record: ViolationRecord } | { record: undefined; reason: 'not_json' | 'not_a_record'; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { record: undefined, reason: 'not_json', problem: (err as Error).message };
  }
  const problem = violationRecordProblem(value);
  return problem === undefined ? { record: value as ViolationRecord } : { record: undefined, reason: 'not_a_record', problem };
}

/** A cursor names the sequence to continue below, with a check so a cursor this API did not give out is refused. */
function cursorCheck(seq: number): string {
  let h = 0x811c9dc5;
  for (const c of `betrace-violations:${seq}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return (h % 36 ** 4).toString(36).padStart(4, '0');
}

export function encodeViolationCursor(seq: number): string {
  return `${seq.toString(36)}${cursorCheck(seq)}`;
}

/** The sequence a cursor names, or undefined if it is not one `encodeViolationCursor` made. */
export function decodeViolationCursor(cursor: string): number | undefined {
  const m = /^([0-9a-z]{1,11})([0-9a-z]{4})$/.exec(cursor);
  if (m === null) return undefined;
  const seq = Number.parseInt(m[1]!, 36);
  return Number.isSafeInteger(seq) && cursorCheck(seq) === m[2] ? seq : undefined;
}

/** Newest first, filtered; the cursor is the sequence number to continue below (refused with an error if not valid). */
export function queryRecords(records: readonly ViolationRecord[], firstSeq: number, q: ViolationQuery): ViolationPage {
  const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
  let below = firstSeq + records.length;
  if (q.cursor !== undefined && q.cursor !== '') {
    const n = decodeViolationCursor(q.cursor);
    if (n === undefined) throw new InvalidCursorError(q.cursor);
    below = Math.min(below, n);
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
    if (q.service !== undefined && r.services?.includes(q.service) !== true) continue;
    if (startNs !== undefined || endNs !== undefined) {
      const t = BigInt(r.start_time_unix_nano);
      if (startNs !== undefined && t < startNs) continue;
      if (endNs !== undefined && t > endNs) continue;
    }
    out.push(r);
  }
  const more = i >= 0 && out.length === limit;
  return { violations: out, nextCursor: more ? encodeViolationCursor(i + 1 + firstSeq) : null };
}

export class InvalidCursorError extends Error {
  constructor(cursor: string) {
    super(`cursor ${JSON.stringify(cursor)} is not one this API gave out; start again without a cursor`);
  }
}
