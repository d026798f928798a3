/**
 * Replay at scale, one process: the cost per trace from 50,000 to 5,000,000 traces (the
 * targets: within 20% from the smallest to the largest, from files and the local log),
 * and two processes against one (files, each process half of them).
 *
 * History: traces of 3 spans in one record (a root, a child, a grandchild), one trace
 * every millisecond; 1% hold a `refund` span. Rules:
 *   trigger: `not trace.has(refund)`, whose trigger is in 1% of traces: the others are
 *            skipped after the byte-level name scan, never decoded;
 *   full:    the same rule with skipping off: every trace decoded and evaluated;
 *   index:   (local log) through its trace index: only the traces holding the trigger read
 *            (the target: ≥ 20× faster than the full scan, same answer).
 * Records are made from one encoded template (its trace id and times patched), so
 * building 5M traces costs seconds. Files: the Collector file exporter's protobuf
 * stream, 8 files; the local log: transport.history's segments, written by LocalHistory.
 *
 * Run: node test/bench/replay-scale-bench.ts (BENCH_REPLAY_SCALE=50000,500000,5000000
 * sets the sizes). Prints a table and one JSON line. Not a test: nothing is asserted.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { loadConfig } from '../../src/config/index.ts';
import { runReplay, type ReplaySource } from '../../src/replay/index.ts';
import { compileRule, type CompiledRule } from '../../src/rules/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { LocalHistory } from '../../src/transport/local-history.ts';
import { patchedRecords } from '../replay/history.ts';

const START_MS = Date.UTC(2026, 0, 1);
const SPANS_PER_TRACE = 3;
const FILES = 8;
const quiet = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));

const hex = (n: number, bytes: number) => n.toString(16).padStart(bytes * 2, '0');

/** Trace i (starting at START_MS + i), patched from one encoded template; `refund` names the grandchild. */
function recordMaker(refund: boolean): (i: number) => Buffer {
  const names = ['http.request', 'checkout.process', refund ? 'refund' : 'database.query'];
  const patched = patchedRecords(
    names.map((name, k) => ({
      service: 'shop',
      spanId: `${k + 1}`.repeat(16),
      parentSpanId: k === 0 ? '' : `${k}`.repeat(16),
      name,
      startMs: START_MS + k,
      durationMs: 10 - k,
      attributes: { 'order.id': 'order-000000' },
    })),
  );
  return (i) => patched(hex(i + 1, 16), i);
}

const ok = recordMaker(false);
const bad = recordMaker(true);
const recordOf = (i: number) => (i % 100 === 37 ? bad(i) : ok(i));

async function writeFiles(dir: string, traces: number): Promise<string[]> {
  const files: string[] = [];
  const per = Math.ceil(traces / FILES);
  for (let f = 0; f < FILES; f++) {
    const file = join(dir, `traces-${f}.pb`);
    files.push(file);
    const out = createWriteStream(file);
    const len = Buffer.alloc(4);
    for (let i = f * per; i < Math.min(traces, (f + 1) * per); i++) {
      const r = recordOf(i);
      len.writeUInt32BE(r.length);
      if (!out.write(Buffer.from(len))) await once(out, 'drain');
      if (!out.write(r)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  }
  return files;
}

async function writeLocalHistory(dir: string, traces: number): Promise<void> {
  const history = new LocalHistory({ dir, maxAgeMs: 0, maxBytes: 1024 ** 4, segmentBytes: 64 * 1024 * 1024, logger: quiet });
  await history.start();
  for (let i = 0; i < traces; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(traces, i + 1000); j++) batch.push({ traceId: hex(j + 1, 16), payload: recordOf(j), spanCount: SPANS_PER_TRACE, timestampMs: START_MS + j });
    history.append(batch);
    if ((i / 1000) % 64 === 63) await history.flush();
  }
  await history.stop();
}

function rule(): CompiledRule {
  const r = compileRule({ id: 'no-refund', name: 'no refund', description: '', severity: 'high', enabled: true, tags: [], condition: 'not trace.has(refund)' });
  if (!r.ok) throw new Error(JSON.stringify(r));
  return r.rule;
}

/**
 * One replay over the whole history: elapsed ms and the violations found. `skip`: traces without
 * the trigger are skipped (through the local log's index unless `fullScan`); else every trace is decoded.
 */
async function replayOnce(source: ReplaySource, traces: number, skip: boolean, historyDir = '', fullScan = false): Promise<{ ms: number; violations: number }> {
  const config = loadConfig(undefined, historyDir === '' ? {} : { BETRACE_DATA_DIR: historyDir });
  const started = performance.now();
  const r = await runReplay({ rules: [rule()], fromMs: START_MS, toMs: START_MS + traces, source, config, logger: quiet, skipByTriggers: skip, fullScan });
  if (!r.ok) throw new Error(r.error);
  const expected = Math.floor((traces - 38) / 100) + 1;
  if (r.report.total !== expected) throw new Error(`${r.report.total} violations, expected ${expected}`);
  return { ms: performance.now() - started, violations: r.report.total };
}

/** Replays `files` in a child process (this file with --child); resolves with its elapsed ms. */
function childReplay(files: string[], traces: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [import.meta.filename, '--child', String(traces), ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`child exited ${code}`))));
  });
}

