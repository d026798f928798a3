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
 * - `<sequence>.idx`: the segment's trace index (history-index.ts), a chunk appended after
 *   each write of frames: each record's trace, times, span count and names, and where its
 *   payload is. A chunk that cannot be written leaves a gap replay reads as frames.
 *
 * Retention: closed segments are deleted oldest first while the files pass `maxBytes`,
 * or once their latest record is older than `maxAgeMs`. Appends are written in batches
 * every `flushIntervalMs` (history is not an acknowledgement: a crash loses at most that
 * much of it, and the last segment's torn tail is cut at start). A failed write (a full
 * disk) drops that batch from the history, counted and logged, and never slows or
 * refuses live traffic. Readers (`readLocalHistory`) may read while a writer appends:
 * they stop at the last whole frame.
 */
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { crc32c } from '@node-rs/crc32';
import { scanPart } from '../otlp/index.ts';
import { encodeIndexChunk, viewIndexChunks, type ChunkView, type IndexChunk, type IndexEntry } from './history-index.ts';
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
  /** Bytes of the segment's index file. */
  indexBytes: number;
}

function segmentName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.seg`;
}

function rangeName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.range`;
}

function indexName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.idx`;
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
  /** The index file of the segment appended to, and its name table (name → number). */
  #activeIndex: FileHandle | undefined;
  #names = new Map<string, number>();
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

  /** Bytes of the history's files (segments and their indexes). */
  get bytes(): number {
    return this.#segments.reduce((n, s) => n + s.bytes + s.indexBytes, 0);
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
        const indexBytes = await stat(join(dir, indexName(seq))).then((st) => st.size, () => 0);
        this.#segments.push({ seq, bytes: range.bytes, firstMs: range.first_ms, lastMs: range.last_ms, records: range.records, indexBytes });
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
      const segment: Segment = { seq, bytes: scan.end, firstMs: scan.firstMs, lastMs: scan.lastMs, records: scan.records, indexBytes: 0 };
      segment.indexBytes = await this.#recoverIndex(segment, isLast);
      this.#segments.push(segment);
      if (!isLast) await this.#writeRange(segment);
    }
    const last = this.#segments.at(-1);
    if (last === undefined || last.bytes >= this.#o.segmentBytes) await this.#roll();
    else {
      this.#active = await open(join(dir, segmentName(last.seq)), 'a');
      this.#activeIndex = await open(join(dir, indexName(last.seq)), 'a');
    }
    await this.#retain();
    this.#updateMetrics();
  }

  /**
   * The index of a segment found at start: cut back to its last whole chunk that covers only
   * frames the segment holds (the segment's torn tail may have been cut); the name table of the
   * segment appended to rebuilt from it. Returns the index file's bytes.
   */
  async #recoverIndex(segment: Segment, isLast: boolean): Promise<number> {
    const file = join(this.#o.dir, indexName(segment.seq));
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      return 0;
    }
    let end = 0;
    const names: string[] = [];
    for (const view of viewIndexChunks(data).views) {
      if (view.coveredEnd > segment.bytes) break;
      end = view.end;
      names.push(...view.newNames);
    }
    if (end < data.length) {
      const fh = await open(file, 'r+');
      try {
        await fh.truncate(end);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
    if (isLast) this.#names = new Map(names.map((n, i) => [n, i]));
    return end;
  }

  /** Appends the records (written within flushIntervalMs; see the top of this file). */
  append(records: readonly TraceRecord[]): void {
    if (this.#stopped || records.length === 0) return;
    const { buf, records: views } = encodeFrame(records, this.#now());
    this.#pending.push(buf);
    this.#pendingRecords.push(views);
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
      await this.#writeIndex(segment, segment.bytes - bytes, buffers, batches);
      if (segment.bytes >= this.#o.segmentBytes) await this.#roll();
      return true;
    } catch (err) {
      this.#o.metrics?.historyDroppedRecords.inc(records);
      this.#rateLimited.warn('write', { dir: this.#o.dir, records, error: errorText(err) }, 'history: writing to the local history failed: these records are not kept for replay (live evaluation is not affected)');
      return false;
    }
  }

  /**
   * Appends the index chunk of frames just written at `start` of the segment. A chunk that
   * cannot be written is cut off again and its names forgotten: replay reads those frames as a gap.
   */
  async #writeIndex(segment: Segment, start: number, buffers: Buffer[], batches: TraceRecord[][]): Promise<void> {
    const fh = this.#activeIndex;
    if (fh === undefined) return;
    const table = this.#names;
    const newNames: string[] = [];
    const entries: IndexEntry[] = [];
    const names = new Set<string>();
    let frameAt = start;
    for (let i = 0; i < buffers.length; i++) {
      const buf = buffers[i]!;
      for (const r of batches[i]!) {
        names.clear();
        let scan: ReturnType<typeof scanPart>;
        try {
          scan = scanPart(r.payload, null, names);
        } catch {
          continue; // not OTLP: left out of the index, as replay leaves it out of every trace
        }
        const numbers: number[] = [];
        for (const n of names) {
          let k = table.get(n);
          if (k === undefined) {
            k = table.size;
            table.set(n, k);
            newNames.push(n);
          }
          numbers.push(k);
        }
        entries.push({
          traceId: r.traceId,
          timestampMs: r.timestampMs,
          earliestStartMs: scan.earliestStartMs,
          spanCount: scan.spanCount,
          untimedSpans: scan.untimedSpans,
          position: frameAt + (r.payload.byteOffset - buf.byteOffset),
          length: r.payload.length,
          crc: crc32c(r.payload),
          names: numbers,
        });
      }
      frameAt += buf.length;
    }
    const chunk: IndexChunk = { coveredStart: start, coveredEnd: frameAt, newNames, entries };
    const data = encodeIndexChunk(chunk);
    try {
      const { bytesWritten } = await fh.write(data);
      if (bytesWritten !== data.length) throw new Error(`short write: ${bytesWritten} of ${data.length} bytes (is the disk full?)`);
      segment.indexBytes += data.length;
    } catch (err) {
      await fh.truncate(segment.indexBytes).catch(() => undefined);
      for (const n of newNames) table.delete(n);
      this.#o.metrics?.historyIndexGaps.inc();
      this.#rateLimited.warn('index', { dir: this.#o.dir, error: errorText(err) }, 'history: writing the trace index failed: replay reads these records in full (slower, same answer)');
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
    if (this.#activeIndex !== undefined) {
      await this.#activeIndex.close().catch(() => undefined);
      this.#activeIndex = undefined;
    }
    if (previous !== undefined) await this.#writeRange(previous);
    const seq = previous === undefined ? 0 : previous.seq + 1;
    this.#active = await open(join(this.#o.dir, segmentName(seq)), 'a');
    this.#activeIndex = await open(join(this.#o.dir, indexName(seq)), 'a');
    this.#names = new Map();
    this.#segments.push({ seq, bytes: 0, firstMs: Infinity, lastMs: -Infinity, records: 0, indexBytes: 0 });
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
      total -= oldest.bytes + oldest.indexBytes;
      await unlink(join(this.#o.dir, rangeName(oldest.seq))).catch(() => undefined);
      await unlink(join(this.#o.dir, indexName(oldest.seq))).catch(() => undefined);
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
    await this.#activeIndex?.close().catch(() => undefined);
    this.#activeIndex = undefined;
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

/** Where a record's payload is in the local history (from its index). */
export interface HistoryLocation {
  readonly seq: number;
  readonly position: number;
  readonly length: number;
  readonly crc: number;
}

export interface IndexedHistoryRead extends LocalHistoryRead {
  /** Records known from the segments' indexes. */
  readonly indexed: number;
  /** Records read as frames because no index chunk covers them (a segment's unindexed tail, a chunk lost). */
  readonly gapRecords: number;
}

export interface IndexedHistoryHandlers {
  /** Records the index describes, a chunk at a time in append order (visitEntries); `names` is the segment's name table so far (entries name numbers into it). */
  readonly onChunk: (seq: number, chunk: ChunkView, names: readonly string[]) => Promise<void> | void;
  /** Records of the parts no index chunk covers, read as frames, in append order with the entries. */
  readonly onRecords: (records: readonly TraceRecord[]) => Promise<void> | void;
}

/**
 * Reads the history in `dir` through its index, in append order: for each segment
 * overlapping [fromMs, toMs), the records its index describes (onEntries) and, read as frames,
 * those of the bytes no index chunk covers (onRecords). Payloads of indexed records are read
 * later, by location (fetchHistoryPayloads). Safe while a writer appends.
 */
export async function readLocalHistoryIndexed(dir: string, fromMs: number, toMs: number, handlers: IndexedHistoryHandlers): Promise<IndexedHistoryRead> {
  const seqs = await listSegments(dir);
  let segments = 0;
  let records = 0;
  let indexed = 0;
  let gapRecords = 0;
  let damaged = 0;
  for (let i = 0; i < seqs.length; i++) {
    const seq = seqs[i]!;
    const isLast = i === seqs.length - 1;
    const range = isLast ? undefined : await readRange(dir, seq);
    if (range !== undefined && (range.records === 0 || range.last_ms < fromMs || range.first_ms >= toMs)) continue;
    // The index first: what it covers was in the segment before it was written.
    const index = await readFile(join(dir, indexName(seq))).catch(() => Buffer.alloc(0));
    let fh: FileHandle;
    try {
      fh = await open(join(dir, segmentName(seq)), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    try {
      segments++;
      const size = range?.bytes ?? (await fh.stat()).size;
      const { views: chunks } = viewIndexChunks(index);
      const names: string[] = [];
      let cursor = 0;
      const gap = async (start: number, end: number): Promise<void> => {
        if (end <= start) return;
        const data = Buffer.allocUnsafe(end - start);
        const { bytesRead } = await fh.read(data, 0, data.length, start);
        const batches: (readonly TraceRecord[])[] = [];
        const scan = scanFrames(data.subarray(0, bytesRead), (r) => batches.push(r));
        if (scan.stopped !== undefined && !(isLast && end === size && scan.stopped === 'a frame ends past the end of the file')) damaged++;
        for (const batch of batches) {
          records += batch.length;
          gapRecords += batch.length;
          await handlers.onRecords(batch);
        }
      };
      for (const chunk of chunks) {
        if (chunk.coveredStart < cursor || chunk.coveredEnd > size) break; // not this segment's frames: the rest is read as frames
        await gap(cursor, chunk.coveredStart);
        names.push(...chunk.newNames);
        records += chunk.count;
        indexed += chunk.count;
        await handlers.onChunk(seq, chunk, names);
        cursor = chunk.coveredEnd;
      }
      await gap(cursor, size);
    } finally {
      await fh.close();
    }
  }
  return { segments, records, indexed, gapRecords, empty: seqs.length === 0, damaged };
}

/**
 * The payloads at `locations` (in their order), each checked against its index CRC. Nearby
 * payloads of a segment are read together. Throws when a segment is gone (retention) or a payload
 * does not match its index.
 */
export async function fetchHistoryPayloads(dir: string, locations: readonly HistoryLocation[]): Promise<Uint8Array[]> {
  const out = new Array<Uint8Array>(locations.length);
  const bySegment = new Map<number, number[]>();
  locations.forEach((l, i) => {
    const list = bySegment.get(l.seq);
    if (list === undefined) bySegment.set(l.seq, [i]);
    else list.push(i);
  });
  for (const [seq, indexes] of bySegment) {
    indexes.sort((a, b) => locations[a]!.position - locations[b]!.position);
    const fh = await open(join(dir, segmentName(seq)), 'r');
    try {
      let k = 0;
      while (k < indexes.length) {
        // One read for payloads less than READ_GAP apart.
        const start = locations[indexes[k]!]!.position;
        let end = start + locations[indexes[k]!]!.length;
        let j = k + 1;
        while (j < indexes.length && locations[indexes[j]!]!.position - end < READ_GAP && end - start < READ_MAX) {
          end = Math.max(end, locations[indexes[j]!]!.position + locations[indexes[j]!]!.length);
          j++;
        }
        const data = Buffer.allocUnsafe(end - start);
        const { bytesRead } = await fh.read(data, 0, data.length, start);
        for (; k < j; k++) {
          const l = locations[indexes[k]!]!;
          const payload = data.subarray(l.position - start, l.position - start + l.length);
          if (l.position - start + l.length > bytesRead || crc32c(payload) !== l.crc) {
            throw new Error(`segment ${segmentName(seq)} does not hold the record its index places at byte ${l.position} (replay with --full-scan)`);
          }
          out[indexes[k]!] = payload;
        }
      }
    } finally {
      await fh.close();
    }
  }
  return out;
}

/** Payloads of a segment this close are read in one read, up to READ_MAX bytes. */
const READ_GAP = 64 * 1024;
const READ_MAX = 4 * 1024 * 1024;
