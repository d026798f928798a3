/**
 * Replay source: OTLP trace files (JSON, JSON lines, protobuf, the Collector
 * file exporter's length-prefixed stream), globs allowed. The files, sorted by
 * name, form one lane: a trace may span files (rotated exporter files), and
 * files written over time are roughly in event-time order. One file is held in
 * memory at a time.
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

/** Feeds every request of the files to one lane of `engine`, then ends it. */
export async function readFileSource(engine: ReplayEngine, options: FileSourceOptions): Promise<SourceResult> {
  const sizes = await Promise.all(options.files.map(async (f) => (await stat(f)).size));
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  let doneBytes = 0;
  const lane = engine.lane();
  for (let i = 0; i < options.files.length; i++) {
    const file = options.files[i]!;
    if (isAborted(options.signal)) return { ok: false, error: 'replay cancelled' };
    let requests: Uint8Array[];
    try {
      requests = await readRequests(file);
    } catch (err) {
      return { ok: false, error: (err as Error).message.split('\n')[0] ?? String(err) };
    }
    const fileBytes = sizes[i]!;
    for (let r = 0; r < requests.length; r++) {
      lane.addRecord(requests[r]!);
      if ((r & 255) === 255) {
        // Let timers (progress, cancellation) run during a long file.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (isAborted(options.signal)) return { ok: false, error: 'replay cancelled' };
        options.onProgress?.({ fraction: totalBytes === 0 ? 1 : (doneBytes + (fileBytes * r) / requests.length) / totalBytes });
      }
    }
    doneBytes += fileBytes;
    options.onProgress?.({ fraction: totalBytes === 0 ? 1 : doneBytes / totalBytes });
  }
  lane.end();
  return { ok: true, description: `${options.files.length} file${options.files.length === 1 ? '' : 's'}` };
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