export async function runReplayScaleBench(): Promise<Record<string, number>> {
  const sizes = (process.env.BENCH_REPLAY_SCALE ?? '50000,500000,5000000').split(',').map(Number);
  const out: Record<string, number> = {};
  for (const n of sizes) {
    const dir = await mkdtemp(join(tmpdir(), 'betrace-replay-scale-'));
    try {
      const files = await writeFiles(dir, n);
      const historyData = join(dir, 'data');
      await writeLocalHistory(join(historyData, 'history'), n);
      const fileSource: ReplaySource = { kind: 'files', patterns: files };
      const historySource: ReplaySource = { kind: 'history' };
      await replayOnce(fileSource, n, true); // warm-up
      for (const [name, source, data] of [['files', fileSource, ''], ['history', historySource, historyData]] as const) {
        const trig = await replayOnce(source, n, true, data, true);
        const full = await replayOnce(source, n, false, data);
        out[`${name}_${n}_trigger_us_per_trace`] = (trig.ms * 1000) / n;
        out[`${name}_${n}_full_us_per_trace`] = (full.ms * 1000) / n;
        out[`${name}_${n}_full_spans_per_s`] = Math.round((n * SPANS_PER_TRACE * 1000) / full.ms);
        if (name === 'history') {
          // Through the trace index: only the 1% holding the trigger are read.
          const indexed = await replayOnce(source, n, true, data);
          out[`history_${n}_index_us_per_trace`] = (indexed.ms * 1000) / n;
          out[`history_${n}_index_speedup_vs_full`] = full.ms / indexed.ms;
          out[`history_${n}_index_speedup_vs_trigger_scan`] = trig.ms / indexed.ms;
        }
      }
      if (n === sizes.at(-1)) {
        const one = await childReplay(files, n);
        const both = await Promise.all([childReplay(files.slice(0, FILES / 2), n), childReplay(files.slice(FILES / 2), n)]);
        out.files_two_processes_speedup = one / Math.max(...both);
        out.files_two_processes_traces = n;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const [small, large] = [sizes[0]!, sizes.at(-1)!];
  for (const name of ['files', 'history']) {
    for (const mode of ['trigger', 'full']) out[`${name}_${mode}_cost_ratio`] = out[`${name}_${large}_${mode}_us_per_trace`]! / out[`${name}_${small}_${mode}_us_per_trace`]!;
  }
  return out;
}

if (process.argv[2] === '--child') {
  const traces = Number(process.argv[3]);
  const files = process.argv.slice(4);
  const started = performance.now();
  const config = loadConfig(undefined, {});
  const r = await runReplay({ rules: [rule()], fromMs: START_MS, toMs: START_MS + traces, source: { kind: 'files', patterns: files }, config, logger: quiet, skipByTriggers: false });
  if (!r.ok) throw new Error(r.error);
  process.stdout.write(`${performance.now() - started}\n`);
} else if (import.meta.main) {
  const r = await runReplayScaleBench();
  const lines = ['replay at scale: 3-span traces, 1% with the trigger; cost per trace in µs (trigger scan / full decode), full-scan spans/s', ''];
  for (const [k, v] of Object.entries(r)) lines.push(`${k.padEnd(40)} ${v.toLocaleString('en-US', { maximumFractionDigits: 3 })}`);
  console.log(lines.join('\n'));
  console.log(JSON.stringify({ bench: 'replay-scale', ...r }));
}
