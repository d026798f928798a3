/**
 * The receiver's spool: a bounded write-ahead log on local disk in front of the
 * Kafka producer (receiver.spool). With it, an export is acknowledged once its
 * records are fsynced to the spool: "durable on this node's disk", not "in
 * Kafka". A drainer hands the spooled records to the Kafka producer in append
 * order, one call in flight at a time, so a trace's old spans never reach Kafka
 * after its new ones; a Kafka outage shorter than what the spool holds adds
 * latency instead of loss.
 *
 * Files in `dir`:
 * - `<sequence, 20 digits>.seg`: segments of frames, appended to until they reach
 *   `segmentBytes`, deleted once every frame in them was acknowledged by Kafka.
 * - `cursor`: how far the drain got ({"version":1,"segment":n,"offset":bytes}),
 *   replaced atomically (write, fdatasync, rename) at most every `cursorIntervalMs`
 *   and at shutdown. Delivery is at least once: frames delivered after the last
 *   cursor write are delivered again after a crash (the worker drops a span whose
 *   id it already holds in the trace; tracing backends de-duplicate by span id).
 *
 * One frame per send() call (one export request), as src/transport/record-frames.ts writes it.
 *
 * Concurrent sends are group-committed: one write and one fdatasync for every frame
 * waiting. A send is refused (retryable, nothing of it kept) when the spool's files
 * would pass `maxBytes`, when the write or fdatasync fails (the segment is cut back
 * to its last good length; earlier frames are intact), or once shutdown began.
 * At start, frames are verified (CRC) and a torn tail (a crash mid-write) is cut off.
 */
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { FRAME_HEADER_BYTES as HEADER_BYTES, decodeFrame, encodeFrame } from '../transport/record-frames.ts';
import type { ProduceResult, TraceRecord, TransportProducer } from '../transport/transport.ts';

export interface SpoolOptions {
  /** Directory of the spool's files (created when missing); one spool per directory. */
  readonly dir: string;
  /** The producer the spool drains to (the Kafka producer); the spool starts and shuts it down. */
  readonly inner: TransportProducer;
  /** Bound of the spool's files on disk, bytes: a send that would pass it is refused. */
  readonly maxBytes: number;
  /** A segment is closed and a new one begun once it holds this many bytes (default 16 MiB). */
  readonly segmentBytes?: number;
  /** Most bytes of consecutive frames handed to the inner producer in one call (default 4 MiB; one frame at least). */
  readonly maxBatchBytes?: number;
  /** Recently appended frames kept in memory, so a drain that keeps up never reads them back (default 64 MiB). */
  readonly memoryBytes?: number;
  /** Retry delay given with refusals. */
  readonly retryAfterMs: number;
  /** health() is degraded while the oldest spooled frame is older than this (default 10 s). */
  readonly behindMs?: number;
  /** shutdown() goes on draining to the inner producer for at most this long (default 10 s); the rest stays on disk. */
  readonly shutdownTimeoutMs?: number;
  /** Longest time between two cursor writes while draining (default 1 s): what a crash may deliver twice. */
  readonly cursorIntervalMs?: number;
  /** Longest wait between two attempts of a batch the inner producer refused as retryable (default 1 s). */
  readonly maxRetryDelayMs?: number;
  readonly metrics?: Metrics;
  readonly logger: Logger;
}

export type SpoolHealth = { readonly degraded: false } | { readonly degraded: true; readonly reason: string };

const SEGMENT_RE = /^(\d{20})\.seg$/;
const MIN_RETRY_DELAY_MS = 50;

/** A frame that is durable in a segment; `records` are views into its bytes (undefined: read it back). */
interface Frame {
  readonly seg: number;
  readonly offset: number;
  readonly size: number;
  readonly appendedAtMs: number;
  readonly records: readonly TraceRecord[];
}

interface Waiting {
  readonly buf: Buffer;
  readonly records: readonly TraceRecord[];
  readonly appendedAtMs: number;
  readonly resolve: (r: ProduceResult) => void;
}

