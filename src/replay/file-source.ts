/**
 * Replay source: OTLP trace files (JSON, JSON lines, protobuf, the Collector
 * file exporter's length-prefixed stream), globs allowed. The files form one
 * lane, fed in event time whatever their names: a trace may span files (rotated
 * exporter files) and several writers' files may cover the same hours (two
 * Collectors, each with some of every trace's spans), so the requests of all files
 * are merged by their earliest span start. A first pass reads when each file
 * starts; then a file is loaded when the merge reaches its start and let go once
 * read, so only the files that overlap in time are held in memory at once.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { escapePath, glob, isDynamicPattern } from 'tinyglobby';
import { scanPart, traceFileRequests } from '../otlp/index.ts';
import type { ReplayEngine } from './engine.ts';
import type { SourceResult, SourceProgress } from './source.ts';

/** The files the patterns name, sorted, or why not (a plain path that does not exist, a glob matching nothing). */
export async function resolveTraceFiles(patterns: readonly string[]): Promise<{ ok: true; files: string[] } | { ok: false; error: string }> {
  const files = new Set<string>();
  for (const pattern of patterns) {
    if (isDynamicPattern(pattern)) {
      const found = await glob([pattern], { absolute: true, onlyFiles: true, followSymbolicLinks: true, expandDirectories: false });
      if (found.length === 0) return { ok: false, error: `no trace file matches ${pattern}` };
      for (const f of found) files.add(f);
    } else {
      const s = await stat(pattern).catch(() => undefined);
      if (s === undefined || !s.isFile()) return { ok: false, error: `${pattern}: no such trace file` };
      files.add(pattern);
    }
  }
  return { ok: true, files: [...files].sort() };
}

/**
 * The files the patterns name inside `root` (replays started through the API):
 * patterns are relative to root (an absolute path must lie inside it), `..` is
 * refused, and every match must resolve (symbolic links followed) inside root.
 * Only `*`, `?`, `[…]` and `**` are globs here: braces and extglob parentheses
 * could expand to `..` and walk the filesystem outside root, and directory links
 * are not followed while matching, for the same reason.
 * Whatever the reason a pattern names nothing readable there (outside root, not
 * there, a directory), the error is the same, so it tells nothing about the
 * filesystem.
 */
export async function resolveTraceFilesUnder(root: string, patterns: readonly string[]): Promise<{ ok: true; files: string[] } | { ok: false; error: string }> {
  const refuse = (pattern: string) => ({ ok: false as const, error: `no trace file matches ${JSON.stringify(pattern)} in the replay directory` });
  const base = await realpath(root).catch(() => undefined);
  const inside = (path: string, dir: string) => {
    const rel = relative(dir, path);
    return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
  };
  const files = new Set<string>();
  for (const pattern of patterns) {
    if (/[{}()]/.test(pattern)) {
      return { ok: false, error: `${JSON.stringify(pattern)}: replay patterns through the API may use *, ?, [...] and ** (no braces or parentheses)` };
    }
    if (base === undefined || pattern.includes('\0') || pattern.split(/[\\/]/).includes('..')) return refuse(pattern);
    let rel = pattern;
    if (isAbsolute(pattern)) {
      const dir = [resolve(root), base].find((d) => inside(pattern, d));
      if (dir === undefined) return refuse(pattern);
      rel = relative(dir, pattern);
    }
    const found = await glob([isDynamicPattern(rel) ? rel : escapePath(rel)], {
      cwd: base,
      absolute: true,
      onlyFiles: true,
      followSymbolicLinks: false,
      expandDirectories: false,
    });
    let matched = 0;
    for (const f of found) {
      const real = await realpath(f).catch(() => undefined);
      if (real === undefined || !inside(real, base)) continue;
      files.add(real);
      matched++;
    }
    if (matched === 0) return refuse(pattern);
  }
  return { ok: true, files: [...files].sort() };
}

export interface FileSourceOptions {
  readonly files: readonly string[];
  readonly onProgress?: (p: SourceProgress) => void;
  readonly signal?: AbortSignal;
}

/** A file's requests in event-time order: each with its earliest span start (unix ms). */
interface LoadedFile {
  readonly requests: Uint8Array[];
  readonly times: number[];
  next: number;
  readonly bytes: number;
}

