/**
 * The embedded transport's local history (transport.history): every record the
 * receiver produces, appended to segment files in a directory, so that replay has the
 * days before a rule existed without Kafka. The same records as the Kafka spans topic
 * (trace id, event-time timestamp, span count, the trace's OTLP payload), in the frames
 * of record-frames.ts, one frame per send.
 *
 * Files in `dir`:
 * - `<sequence, 20 digits>.seg`: frames, appended to until the segment holds
 *   `segmentBytes`; then closed and a new one begun.
 * - `<sequence>.range`: written when a segment is closed: the earliest and latest
 *   record timestamp in it, its records and bytes (JSON), so a replay of a range skips
 *   the segments outside it without reading them.
 *
 * Retention: closed segments are deleted oldest first while the files pass `maxBytes`,
 * or once their latest record is older than `maxAgeMs`. Appends are written in batches
 * every `flushIntervalMs` (history is not an acknowledgement: a crash loses at most that
 * much of it, and the last segment's torn tail is cut at start). A failed write (a full
 * disk) drops that batch from the history, counted and logged, and never slows or
 * refuses live traffic. Readers (`readLocalHistory`) may read while a writer appends:
 * they stop at the last whole frame.
 */
import { mkdir, open, readdir, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { decodeFrame, encodeFrame } from './record-frames.ts';
import type { TraceRecord } from './transport.ts';

export interface LocalHistoryOptions {
  readonly dir: string;
  /** Closed segments whose latest record is older than this are deleted (0: no age limit). */
  readonly maxAgeMs: number;
  /** Closed segments are deleted, oldest first, while the files pass this. */
  readonly maxBytes: number;
  /** A segment is closed once it holds this many bytes. */
  readonly segmentBytes: number;
  /** Appends are written at most this long after they are made (default 500 ms). */
  readonly flushIntervalMs?: number;
  readonly metrics?: Metrics;
  readonly logger: Logger;
  /** The clock of retention by age (default Date.now). */
  readonly now?: () => number;
}

const SEGMENT_RE = /^(\d{20})\.seg$/;
/** Appends waiting past this many bytes are written at once. */
const FLUSH_BYTES = 4 * 1024 * 1024;

/** What a `.range` file holds. */
interface SegmentRange {
  readonly first_ms: number;
  readonly last_ms: number;
  readonly records: number;
  readonly bytes: number;
}

interface Segment {
  readonly seq: number;
  bytes: number;
  firstMs: number;
  lastMs: number;
  records: number;
}

function segmentName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.seg`;
}

function rangeName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.range`;
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code !== undefined && !e.message.startsWith(e.code) ? `${e.code}: ${e.message}` : e.message;
}

