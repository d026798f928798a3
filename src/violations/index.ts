/**
 * Violations as records and spans, and where they are kept: the violation record, the
 * violation span, the file store (data_dir/violations.jsonl) and, in Kafka mode, the
 * worker's ledger on the violations topic and the API's index of it. Imported by the
 * worker, the API, replay and the composition root; it imports the rule language, the
 * OTLP codec and the transport's Kafka client, never the worker.
 */
export { ViolationStore, queryRecords, type ViolationPage, type ViolationQuery, type ViolationReader, type ViolationSink } from './violation-store.ts';
export { toViolationRecord, type ViolationRecord } from './violation-record.ts';
export { violationSpansPayload, VIOLATION_SPAN_NAME, BETRACE_VERSION } from './violation-span.ts';