/**
 * The file's requests sorted by earliest span start (stable: a request without
 * span times keeps its place after the request before it).
 */
async function loadFile(file: string, bytes: number): Promise<LoadedFile> {
  const read = await readRequests(file);
  const at: number[] = [];
  let last = -Infinity;
  for (const request of read) {
    let ms = Infinity;
    try {
      ms = scanPart(request, null).earliestStartMs;
    } catch {
      // Malformed: counted by the engine when it is read; placed after the request before it.
    }
    if (Number.isFinite(ms)) last = ms;
    at.push(last);
  }
  const order = read.map((_r, i) => i).sort((x, y) => at[x]! - at[y]! || x - y);
  return { requests: order.map((i) => read[i]!), times: order.map((i) => at[i]!), next: 0, bytes };
}

/** Feeds every request of the files to one lane of `engine`, merged in event time, then ends it. */
export async function readFileSource(engine: ReplayEngine, options: FileSourceOptions): Promise<SourceResult> {
  const sizes = await Promise.all(options.files.map(async (f) => (await stat(f)).size));
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  const progress = (bytes: number) => options.onProgress?.({ fraction: totalBytes === 0 ? 1 : Math.min(1, bytes / totalBytes) });
  const fail = (err: unknown): SourceResult => ({ ok: false, error: (err as Error).message.split('\n')[0] ?? String(err) });
  // Pass 1: when each file starts (its earliest request).
  const starts: { file: string; bytes: number; startMs: number }[] = [];
  for (let i = 0; i < options.files.length; i++) {
    if (isAborted(options.signal)) return { ok: false, error: 'replay cancelled' };
    let loaded: LoadedFile;
    try {
      loaded = await loadFile(options.files[i]!, sizes[i]!);
    } catch (err) {
      return fail(err);
    }
    starts.push({ file: options.files[i]!, bytes: sizes[i]!, startMs: loaded.times[0] ?? Infinity });
    await yieldToTimers();
  }
  starts.sort((a, b) => a.startMs - b.startMs); // stable: by name among equal starts
  // Pass 2: merge the loaded files' requests by time, loading each file when the merge reaches its start.
  const lane = engine.lane();
  const open: LoadedFile[] = [];
  let waiting = 0;
  let doneBytes = 0;
  let fed = 0;
  for (;;) {
    let head: LoadedFile | undefined;
    for (const f of open) if (head === undefined || f.times[f.next]! < head.times[head.next]!) head = f;
    if (waiting < starts.length && (head === undefined || starts[waiting]!.startMs <= head.times[head.next]!)) {
      const { file, bytes } = starts[waiting++]!;
      try {
        const loaded = await loadFile(file, bytes);
        if (loaded.requests.length > 0) open.push(loaded);
        else doneBytes += bytes;
      } catch (err) {
        return fail(err);
      }
      continue;
    }
    if (head === undefined) break;
    lane.addRecord(head.requests[head.next]!);
    head.next++;
    if (head.next === head.requests.length) {
      open.splice(open.indexOf(head), 1);
      doneBytes += head.bytes;
    }
    if ((++fed & 255) === 0) {
      // Let timers (progress, cancellation) run during a long merge.
      await yieldToTimers();
      if (isAborted(options.signal)) return { ok: false, error: 'replay cancelled' };
      progress(doneBytes + open.reduce((n, f) => n + (f.bytes * f.next) / f.requests.length, 0));
    }
  }
  progress(totalBytes);
  lane.end();
  return { ok: true, description: `${options.files.length} file${options.files.length === 1 ? '' : 's'}`, fromHistoryStart: true };
}

function yieldToTimers(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/**
 * The requests of a trace file (src/otlp's framing); protobuf is checked with
 * the byte-level scan of its first message rather than a full decode (a
 * malformed message is then counted by the engine).
 */
async function readRequests(path: string): Promise<Uint8Array[]> {
  const data = await readFile(path).catch((err: unknown) => {
    throw new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`);
  });
  return traceFileRequests(path, data, (messages) => isRequest(messages[0]!)).requests;
}

function isRequest(bytes: Uint8Array): boolean {
  try {
    scanPart(bytes, null);
    return true;
  } catch {
    return false;
  }
}
