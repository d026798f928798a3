/** What the replay sources (kafka-source.ts, file-source.ts) report. Expected failures are values. */

export type SourceResult =
  | {
      readonly ok: true;
      /** What was read, for the report (e.g. `betrace.spans partitions 0-3, 12000 records`). */
      readonly description: string;
    }
  | { readonly ok: false; readonly error: string };

export interface SourceProgress {
  /** Share of the input read, 0..1 (undefined when unknown). */
  readonly fraction?: number;
}