/** Segment sequence numbers in `dir`, ascending ([] when it does not exist). */
async function listSegments(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names
    .map((n) => SEGMENT_RE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

async function readRange(dir: string, seq: number): Promise<SegmentRange | undefined> {
  try {
    const r = JSON.parse(await readFile(join(dir, rangeName(seq)), 'utf8')) as SegmentRange;
    return typeof r.first_ms === 'number' && typeof r.last_ms === 'number' ? r : undefined;
  } catch {
    return undefined;
  }
}

/** The whole frames of a segment's bytes: their records, where they end, and why reading stopped short (if it did). */
function scanFrames(data: Buffer, each?: (records: readonly TraceRecord[]) => void): { end: number; records: number; firstMs: number; lastMs: number; stopped?: string } {
  let at = 0;
  let records = 0;
  let firstMs = Infinity;
  let lastMs = -Infinity;
  while (at < data.length) {
    const d = decodeFrame(data, at);
    if (d.kind !== 'frame') return { end: at, records, firstMs, lastMs, stopped: d.kind === 'bad' ? d.reason : 'a frame ends past the end of the file' };
    for (const r of d.records) {
      if (r.timestampMs < firstMs) firstMs = r.timestampMs;
      if (r.timestampMs > lastMs) lastMs = r.timestampMs;
    }
    records += d.records.length;
    each?.(d.records);
    at += d.size;
  }
  return { end: at, records, firstMs, lastMs };
}

export class LocalHistory {
  readonly #o: LocalHistoryOptions;
  readonly #flushIntervalMs: number;
  readonly #now: () => number;
  readonly #rateLimited: RateLimitedLog;
  /** Segments, oldest first; the last is the one appended to. */
  #segments: Segment[] = [];
  #active: FileHandle | undefined;
  #pending: Buffer[] = [];
  #pendingRecords: TraceRecord[][] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The write in progress: flushes run one after another. */
  #writing: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: LocalHistoryOptions) {
    this.#o = options;
    this.#flushIntervalMs = options.flushIntervalMs ?? 500;
    this.#now = options.now ?? Date.now;
    this.#rateLimited = new RateLimitedLog(options.logger, 60_000);
  }

  /** Bytes of the history's files. */
  get bytes(): number {
    return this.#segments.reduce((n, s) => n + s.bytes, 0);
  }

  /** Opens the directory: the last segment's torn tail cut, closed segments' ranges read, retention applied. */
  async start(): Promise<void> {
    const dir = this.#o.dir;
    await mkdir(dir, { recursive: true });
    const seqs = await listSegments(dir);
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i]!;
      const isLast = i === seqs.length - 1;
      const range = isLast ? undefined : await readRange(dir, seq);
      if (range !== undefined) {
        this.#segments.push({ seq, bytes: range.bytes, firstMs: range.first_ms, lastMs: range.last_ms, records: range.records });
        continue;
      }
      const file = join(dir, segmentName(seq));
      const data = await readFile(file);
      const scan = scanFrames(data);
      if (scan.stopped !== undefined) {
        const cut = data.length - scan.end;
        const fh = await open(file, 'r+');
        try {
          await fh.truncate(scan.end);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        this.#o.logger.warn({ file, offset: scan.end, bytes: cut, reason: scan.stopped }, 'history: a torn tail (a write interrupted by a crash) was cut off a segment');
      }
      const segment: Segment = { seq, bytes: scan.end, firstMs: scan.firstMs, lastMs: scan.lastMs, records: scan.records };
      this.#segments.push(segment);
      if (!isLast) await this.#writeRange(segment);
    }
    const last = this.#segments.at(-1);
    if (last === undefined || last.bytes >= this.#o.segmentBytes) await this.#roll();
    else this.#active = await open(join(dir, segmentName(last.seq)), 'a');
    await this.#retain();
    this.#updateMetrics();
  }

  /** Appends the records (written within flushIntervalMs; see the top of this file). */
  append(records: readonly TraceRecord[]): void {
    if (this.#stopped || records.length === 0) return;
    const { buf } = encodeFrame(records, this.#now());
    this.#pending.push(buf);
    this.#pendingRecords.push(records as TraceRecord[]);
    this.#pendingBytes += buf.length;
    if (this.#pendingBytes >= FLUSH_BYTES) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), this.#flushIntervalMs);
  }

  /** Writes what was appended; resolves once it is in the files (or dropped, counted). */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const buffers = this.#pending;
    const batches = this.#pendingRecords;
    if (buffers.length === 0) return this.#writing;
    this.#pending = [];
    this.#pendingRecords = [];
    this.#pendingBytes = 0;
    this.#writing = this.#writing.then(() => this.#write(buffers, batches));
    return this.#writing;
  }

  async #write(buffers: Buffer[], batches: TraceRecord[][]): Promise<void> {
    // Frames go to the segment appended to until it holds segmentBytes; then the next one.
    let i = 0;
    while (i < buffers.length) {
      const segment = this.#segments.at(-1);
      let j = i;
      let bytes = 0;
      do bytes += buffers[j++]!.length;
      while (j < buffers.length && (segment?.bytes ?? 0) + bytes < this.#o.segmentBytes);
      if (!(await this.#writeFrames(buffers.slice(i, j), batches.slice(i, j)))) {
        const lost = batches.slice(j).reduce((n, b) => n + b.length, 0);
        this.#o.metrics?.historyDroppedRecords.inc(lost);
        break;
      }
      i = j;
    }
    try {
      await this.#retain();
    } catch (err) {
      this.#rateLimited.warn('retain', { dir: this.#o.dir, error: errorText(err) }, 'history: deleting old segments failed');
    }
    this.#updateMetrics();
  }

  /** Appends frames to the segment appended to (rolled once it is full); false when the write failed (counted, logged). */
  async #writeFrames(buffers: Buffer[], batches: TraceRecord[][]): Promise<boolean> {
    const records = batches.reduce((n, b) => n + b.length, 0);
    try {
      const fh = this.#active;
      const segment = this.#segments.at(-1);
      if (fh === undefined || segment === undefined) throw new Error('the history is not open');
      const bytes = buffers.reduce((n, b) => n + b.length, 0);
      try {
        // A disk filling up may take part of the frames without an error (a short write): a failure too.
        const { bytesWritten } = await fh.writev(buffers);
        if (bytesWritten !== bytes) throw new Error(`short write: ${bytesWritten} of ${bytes} bytes (is the disk full?)`);
      } catch (err) {
        // Cut back to the last whole frame, so what follows is readable.
        await fh.truncate(segment.bytes).catch(() => undefined);
        throw err;
      }
      segment.bytes += bytes;
      segment.records += records;
      for (const batch of batches) {
        for (const r of batch) {
          if (r.timestampMs < segment.firstMs) segment.firstMs = r.timestampMs;
          if (r.timestampMs > segment.lastMs) segment.lastMs = r.timestampMs;
        }
      }
      if (segment.bytes >= this.#o.segmentBytes) await this.#roll();
      return true;
    } catch (err) {
      this.#o.metrics?.historyDroppedRecords.inc(records);
      this.#rateLimited.warn('write', { dir: this.#o.dir, records, error: errorText(err) }, 'history: writing to the local history failed: these records are not kept for replay (live evaluation is not affected)');
      return false;
    }
  }

  /** Closes the segment appended to (its range written) and begins the next. */
  async #roll(): Promise<void> {
    const previous = this.#segments.at(-1);
    if (this.#active !== undefined) {
      await this.#active.datasync().catch(() => undefined);
      await this.#active.close();
      this.#active = undefined;
    }
    if (previous !== undefined) await this.#writeRange(previous);
    const seq = previous === undefined ? 0 : previous.seq + 1;
    this.#active = await open(join(this.#o.dir, segmentName(seq)), 'a');
    this.#segments.push({ seq, bytes: 0, firstMs: Infinity, lastMs: -Infinity, records: 0 });
  }

  async #writeRange(segment: Segment): Promise<void> {
    const range: SegmentRange = { first_ms: segment.firstMs, last_ms: segment.lastMs, records: segment.records, bytes: segment.bytes };
    const file = join(this.#o.dir, rangeName(segment.seq));
    await writeFile(`${file}.tmp`, JSON.stringify(range));
    await rename(`${file}.tmp`, file);
  }

  /** Deletes closed segments past the size or the age bound, oldest first. */
  async #retain(): Promise<void> {
    const { maxBytes, maxAgeMs } = this.#o;
    const oldestKept = maxAgeMs > 0 ? this.#now() - maxAgeMs : -Infinity;
    let total = this.bytes;
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0]!;
      const tooOld = oldest.records > 0 && oldest.lastMs < oldestKept;
      if (total <= maxBytes && !tooOld && oldest.records > 0) break;
      this.#segments.shift();
      total -= oldest.bytes;
      await unlink(join(this.#o.dir, rangeName(oldest.seq))).catch(() => undefined);
      await unlink(join(this.#o.dir, segmentName(oldest.seq))).catch(() => undefined);
      this.#o.metrics?.historyDeletedSegments.inc({ reason: tooOld ? 'max_age' : oldest.records === 0 ? 'empty' : 'max_bytes' });
    }
  }

  #updateMetrics(): void {
    const m = this.#o.metrics;
    if (m === undefined) return;
    m.historyBytes.set(this.bytes);
    m.historyRecords.set(this.#segments.reduce((n, s) => n + s.records, 0));
    const oldest = this.#segments.find((s) => s.records > 0);
    m.historyOldestTimestamp.set(oldest === undefined ? 0 : oldest.firstMs / 1000);
  }

  /** Writes what is pending and closes the files; appends after it are ignored. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    await this.flush();
    this.#stopped = true;
    await this.#writing;
    if (this.#active !== undefined) {
      await this.#active.datasync().catch(() => undefined);
      await this.#active.close();
      this.#active = undefined;
    }
  }
}

export interface LocalHistoryRead {
  /** Segments read (those whose range is outside [fromMs, toMs) are skipped unread). */
  readonly segments: number;
  readonly records: number;
  /** The directory holds no segment. */
  readonly empty: boolean;
  /** Frames that could not be read (a damaged segment's rest is skipped). */
  readonly damaged: number;
}

/**
 * Reads the history in `dir` in append order, handing `onRecords` the records of each
 * segment overlapping [fromMs, toMs) by record timestamp (whole segments: the engine
 * places each trace by its spans). Safe while a writer appends: a segment's last frame
 * still being written is left out; a segment deleted by retention meanwhile is skipped.
 */
export async function readLocalHistory(
  dir: string,
  fromMs: number,
  toMs: number,
  onRecords: (records: readonly TraceRecord[]) => Promise<void> | void,
): Promise<LocalHistoryRead> {
  const seqs = await listSegments(dir);
  let segments = 0;
  let records = 0;
  let damaged = 0;
  for (let i = 0; i < seqs.length; i++) {
    const seq = seqs[i]!;
    const range = i === seqs.length - 1 ? undefined : await readRange(dir, seq);
    if (range !== undefined && (range.records === 0 || range.last_ms < fromMs || range.first_ms >= toMs)) continue;
    let data: Buffer;
    try {
      data = await readFile(join(dir, segmentName(seq)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    segments++;
    const batches: (readonly TraceRecord[])[] = [];
    const scan = scanFrames(data, (r) => batches.push(r));
    // A frame cut short at the end of the last segment is the writer's append in progress.
    if (scan.stopped !== undefined && !(i === seqs.length - 1 && scan.stopped === 'a frame ends past the end of the file')) damaged++;
    for (const batch of batches) {
      records += batch.length;
      await onRecords(batch);
    }
  }
  return { segments, records, empty: seqs.length === 0, damaged };
}
