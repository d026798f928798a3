/**
 * Replay source: the embedded transport's local history (transport.history). Its
 * segments overlapping [from − trace_max_duration, to + trace_max_duration] are read
 * in append order into one lane, each record with its event-time timestamp, as a
 * partition of the spans topic would be. Readable while `betrace run` writes it.
 */
import { readLocalHistory } from '../transport/local-history.ts';
import type { ReplayEngine } from './engine.ts';
import type { SourceProgress, SourceResult } from './source.ts';

export interface HistorySourceOptions {
  readonly dir: string;
  /** Margin read before `from` and after `to` (worker.trace_max_duration). */
  readonly marginMs: number;
  readonly onProgress?: (p: SourceProgress) => void;
  readonly signal?: AbortSignal;
}

class Cancelled extends Error {}

export async function readHistorySource(engine: ReplayEngine, options: HistorySourceOptions): Promise<SourceResult> {
  const lane = engine.lane();
  const lower = engine.fromMs - options.marginMs;
  const upper = engine.toMs + options.marginMs;
  let read = 0;
  try {
    const result = await readLocalHistory(options.dir, lower, upper, async (records) => {
      for (const r of records) {
        if (r.timestampMs >= lower && r.timestampMs < upper) lane.addRecord(r.payload, r.timestampMs);
      }
      read += records.length;
      if ((read & 1023) < records.length) {
        // Let timers (progress, cancellation) run between frames.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (options.signal?.aborted === true) throw new Cancelled();
        options.onProgress?.({});
      }
    });
    lane.end();
    const damaged = result.damaged > 0 ? `, ${result.damaged} damaged segment${result.damaged === 1 ? '' : 's'} read up to the damage` : '';
    return {
      ok: true,
      description: `the local history ${options.dir} (${result.segments} segment${result.segments === 1 ? '' : 's'}, ${result.records} records${damaged})`,
      fromHistoryStart: true,
    };
  } catch (err) {
    if (err instanceof Cancelled) return { ok: false, error: 'replay cancelled' };
    return { ok: false, error: `cannot read the local history ${options.dir}: ${(err as Error).message}` };
  }
}