interface Segment {
  readonly seq: number;
  /** Bytes of whole, verified frames: reading stops here. */
  end: number;
  /** Bytes of the file (what counts against maxBytes). */
  fileBytes: number;
  /** Frames, records and bytes in this segment not yet acknowledged by the inner producer. */
  pendingFrames: number;
  pendingRecords: number;
  pendingBytes: number;
}

interface Position {
  seg: number;
  offset: number;
}

function segmentName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.seg`;
}

function before(a: Position, b: Position): boolean {
  return a.seg < b.seg || (a.seg === b.seg && a.offset < b.offset);
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code !== undefined && !e.message.startsWith(e.code) ? `${e.code}: ${e.message}` : e.message;
}

async function writeAll(fh: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  const bufs = [...buffers];
  let pos = position;
  while (bufs.length > 0) {
    const { bytesWritten } = await fh.writev(bufs, pos);
    if (bytesWritten <= 0) throw new Error('write wrote nothing');
    pos += bytesWritten;
    let skip = bytesWritten;
    while (bufs.length > 0 && skip >= bufs[0]!.length) skip -= bufs.shift()!.length;
    if (skip > 0) bufs[0] = bufs[0]!.subarray(skip);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class Spool implements TransportProducer {
  readonly #dir: string;
  readonly #inner: TransportProducer;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #maxBatchBytes: number;
  readonly #memoryLimit: number;
  readonly #retryAfterMs: number;
  readonly #behindMs: number;
  readonly #shutdownTimeoutMs: number;
  readonly #cursorIntervalMs: number;
  readonly #maxRetryDelayMs: number;
  readonly #metrics: Metrics | undefined;
  readonly #logger: Logger;
  readonly #rateLimited: RateLimitedLog;

  #state: 'new' | 'running' | 'closing' | 'closed' = 'new';
  /** Segments on disk, oldest first; the last is the one appended to. */
  #segments: Segment[] = [];
  #active: FileHandle | undefined;
  /** Where the drain reads next: everything before it was acknowledged by the inner producer. */
  #drain: Position = { seg: 0, offset: 0 };
  /** A contiguous suffix of the pending frames, oldest first (bounded by memoryBytes). */
  #memory: Frame[] = [];
  #memoryBytes = 0;
  #diskBytes = 0;
  /** Sends waiting for the next group commit, and bytes of those and of the one being written. */
  #queue: Waiting[] = [];
  #reservedBytes = 0;
  #flushing: Promise<void> | undefined;
  /** The segment holds bytes past its last good length that must be cut before the next write. */
  #mustCut = false;
  #writeError: string | undefined;
  #lastRefusedFullBytes: number | undefined;
  #innerError: string | undefined;
  /** Appended-at time of the oldest frame not yet acknowledged by the inner producer. */
  #oldestMs: number | undefined;
  #drainLoop: Promise<void> | undefined;
  #stopDrain = false;
  /** Wakes the idle drain (new frames, or stop). */
  #wake: (() => void) | undefined;
  /** Cuts a retry delay short (stop). */
  #stopWake: (() => void) | undefined;
  #whenEmpty: (() => void) | undefined;
  #cursorTimer: NodeJS.Timeout | undefined;
  #cursorWrite: Promise<void> = Promise.resolve();
  #cursorWritten: Position | undefined;
  #ageTimer: NodeJS.Timeout | undefined;

  constructor(options: SpoolOptions) {
    this.#dir = options.dir;
    this.#inner = options.inner;
    this.#maxBytes = options.maxBytes;
    this.#segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
    this.#maxBatchBytes = options.maxBatchBytes ?? 4 * 1024 * 1024;
    this.#memoryLimit = options.memoryBytes ?? 64 * 1024 * 1024;
    this.#retryAfterMs = options.retryAfterMs;
    this.#behindMs = options.behindMs ?? 10_000;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs ?? 10_000;
    this.#cursorIntervalMs = options.cursorIntervalMs ?? 1000;
    this.#maxRetryDelayMs = options.maxRetryDelayMs ?? 1000;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#rateLimited = new RateLimitedLog(options.logger);
  }

  /** Records spooled and not yet acknowledged by the inner producer. */
  get pendingRecords(): number {
    return this.#segments.reduce((n, s) => n + s.pendingRecords, 0);
  }

  get pendingBytes(): number {
    return this.#segments.reduce((n, s) => n + s.pendingBytes, 0);
  }

  get #pendingFrames(): number {
    return this.#segments.reduce((n, s) => n + s.pendingFrames, 0);
  }

  /** Bytes of the spool's files. */
  get diskBytes(): number {
    return this.#diskBytes;
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    try {
      await mkdir(this.#dir, { recursive: true });
      if (!(await stat(this.#dir)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new Error(`receiver.spool.dir ${this.#dir} cannot be used as the spool directory: ${errorText(err)}`, { cause: err });
    }
    await this.#recover();
    await this.#inner.start();
    this.#state = 'running';
    this.#updateGauges();
    this.#ageTimer = setInterval(() => this.#updateAge(), 1000);
    this.#ageTimer.unref();
    this.#drainLoop = this.#runDrain();
  }

  /** Reads the directory back: drained segments deleted, frames verified, a torn tail cut, the drain resumed at the cursor. */
  async #recover(): Promise<void> {
    const seqs = (await readdir(this.#dir))
      .map((name) => SEGMENT_RE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    const cursor = await this.#readCursor();
    let resumed = 0;
    for (const seq of seqs) {
      if (cursor !== undefined && seq < cursor.seg) {
        await unlink(join(this.#dir, segmentName(seq)));
        continue;
      }
      const isLast = seq === seqs[seqs.length - 1];
      const segment = await this.#scan(seq, cursor !== undefined && seq === cursor.seg ? cursor.offset : 0, isLast);
      this.#segments.push(segment.segment);
      this.#diskBytes += segment.segment.fileBytes;
      if (this.#segments.length === 1) {
        this.#drain = { seg: seq, offset: segment.from };
        this.#oldestMs = segment.oldestMs;
      } else this.#oldestMs ??= segment.oldestMs;
      resumed += segment.segment.pendingRecords;
    }
    const last = this.#segments[this.#segments.length - 1];
    if (last !== undefined && last.end < this.#segmentBytes) {
      this.#active = await this.#openSegment(last.seq, 'r+');
    } else {
      // Never below the cursor's segment: a restart deletes segments before it.
      const seq = Math.max((last?.seq ?? seqs[seqs.length - 1] ?? 0) + 1, (cursor?.seg ?? 0) + 1);
      await this.#roll(seq);
      if (last === undefined) this.#drain = { seg: seq, offset: 0 };
    }
    await this.#persistCursor();
    if (resumed > 0) {
      this.#logger.info(
        { dir: this.#dir, records: resumed, bytes: this.pendingBytes, segments: this.#segments.length },
        'spool: records spooled before the restart are being delivered',
      );
    }
  }

  async #openSegment(seq: number, flags: 'r+' | 'w+'): Promise<FileHandle> {
    const file = join(this.#dir, segmentName(seq));
    try {
      return await open(file, flags);
    } catch (err) {
      throw new Error(`receiver.spool.dir ${this.#dir}: cannot open ${file} for writing: ${errorText(err)}`, { cause: err });
    }
  }

  async #readCursor(): Promise<Position | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.#dir, 'cursor'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`receiver.spool.dir ${this.#dir}: cannot read the cursor: ${errorText(err)}`, { cause: err });
    }
    try {
      const c = JSON.parse(text) as { version?: unknown; segment?: unknown; offset?: unknown };
      if (c.version === 1 && Number.isSafeInteger(c.segment) && Number.isSafeInteger(c.offset) && (c.offset as number) >= 0) {
        return { seg: c.segment as number, offset: c.offset as number };
      }
    } catch {
      // Reported below.
    }
    this.#logger.warn({ dir: this.#dir, cursor: text.slice(0, 200) }, 'spool: the cursor file is not a cursor: every spooled frame is delivered again');
    return undefined;
  }

  /**
   * Verifies a segment's frames. `from`: the cursor's offset in it; frames before it were
   * delivered. A cursor off a frame boundary resumes at the boundary before it.
   */
  async #scan(seq: number, from: number, isLast: boolean): Promise<{ segment: Segment; from: number; oldestMs: number | undefined }> {
    const file = join(this.#dir, segmentName(seq));
    const data = await readFile(file);
    const segment: Segment = { seq, end: 0, fileBytes: data.length, pendingFrames: 0, pendingRecords: 0, pendingBytes: 0 };
    let start: number | undefined;
    let oldestMs: number | undefined;
    let at = 0;
    let bad: string | undefined;
    while (at < data.length) {
      const d = decodeFrame(data, at);
      if (d.kind !== 'frame') {
        bad = d.kind === 'bad' ? d.reason : 'the frame ends past the end of the file';
        break;
      }
      // Frames ending at or before the cursor were delivered.
      if (at + d.size > from) {
        if (start === undefined && at < from) {
          this.#logger.warn({ file, cursor: from, resumedAt: at }, 'spool: the cursor is not on a frame boundary: resuming at the frame holding it');
        }
        start ??= at;
        segment.pendingFrames++;
        segment.pendingRecords += d.records.length;
        segment.pendingBytes += d.size;
        oldestMs ??= d.appendedAtMs;
      }
      at += d.size;
    }
    start ??= at;
    segment.end = at;
    if (bad !== undefined) {
      const cut = data.length - at;
      this.#metrics?.receiverSpoolTornBytes.inc(cut);
      if (isLast) {
        const fh = await open(file, 'r+');
        try {
          await fh.truncate(at);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        segment.fileBytes = at;
        this.#logger.warn({ file, offset: at, bytes: cut, reason: bad }, 'spool: a torn tail (a write interrupted by a crash) was cut off the last segment');
      } else {
        this.#logger.error(
          { file, offset: at, bytes: cut, reason: bad },
          'spool: a damaged frame in a segment: the rest of that segment is skipped (never delivered)',
        );
      }
    }
    return { segment, from: start, oldestMs };
  }

  async #roll(seq: number): Promise<void> {
    const fh = await this.#openSegment(seq, 'w+');
    await fh.truncate(0);
    // The new file's name is durable before frames in it are acknowledged.
    await syncDir(this.#dir);
    const previous = this.#active;
    this.#active = fh;
    this.#segments.push({ seq, end: 0, fileBytes: 0, pendingFrames: 0, pendingRecords: 0, pendingBytes: 0 });
    await previous?.close().catch(() => undefined);
  }

  send(records: readonly TraceRecord[]): Promise<ProduceResult> {
    if (this.#state !== 'running') return Promise.resolve(this.#refuse('shutting_down', 'the spool is not accepting records (not started, or shutting down)'));
    if (records.length === 0) return Promise.resolve({ status: 'success' });
    const appendedAtMs = Date.now();
    const frame = encodeFrame(records, appendedAtMs);
    if (this.#diskBytes + this.#reservedBytes + frame.buf.length > this.#maxBytes) {
      this.#lastRefusedFullBytes = frame.buf.length;
      return Promise.resolve(
        this.#refuse(
          'full',
          `the spool is full: ${this.#diskBytes + this.#reservedBytes} of ${this.#maxBytes} bytes (receiver.spool.max_bytes) wait for Kafka${this.#innerError === undefined ? '' : ` (${this.#innerError})`}`,
        ),
      );
    }
    this.#lastRefusedFullBytes = undefined;
    return new Promise((resolve) => {
      this.#queue.push({ buf: frame.buf, records: frame.records, appendedAtMs, resolve });
      this.#reservedBytes += frame.buf.length;
      this.#flushing ??= this.#flushLoop();
    });
  }

  #refuse(reason: 'full' | 'write_failed' | 'shutting_down', error: string): ProduceResult {
    this.#metrics?.receiverSpoolRefused.inc({ reason });
    return { status: 'retryable', retryInMillis: this.#retryAfterMs, error };
  }

  /** Group commit: every send waiting is written and fdatasynced together, until none waits. */
  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0) await this.#flushOnce(this.#queue.splice(0));
    this.#flushing = undefined;
  }

  async #flushOnce(batch: Waiting[]): Promise<void> {
    const bytes = batch.reduce((n, w) => n + w.buf.length, 0);
    let segment = this.#segments[this.#segments.length - 1]!;
    try {
      if (this.#mustCut) await this.#cutBack(segment);
      if (segment.end >= this.#segmentBytes) {
        await this.#roll(segment.seq + 1);
        segment = this.#segments[this.#segments.length - 1]!;
      }
      await writeAll(this.#active!, batch.map((w) => w.buf), segment.end);
      await this.#active!.datasync();
      this.#metrics?.receiverSpoolSyncs.inc();
    } catch (err) {
      this.#reservedBytes -= bytes;
      this.#mustCut = true;
      await this.#cutBack(segment).catch(() => undefined);
      const file = join(this.#dir, segmentName(segment.seq));
      this.#writeError = `writing ${file} failed: ${errorText(err)}`;
      this.#rateLimited.warn('write', { file, error: errorText(err), requests: batch.length }, 'spool: a write failed: the requests in it are refused (UNAVAILABLE), earlier frames are intact');
      for (const w of batch) w.resolve(this.#refuse('write_failed', `the spool cannot keep the records: ${this.#writeError}; nothing of this request was kept`));
      return;
    }
    if (this.#writeError !== undefined) this.#logger.info({ dir: this.#dir }, 'spool: writes succeed again');
    this.#writeError = undefined;
    this.#reservedBytes -= bytes;
    let offset = segment.end;
    for (const w of batch) {
      const frame: Frame = { seg: segment.seq, offset, size: w.buf.length, appendedAtMs: w.appendedAtMs, records: w.records };
      offset += w.buf.length;
      this.#oldestMs ??= w.appendedAtMs;
      segment.pendingFrames++;
      segment.pendingRecords += w.records.length;
      segment.pendingBytes += w.buf.length;
      this.#memory.push(frame);
      this.#memoryBytes += frame.size;
    }
    segment.end = offset;
    segment.fileBytes = offset;
    this.#diskBytes += bytes;
    while (this.#memoryBytes > this.#memoryLimit && this.#memory.length > 0) this.#memoryBytes -= this.#memory.shift()!.size;
    this.#updateGauges();
    for (const w of batch) w.resolve({ status: 'success' });
    this.#wake?.();
  }

  /** Cuts the segment back to its last good length after a failed write. */
  async #cutBack(segment: Segment): Promise<void> {
    await this.#active!.truncate(segment.end);
    this.#mustCut = false;
  }

  // ---- the drain -------------------------------------------------------------------

  async #runDrain(): Promise<void> {
    while (!this.#stopDrain) {
      await this.#skipDrained();
      if (this.#pendingFrames === 0) {
        this.#oldestMs = undefined;
        this.#updateAge();
        this.#whenEmpty?.();
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        continue;
      }
      let frames: Frame[];
      try {
        frames = await this.#nextBatch();
      } catch (err) {
        this.#rateLimited.warn('read', { dir: this.#dir, error: errorText(err) }, 'spool: reading spooled frames back failed; retrying');
        await this.#sleep(this.#maxRetryDelayMs);
        continue;
      }
      if (frames.length === 0) {
        await this.#sleep(100);
        continue;
      }
      this.#oldestMs = frames[0]!.appendedAtMs;
      const delivered = await this.#deliver(frames.flatMap((f) => f.records), 0);
      if (!delivered || this.#state === 'closed') return;
      this.#advance(frames);
    }
  }

  /** Deletes segments the drain is past; moves the drain to the next segment at the end of one. */
  async #skipDrained(): Promise<void> {
    for (;;) {
      const first = this.#segments[0];
      if (first === undefined || this.#segments.length === 1) return;
      if (first.seq >= this.#drain.seg && !(first.seq === this.#drain.seg && this.#drain.offset >= first.end)) return;
      this.#segments.shift();
      this.#diskBytes -= first.fileBytes;
      if (this.#drain.seg <= first.seq) this.#drain = { seg: this.#segments[0]!.seq, offset: 0 };
      this.#updateGauges();
      await unlink(join(this.#dir, segmentName(first.seq))).catch((err: unknown) =>
        this.#rateLimited.warn('unlink', { file: segmentName(first.seq), error: errorText(err) }, 'spool: a delivered segment could not be deleted'),
      );
      this.#scheduleCursor();
    }
  }

  /** Consecutive frames from the drain position, up to maxBatchBytes (one at least): from memory, else read back. */
  async #nextBatch(): Promise<Frame[]> {
    const head = this.#memory[0];
    if (head !== undefined && head.seg === this.#drain.seg && head.offset === this.#drain.offset) {
      const frames: Frame[] = [];
      let bytes = 0;
      for (const f of this.#memory) {
        if (frames.length > 0 && bytes + f.size > this.#maxBatchBytes) break;
        frames.push(f);
        bytes += f.size;
      }
      return frames;
    }
    const segment = this.#segments.find((s) => s.seq === this.#drain.seg)!;
    // Frames in memory are taken from there: read up to the first of them.
    const end = head !== undefined && head.seg === segment.seq ? head.offset : segment.end;
    const from = this.#drain.offset;
    if (from >= end) return [];
    const file = join(this.#dir, segmentName(segment.seq));
    const fh = await open(file, 'r');
    try {
      let buf = Buffer.allocUnsafe(Math.min(end - from, Math.max(this.#maxBatchBytes, HEADER_BYTES)));
      await readExactly(fh, buf, from);
      const first = decodeFrame(buf, 0);
      if (first.kind === 'incomplete' && first.size <= end - from) {
        buf = Buffer.allocUnsafe(first.size);
        await readExactly(fh, buf, from);
      }
      const frames: Frame[] = [];
      let at = 0;
      while (at < buf.length) {
        const d = decodeFrame(buf, at);
        if (d.kind === 'incomplete') break;
        if (d.kind === 'bad') {
          if (frames.length === 0) this.#damaged(segment, from + at, end, d.reason);
          break;
        }
        if (frames.length > 0 && at + d.size > this.#maxBatchBytes) break;
        frames.push({ seg: segment.seq, offset: from + at, size: d.size, appendedAtMs: d.appendedAtMs, records: d.records });
        at += d.size;
      }
      if (frames.length === 0 && decodeFrame(buf, 0).kind === 'incomplete') this.#damaged(segment, from, end, 'the frame ends past the spooled bytes');
      return frames;
    } finally {
      await fh.close();
    }
  }

  /**
   * A frame found damaged after start (the media changed under the spool): the bytes
   * from it up to `limit` (the next frame known good: in memory, or the segment's end)
   * are skipped, logged and counted.
   */
  #damaged(segment: Segment, offset: number, limit: number, reason: string): void {
    const inMemory = this.#memory.filter((f) => f.seg === segment.seq);
    const frames = segment.pendingFrames - inMemory.length;
    const records = segment.pendingRecords - inMemory.reduce((n, f) => n + f.records.length, 0);
    const bytes = segment.pendingBytes - inMemory.reduce((n, f) => n + f.size, 0);
    this.#metrics?.receiverSpoolTornBytes.inc(limit - offset);
    this.#logger.error(
      { file: segmentName(segment.seq), offset, bytes: limit - offset, records, reason },
      'spool: a damaged frame: the spooled records up to the next good frame are skipped (never delivered)',
    );
    segment.pendingFrames -= frames;
    segment.pendingRecords -= records;
    segment.pendingBytes -= bytes;
    this.#drain = { seg: segment.seq, offset: limit };
    this.#updateGauges();
  }

  /**
   * Hands records to the inner producer until it takes them: retryable waits and retries
   * the same records; failure (never deliverable) retries them one by one and skips
   * only a single record refused so. False when the drain stopped first.
   */
  async #deliver(records: readonly TraceRecord[], depth: number): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.#stopDrain) return false;
      let result: ProduceResult;
      try {
        result = await this.#inner.send(records);
      } catch (err) {
        result = { status: 'retryable', retryInMillis: this.#retryAfterMs, error: errorText(err) };
      }
      if (this.#state === 'closed') return false;
      if (result.status === 'success') {
        if (this.#innerError !== undefined && depth === 0) this.#logger.info({ dir: this.#dir }, 'spool: Kafka takes records again');
        this.#innerError = undefined;
        this.#metrics?.receiverSpoolDelivered.inc(records.length);
        return true;
      }
      if (result.status === 'retryable') {
        this.#innerError = result.error;
        this.#rateLimited.warn('retry', { error: result.error, records: records.length, spooled: this.pendingRecords }, 'spool: Kafka refused spooled records for now; retrying (they wait on disk)');
        // Not the delay meant for clients (retryInMillis): spooled spans are late already, and Kafka's
        // producer answers at once while the cluster is unreachable, so a quick retry costs little.
        await this.#sleep(Math.min(this.#maxRetryDelayMs, MIN_RETRY_DELAY_MS * 2 ** Math.min(attempt, 10)));
        continue;
      }
      if (records.length > 1) {
        for (const r of records) if (!(await this.#deliver([r], depth + 1))) return false;
        return true;
      }
      const r = records[0]!;
      this.#metrics?.receiverSpoolUndeliverable.inc();
      this.#logger.error(
        { traceId: r.traceId, spans: r.spanCount, bytes: r.payload.length, error: result.error },
        'spool: Kafka refused a spooled record as never deliverable: it is skipped',
      );
      return true;
    }
  }

  #advance(frames: readonly Frame[]): void {
    const last = frames[frames.length - 1]!;
    for (const f of frames) {
      const s = this.#segments.find((x) => x.seq === f.seg);
      if (s === undefined) continue;
      s.pendingFrames--;
      s.pendingRecords -= f.records.length;
      s.pendingBytes -= f.size;
    }
    this.#drain = { seg: last.seg, offset: last.offset + last.size };
    while (this.#memory.length > 0 && before(this.#memory[0]!, this.#drain)) this.#memoryBytes -= this.#memory.shift()!.size;
    const next = this.#memory[0];
    this.#oldestMs = this.#pendingFrames === 0 ? undefined : next !== undefined && next.seg === this.#drain.seg && next.offset === this.#drain.offset ? next.appendedAtMs : last.appendedAtMs;
    this.#updateGauges();
    this.#scheduleCursor();
  }

  /** A retry delay; stopping the drain cuts it short (a new frame does not). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#stopWake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#stopWake = done;
    });
  }

  // ---- the cursor --------------------------------------------------------------------

  #scheduleCursor(): void {
    if (this.#cursorTimer !== undefined || this.#state === 'closed') return;
    this.#cursorTimer = setTimeout(() => {
      this.#cursorTimer = undefined;
      void this.#persistCursor();
    }, this.#cursorIntervalMs);
    this.#cursorTimer.unref();
  }

  /** Writes the cursor (one at a time, never backwards); a failure is logged: a restart then delivers more again. */
  #persistCursor(): Promise<void> {
    this.#cursorWrite = this.#cursorWrite.then(async () => {
      const at = { ...this.#drain };
      if (this.#cursorWritten !== undefined && this.#cursorWritten.seg === at.seg && this.#cursorWritten.offset === at.offset) return;
      const tmp = join(this.#dir, 'cursor.tmp');
      try {
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(JSON.stringify({ version: 1, segment: at.seg, offset: at.offset }));
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await rename(tmp, join(this.#dir, 'cursor'));
        this.#cursorWritten = at;
      } catch (err) {
        this.#rateLimited.warn('cursor', { dir: this.#dir, error: errorText(err) }, 'spool: writing the cursor failed (after a restart, more frames are delivered again)');
      }
    });
    return this.#cursorWrite;
  }

  // ---- health and metrics ------------------------------------------------------------

  /** Degraded while it refuses sends (full, or its writes fail) or holds frames older than behindMs (Kafka behind). */
  health(): SpoolHealth {
    if (this.#writeError !== undefined) {
      return { degraded: true, reason: `the spool refuses exports: ${this.#writeError}` };
    }
    if (this.#lastRefusedFullBytes !== undefined && this.#diskBytes + this.#reservedBytes + this.#lastRefusedFullBytes > this.#maxBytes) {
      return {
        degraded: true,
        reason: `the spool is full (${this.#diskBytes} of ${this.#maxBytes} bytes): exports are refused until Kafka takes what is spooled${this.#innerError === undefined ? '' : `; Kafka: ${this.#innerError}`}`,
      };
    }
    const age = this.#oldestMs === undefined ? 0 : Date.now() - this.#oldestMs;
    if (age > this.#behindMs) {
      return {
        degraded: true,
        reason: `Kafka is behind: ${this.pendingRecords} records (${this.pendingBytes} bytes) spooled, the oldest ${(age / 1000).toFixed(1)} s ago${this.#innerError === undefined ? '' : `; Kafka: ${this.#innerError}`}`,
      };
    }
    return { degraded: false };
  }

  #updateGauges(): void {
    const m = this.#metrics;
    if (m === undefined) return;
    m.receiverSpoolPendingBytes.set(this.pendingBytes);
    m.receiverSpoolPendingRecords.set(this.pendingRecords);
    m.receiverSpoolDiskBytes.set(this.#diskBytes);
    this.#updateAge();
  }

  #updateAge(): void {
    this.#metrics?.receiverSpoolOldestAge.set(this.#oldestMs === undefined ? 0 : Math.max(0, (Date.now() - this.#oldestMs) / 1000));
  }

  // ---- shutdown ----------------------------------------------------------------------

  /**
   * Stops accepting (sends are refused as retryable), finishes the writes under way,
   * drains to the inner producer for up to shutdownTimeoutMs, persists the cursor and
   * shuts the inner producer down. What is still spooled stays for the next start.
   */
  async shutdown(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    if (this.#state === 'new') {
      // Never started, or its start failed (e.g. the inner producer's).
      this.#state = 'closed';
      await this.#active?.close().catch(() => undefined);
      this.#active = undefined;
      await this.#inner.shutdown();
      return;
    }
    this.#state = 'closing';
    await this.#flushing;
    const deadline = Date.now() + this.#shutdownTimeoutMs;
    if (this.#pendingFrames > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#shutdownTimeoutMs);
        this.#whenEmpty = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#whenEmpty = undefined;
    }
    this.#stopDrain = true;
    this.#wake?.();
    this.#stopWake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#drainLoop, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(1000, deadline - Date.now()))))]);
    clearTimeout(timer);
    this.#state = 'closed';
    clearTimeout(this.#cursorTimer);
    this.#cursorTimer = undefined;
    clearInterval(this.#ageTimer);
    await this.#persistCursor();
    await this.#active?.close().catch(() => undefined);
    this.#active = undefined;
    if (this.#pendingFrames > 0) {
      this.#logger.warn(
        { dir: this.#dir, records: this.pendingRecords, bytes: this.pendingBytes },
        'spool: records not yet in Kafka at shutdown stay spooled for the next start',
      );
    }
    await this.#inner.shutdown();
  }
}

async function readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let at = 0;
  while (at < buf.length) {
    const { bytesRead } = await fh.read(buf, at, buf.length - at, position + at);
    if (bytesRead === 0) throw new Error(`the file ends ${buf.length - at} bytes early`);
    at += bytesRead;
  }
}
