/**
 * The notification outbox: an append-only JSON-lines file (data_dir/notifications/outbox.jsonl)
 * holding, per violation and destination, what is still to be sent. A line `{"add": ENTRY}`
 * is appended when a violation is stored (the worker hands it to the violation store and to the
 * notifier in the same step), a line `{"done": [IDS]}` once the entries were sent, dead-lettered
 * or suppressed. At start the file is read back (a torn last line, an interrupted write, is
 * skipped and counted) and rewritten with the pending entries only, into a temporary file renamed
 * over it; it is compacted the same way when it holds COMPACT_SLACK lines beyond twice the pending
 * entries.
 *
 * So a notification is lost only with its violation, and is sent once more only when the
 * process died between the channel's acceptance and the done line: with the same idempotency
 * key (the violation id). Writes are queued and made one at a time, in order.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CHANNEL_KINDS, SEVERITIES, type Destination, type Severity } from '../rules/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { violationRecordProblem, type ViolationRecord } from '../violations/violation-record.ts';

export interface OutboxEntry {
  /** `VIOLATION_ID DESTINATION`: one entry per violation and destination. */
  readonly id: string;
  readonly destination: Destination;
  /** The route's severity. */
  readonly severity: Severity;
  /** When the entry was added, unix ms: its group's window opens then. */
  readonly at: number;
  readonly record: ViolationRecord;
}

/** Compaction when done lines exceed this many plus the pending ones. */
const COMPACT_SLACK = 10_000;

function entryProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const e = v as Record<string, unknown>;
  const d = e.destination as Record<string, unknown> | undefined;
  if (typeof e.id !== 'string' || typeof e.at !== 'number') return 'no id or time';
  if (typeof d !== 'object' || d === null || !(CHANNEL_KINDS as readonly unknown[]).includes(d.channel) || typeof d.to !== 'string') return 'no destination';
  if (!(SEVERITIES as readonly unknown[]).includes(e.severity)) return 'no severity';
  return violationRecordProblem(e.record);
}

export class Outbox {
  readonly #path: string;
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #pending = new Map<string, string>();
  #fh: FileHandle | undefined;
  #lines = 0;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: { dir: string; logger: Logger; metrics?: Metrics }) {
    mkdirSync(options.dir, { recursive: true });
    this.#path = join(options.dir, 'outbox.jsonl');
    this.#logger = options.logger;
    this.#metrics = options.metrics;
  }

  get path(): string {
    return this.#path;
  }

  /** Reads the file back and rewrites it with what is pending; returns the pending entries in the order they were added. */
  async open(): Promise<OutboxEntry[]> {
    let text = '';
    try {
      text = readFileSync(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const entries = new Map<string, OutboxEntry>();
    let damaged = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let value: { add?: unknown; done?: unknown };
      try {
        value = JSON.parse(line) as typeof value;
      } catch {
        damaged++;
        continue;
      }
      if (value.add !== undefined && entryProblem(value.add) === undefined) {
        const e = value.add as OutboxEntry;
        entries.set(e.id, e);
      } else if (Array.isArray(value.done)) for (const id of value.done) entries.delete(String(id));
      else damaged++;
    }
    if (damaged > 0) {
      this.#metrics?.notificationsDamagedLines.inc(damaged);
      this.#logger.warn({ file: this.#path, skipped: damaged }, 'notification outbox: damaged lines skipped (a write interrupted by a crash)');
    }
    for (const e of entries.values()) this.#pending.set(e.id, `${JSON.stringify({ add: e })}\n`);
    await this.#compact();
    return [...entries.values()];
  }

  /** Appends entries; resolves once they are in the file. */
  add(entries: readonly OutboxEntry[]): Promise<void> {
    const lines = entries.map((e) => {
      const line = `${JSON.stringify({ add: e })}\n`;
      this.#pending.set(e.id, line);
      return line;
    });
    return this.#append(lines.join(''), entries.length);
  }

  /** Marks entries sent (or given up on): they are not sent again after a restart. */
  done(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.#pending.delete(id);
    return this.#append(`${JSON.stringify({ done: ids })}\n`, 1);
  }

  get pending(): number {
    return this.#pending.size;
  }

  #append(text: string, lines: number): Promise<void> {
    const write = this.#queue.then(async () => {
      if (this.#fh === undefined) throw new Error('the notification outbox is closed');
      await this.#fh.write(text);
      this.#lines += lines;
      if (this.#lines > this.#pending.size * 2 + COMPACT_SLACK) await this.#compact();
    });
    this.#queue = write.catch(() => undefined);
    return write;
  }

  /** Rewrites the file with the pending entries only (a crash leaves the old file or the new one). */
  async #compact(): Promise<void> {
    const tmp = `${this.#path}.compact`;
    const out = await open(tmp, 'w');
    try {
      await out.writeFile([...this.#pending.values()].join(''));
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, this.#path);
    const old = this.#fh;
    this.#fh = await open(this.#path, 'a');
    await old?.close();
    this.#lines = this.#pending.size;
  }

  async close(): Promise<void> {
    await this.#queue;
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }
}
