/**
 * Replay source: the embedded transport's local history (transport.history). Its
 * segments overlapping [from − trace_max_duration, to + trace_max_duration] are read
 * in append order into one lane, each record with its event-time timestamp, as a
 * partition of the spans topic would be. Readable while `betrace run` writes it.
 *
 * Through the segments' trace index (history-index.ts) when the rules let replay skip
 * traces (each has triggers and passes without them): the lane assembles the index's
 * summaries, and only the traces holding a trigger are read, by location. Parts of a
 * segment no index chunk covers are read as frames, so the answer is the full scan's.
 * `fullScan` (or a rule without triggers) reads every record.
 */
import { fetchHistoryPayloads, readLocalHistory, readLocalHistoryIndexed, type HistoryLocation } from '../transport/local-history.ts';
import type { TraceRecord } from '../transport/transport.ts';
import type { ReplayEngine, ReplayLane } from './engine.ts';
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
    const result = await readLocalHistoryIndexed(dir, lower, upper, {
      onEntries: async (seq, entries, names) => {
        const isTrigger = names.map((n) => triggers.has(n));
        for (const e of entries) {
          if (!(e.timestampMs >= lower && e.timestampMs < upper)) continue;
          addSummary(lane, e.names.some((k) => isTrigger[k] === true), e, { seq, position: e.position, length: e.length, crc: e.crc });
        }
        await engine.fetchPending(fetch);
        await breathe(entries.length);
      },
      onRecords: async (records) => {
        addRecords(records);
        await engine.fetchPending(fetch);
        await breathe(records.length);
      },
    });
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

function addSummary(
  lane: ReplayLane,
  triggered: boolean,
  e: { traceId: string; timestampMs: number; earliestStartMs: number; spanCount: number; untimedSpans: number },
  location: HistoryLocation,
): void {
  lane.addSummary({ traceId: e.traceId, timestampMs: e.timestampMs, earliestStartMs: e.earliestStartMs, spanCount: e.spanCount, untimedSpans: e.untimedSpans, triggered, location });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function damagedText(damaged: number): string {
  return damaged > 0 ? `, ${plural(damaged, 'damaged segment')} read up to the damage` : '';
}
