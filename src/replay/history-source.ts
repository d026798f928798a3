/**
 * Replay source: the embedded transport's local history (transport.history). Its
 * segments overlapping [from − trace_max_duration, to + trace_max_duration] are read
 * in append order into one lane, each record with its event-time timestamp, as a
 * partition of the spans topic would be. Readable while `betrace run` writes it.
 *
 * Through the segments' trace index (history-index.ts) when the rules let replay skip
 * traces (each has triggers and passes without them), in two passes over the index: the
 * first finds the traces holding a trigger (and those with records no index chunk covers);
 * the second assembles those in the lane from the index's summaries, reading their records
 * by location once complete, and counts every other trace from the index alone
 * (IndexCounter). Parts of a segment no index chunk covers are read as frames, so the
 * answer is the full scan's.
 * `fullScan` (or a rule without triggers) reads every record.
 */
import { fetchHistoryPayloads, readLocalHistory, readLocalHistoryIndexed, type HistoryLocation } from '../transport/local-history.ts';
import type { TraceRecord } from '../transport/transport.ts';
import { entryTraceId, traceIdHash, visitEntries } from '../transport/history-index.ts';
import type { ReplayEngine } from './engine.ts';
import { IndexCounter } from './index-counter.ts';
import type { SourceProgress, SourceResult } from './source.ts';

export interface HistorySourceOptions {
  readonly dir: string;
  /** Margin read before `from` and after `to` (worker.trace_max_duration). */
  readonly marginMs: number;
  /** Read every record, not the index (default false). */
  readonly fullScan?: boolean;
  readonly onProgress?: (p: SourceProgress) => void;
  readonly signal?: AbortSignal;
}

class Cancelled extends Error {}

export async function readHistorySource(engine: ReplayEngine, options: HistorySourceOptions): Promise<SourceResult> {
  const lane = engine.lane();
  const lower = engine.fromMs - options.marginMs;
  const upper = engine.toMs + options.marginMs;
  const dir = options.dir;
  let read = 0;
  /** Lets timers (progress, cancellation) run now and then. */
  const breathe = async (n: number): Promise<void> => {
    read += n;
    if ((read & 1023) < n) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (options.signal?.aborted === true) throw new Cancelled();
      options.onProgress?.({});
    }
  };
  const addRecords = (records: readonly TraceRecord[]): void => {
    for (const r of records) {
      if (r.timestampMs >= lower && r.timestampMs < upper) lane.addRecord(r.payload, r.timestampMs);
    }
  };
  try {
    const triggers = engine.triggerNames;
    if (options.fullScan === true || triggers === null) {
      const result = await readLocalHistory(dir, lower, upper, async (records) => {
        addRecords(records);
        await breathe(records.length);
      });
      lane.end();
      const why = options.fullScan === true ? 'full scan' : 'full scan: some rule has no triggers, or fails without them';
      return { ok: true, description: `the local history ${dir} (${plural(result.segments, 'segment')}, ${result.records} records, ${why}${damagedText(result.damaged)})`, fromHistoryStart: true };
    }
    const fetch = (locations: readonly unknown[]) => fetchHistoryPayloads(dir, locations as HistoryLocation[]);
    const triggerNumbers = (names: readonly string[]) => {
      const wanted = names.map((n) => triggers.has(n));
      return (k: number) => wanted[k] === true;
    };
    const inWindow = (ts: number) => ts >= lower && ts < upper;
    // Pass 1: the traces to assemble from their records: those holding a trigger, and those with records no index chunk covers.
    const assembled = new Set<number>();
    await readLocalHistoryIndexed(dir, lower, upper, {
      onChunk: async (_seq, chunk, names) => {
        visitEntries(chunk, triggerNumbers(names), (e) => {
          if (e.wanted && inWindow(e.timestampMs)) assembled.add(e.idHash);
        });
        await breathe(chunk.count);
      },
      onRecords: (records) => {
        for (const r of records) assembled.add(traceIdHash(Buffer.from(r.traceId, 'latin1'), 0, r.traceId.length));
      },
    });
    // Pass 2: those through the lane (fetched when complete), every other trace counted from the index.
    read = 0;
    const counter = new IndexCounter(engine.fromMs, engine.toMs, options.marginMs);
    const result = await readLocalHistoryIndexed(dir, lower, upper, {
      onChunk: async (seq, chunk, names) => {
        visitEntries(chunk, triggerNumbers(names), (e) => {
          if (!inWindow(e.timestampMs)) return;
          if (!assembled.has(e.idHash)) {
            counter.add(e.idHash, e.timestampMs, e.earliestStartMs, e.spanCount, e.untimedSpans, () => entryTraceId(chunk, e));
            return;
          }
          lane.addSummary({
            traceId: entryTraceId(chunk, e),
            timestampMs: e.timestampMs,
            earliestStartMs: e.earliestStartMs,
            spanCount: e.spanCount,
            untimedSpans: e.untimedSpans,
            triggered: e.wanted,
            location: { seq, position: e.position, length: e.length, crc: e.crc } satisfies HistoryLocation,
          });
        });
        await engine.fetchPending(fetch);
        await breathe(chunk.count);
      },
      onRecords: async (records) => {
        addRecords(records);
        await engine.fetchPending(fetch);
        await breathe(records.length);
      },
    });
    engine.countIndexed(counter.finish());
    lane.end();
    await engine.fetchPending(fetch);
    const c = engine.counters;
    return {
      ok: true,
      description:
        `the local history ${dir} through its trace index (${plural(result.segments, 'segment')}, ${result.records} records: ` +
        `${result.indexed} indexed, ${c.fetchedRecords} of them read; ${result.gapRecords} not indexed, read in full${damagedText(result.damaged)})`,
      fromHistoryStart: true,
    };
  } catch (err) {
    if (err instanceof Cancelled) return { ok: false, error: 'replay cancelled' };
    return { ok: false, error: `cannot read the local history ${dir}: ${(err as Error).message}` };
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function damagedText(damaged: number): string {
  return damaged > 0 ? `, ${plural(damaged, 'damaged segment')} read up to the damage` : '';
}
