/** What the replay sources (kafka-source.ts, file-source.ts) report. Expected failures are values. */

export type SourceResult =
  | {
      readonly ok: true;
      /** What was read, for the report (e.g. `betrace.spans partitions 0-3, 12000 records`). */
      readonly description: string;
      /**
       * The read began where the source's history begins (files: always; Kafka: a
       * partition read from its first retained record, or nothing retained): then the
       * first record read is where history starts, and a range starting before it is
       * reported incomplete.
       */
      readonly fromHistoryStart: boolean;
      /**
       * Where the source's history starts, when the source finds it otherwise than by
       * reading it all (Jaeger: by search; Infinity when it holds nothing); else the
       * first record read is taken.
       */
      readonly historyStartMs?: number;
    }
  | { readonly ok: false; readonly error: string };

export interface SourceProgress {
  /** Share of the input read, 0..1 (undefined when unknown). */
  readonly fraction?: number;
}
