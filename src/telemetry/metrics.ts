/**
 * Every metric betrace exports, in one place: the Helm chart's alerts and the
 * dashboard refer to these names, and a test checks that they exist.
 * One registry per pipeline instance (tests run several in one process).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly receiverSpansReceived: Counter<'protocol'>;
  readonly receiverSpansAccepted: Counter<'protocol'>;
  readonly receiverSpansRejected: Counter<'protocol' | 'reason'>;
  readonly receiverRequests: Counter<'protocol' | 'code'>;
  readonly receiverInFlightBytes: Gauge;
  readonly receiverRequestDuration: Histogram<'protocol'>;
  readonly receiverReceivingBytes: Gauge;
  readonly receiverSpoolPendingBytes: Gauge;
  readonly receiverSpoolPendingRecords: Gauge;
  readonly receiverSpoolDiskBytes: Gauge;
  readonly receiverSpoolOldestAge: Gauge;
  readonly receiverSpoolRefused: Counter<'reason'>;
  readonly receiverSpoolSyncs: Counter;
  readonly receiverSpoolDelivered: Counter;
  readonly receiverSpoolUndeliverable: Counter;
  readonly receiverSpoolTornBytes: Counter;
  readonly connectionsRefused: Counter<'server'>;
  readonly requestsCut: Counter<'server' | 'reason'>;
  readonly transportQueuedBytes: Gauge<'partition'>;
  readonly transportKafkaReachable: Gauge;
  readonly transportRecordsProduced: Counter;
  readonly historyBytes: Gauge;
  readonly historyRecords: Gauge;
  readonly historyOldestTimestamp: Gauge;
  readonly historyDroppedRecords: Counter;
  readonly historyDeletedSegments: Counter<'reason'>;
  readonly historyIndexGaps: Counter;
  readonly indexRecordsWritten: Counter;
  readonly indexWritesFailed: Counter;
  readonly indexRecordsGivenUp: Counter;
  readonly transportProduceRefused: Counter<'reason'>;
  readonly transportUndecodableRecords: Counter;
  readonly exporterSpansSent: Counter<'exporter'>;
  readonly exporterSpansFailed: Counter<'exporter'>;
  readonly exporterSpansDropped: Counter<'exporter' | 'reason' | 'code'>;
  readonly exporterBatchSplits: Counter<'exporter'>;
  readonly exporterRetries: Counter<'exporter'>;
  readonly exporterQueueSpans: Gauge<'exporter'>;
  readonly workerTracesEvaluated: Counter<'outcome'>;
  readonly workerSpansConsumed: Counter;
  readonly workerLiveTraces: Gauge;
  readonly workerLiveSpans: Gauge;
  readonly workerPayloadBytes: Gauge;
  readonly workerForcedCuts: Counter<'reason'>;
  readonly workerLateSpans: Counter<'outcome'>;
  readonly workerDuplicateSpans: Counter;
  readonly workerAttributeLimits: Counter<'limit'>;
  readonly workerPaused: Gauge;
  readonly ruleEvaluationDuration: Histogram;
  readonly ruleEvaluationBudgetExceeded: Counter<'rule_id'>;
  readonly ruleEvaluationStalls: Counter<'rule_id'>;
  readonly rulesQuarantined: Gauge;
  readonly ruleQuarantines: Counter<'rule_id'>;
  readonly violations: Counter<'rule_id' | 'severity'>;
  readonly violationReemissions: Counter<'rule_id'>;
  readonly violationsAlreadyDelivered: Counter;
  readonly violationWritesFailed: Counter<'kind'>;
  readonly violationsEmitted: Counter;
  readonly violationStoreWritten: Counter;
  readonly violationStoreRemoved: Counter;
  readonly violationStoreWriteErrors: Counter<'code'>;
  readonly violationStorePending: Gauge;
  readonly violationStoreDegraded: Gauge;
  readonly violationStoreLost: Counter<'reason'>;
  readonly violationStoreDamagedLines: Counter<'reason'>;
  readonly rulesLoaded: Gauge<'source'>;
  readonly rulesReloadErrors: Counter;
  readonly rulesReloadFailing: Gauge;
  readonly ruleFilesRemoved: Counter;
  readonly notificationsSent: Counter<'channel'>;
  readonly notificationsFailed: Counter<'channel' | 'reason'>;
  readonly notificationsRetried: Counter<'channel'>;
  readonly notificationsQueued: Gauge<'channel'>;
  readonly notificationsOldestPendingAge: Gauge<'channel'>;
  readonly notificationsSuppressed: Counter<'reason'>;
  readonly notificationsDamagedLines: Counter;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  // The event-loop delay histogram samples on a timer of its own: every 10 ms by default, which
  // alone woke an idle process 100 times a second. Every 100 ms still sees each stall.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  return {
    registry,
    receiverSpansReceived: new Counter({
      name: 'betrace_receiver_spans_received_total',
      help: 'Spans received by the OTLP receiver, valid or not.',
      labelNames: ['protocol'],
      registers,
    }),
    receiverSpansAccepted: new Counter({
      name: 'betrace_receiver_spans_accepted_total',
      help: 'Spans handed to the transport and acknowledged to the client.',
      labelNames: ['protocol'],
      registers,
    }),
    receiverSpansRejected: new Counter({
      name: 'betrace_receiver_spans_rejected_total',
      help: 'Spans not accepted, by reason (invalid_id, malformed, too_large, unavailable).',
      labelNames: ['protocol', 'reason'],
      registers,
    }),
    receiverRequests: new Counter({
      name: 'betrace_receiver_requests_total',
      help: 'OTLP export requests by protocol and outcome code (gRPC status name or HTTP status; 499: the client closed the connection mid-request).',
      labelNames: ['protocol', 'code'],
      registers,
    }),
    receiverInFlightBytes: new Gauge({
      name: 'betrace_receiver_in_flight_bytes',
      help: 'Bytes of requests being handed to the transport.',
      registers,
    }),
    receiverRequestDuration: new Histogram({
      name: 'betrace_receiver_request_duration_seconds',
      help: 'Time from receiving an export request to answering it.',
      labelNames: ['protocol'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    receiverReceivingBytes: new Gauge({
      name: 'betrace_receiver_receiving_bytes',
      help: 'Bytes of requests still being received, counted against receiver.max_receiving_bytes.',
      registers,
    }),
    receiverSpoolPendingBytes: new Gauge({
      name: 'betrace_receiver_spool_pending_bytes',
      help: 'receiver.spool: bytes of frames acknowledged to clients and not yet taken by Kafka.',
      registers,
    }),
    receiverSpoolPendingRecords: new Gauge({
      name: 'betrace_receiver_spool_pending_records',
      help: 'receiver.spool: records (one per request and trace) acknowledged to clients and not yet taken by Kafka.',
      registers,
    }),
    receiverSpoolDiskBytes: new Gauge({
      name: 'betrace_receiver_spool_disk_bytes',
      help: 'receiver.spool: bytes of the spool files, counted against receiver.spool.max_bytes.',
      registers,
    }),
    receiverSpoolOldestAge: new Gauge({
      name: 'betrace_receiver_spool_oldest_age_seconds',
      help: 'receiver.spool: age of the oldest frame not yet taken by Kafka (0 when none waits).',
      registers,
    }),
    receiverSpoolRefused: new Counter({
      name: 'betrace_receiver_spool_refused_total',
      help: 'receiver.spool: requests refused with UNAVAILABLE, by reason (full: max_bytes reached, write_failed: a write or fdatasync failed, shutting_down).',
      labelNames: ['reason'],
      registers,
    }),
    receiverSpoolSyncs: new Counter({
      name: 'betrace_receiver_spool_syncs_total',
      help: 'receiver.spool: group commits (one write and one fdatasync for every request waiting).',
      registers,
    }),
    receiverSpoolDelivered: new Counter({
      name: 'betrace_receiver_spool_delivered_records_total',
      help: 'receiver.spool: spooled records taken by Kafka (records delivered again after a crash count again).',
      registers,
    }),
    receiverSpoolUndeliverable: new Counter({
      name: 'betrace_receiver_spool_undeliverable_records_total',
      help: 'receiver.spool: spooled records Kafka refused as never deliverable (e.g. too large), skipped and logged.',
      registers,
    }),
    receiverSpoolTornBytes: new Counter({
      name: 'betrace_receiver_spool_torn_bytes_total',
      help: 'receiver.spool: bytes cut off at start (a torn tail: a write interrupted by a crash, never acknowledged) or skipped as damaged (a frame failing its CRC-32C).',
      registers,
    }),
    connectionsRefused: new Counter({
      name: 'betrace_connections_refused_total',
      help: 'Connections closed on arrival because the server (grpc, http, api) had its max_connections open.',
      labelNames: ['server'],
      registers,
    }),
    requestsCut: new Counter({
      name: 'betrace_requests_cut_total',
      help: 'Requests given up before their end, by server (grpc, http, api) and reason (read_timeout, receive_budget, refused: a gRPC client sending on after its call was refused, client_aborted).',
      labelNames: ['server', 'reason'],
      registers,
    }),
    transportKafkaReachable: new Gauge({
      name: 'betrace_transport_kafka_reachable',
      help: 'Kafka mode: 1 while the cluster answers this process (a metadata request of the spans topic every 2 s, every spans partition with a leader), 0 while not (/ready then answers 503 with the reason).',
      registers,
    }),
    transportQueuedBytes: new Gauge({
      name: 'betrace_transport_queued_bytes',
      help: 'Embedded transport: bytes of records waiting for a consumer, per partition.',
      labelNames: ['partition'],
      registers,
    }),
    transportRecordsProduced: new Counter({
      name: 'betrace_transport_records_produced_total',
      help: 'Records (one per request and trace) written to the transport.',
      registers,
    }),
    historyBytes: new Gauge({
      name: 'betrace_history_bytes',
      help: 'transport.history: bytes of the local history files (embedded transport), counted against transport.history.max_bytes.',
      registers,
    }),
    historyRecords: new Gauge({
      name: 'betrace_history_records',
      help: 'transport.history: records (one per request and trace) the local history holds.',
      registers,
    }),
    historyOldestTimestamp: new Gauge({
      name: 'betrace_history_oldest_timestamp_seconds',
      help: 'transport.history: event time (unix seconds) of the oldest record kept: replay reaches back to it (0 when empty).',
      registers,
    }),
    historyDroppedRecords: new Counter({
      name: 'betrace_history_dropped_records_total',
      help: 'transport.history: records not kept because writing them failed (a full disk; logged). Live evaluation is not affected.',
      registers,
    }),
    historyDeletedSegments: new Counter({
      name: 'betrace_history_deleted_segments_total',
      help: 'transport.history: segments deleted by retention, by reason (max_age, max_bytes, empty).',
      labelNames: ['reason'],
      registers,
    }),
    historyIndexGaps: new Counter({
      name: 'betrace_history_index_gaps_total',
      help: 'transport.history: index chunks that could not be written (logged): replay reads those records in full (slower, same answer).',
      registers,
    }),
    indexRecordsWritten: new Counter({
      name: 'betrace_index_records_written_total',
      help: 'Kafka mode: trace index records written to transport.kafka.index_topic (one per trace evaluated).',
      registers,
    }),
    indexWritesFailed: new Counter({
      name: 'betrace_index_writes_failed_total',
      help: 'Kafka mode: failed writes to the index topic (retried; the traces\' records are acknowledged only once written).',
      registers,
    }),
    indexRecordsGivenUp: new Counter({
      name: 'betrace_index_records_given_up_total',
      help: 'Kafka mode: index records larger than the index topic accepts (logged), not written: replay reads those traces\' records in full (slower, same answer).',
      registers,
    }),
    transportProduceRefused: new Counter({
      name: 'betrace_transport_produce_refused_total',
      help: 'Produce calls refused (queue full, transport unavailable).',
      labelNames: ['reason'],
      registers,
    }),
    transportUndecodableRecords: new Counter({
      name: 'betrace_transport_undecodable_records_total',
      help: 'Kafka records whose value is not an OTLP ExportTraceServiceRequest (skipped).',
      registers,
    }),
    exporterSpansSent: new Counter({
      name: 'betrace_exporter_spans_sent_total',
      help: 'Spans acknowledged by the downstream OTLP endpoint, by exporter (forwarder, violations).',
      labelNames: ['exporter'],
      registers,
    }),
    exporterSpansFailed: new Counter({
      name: 'betrace_exporter_spans_failed_total',
      help: 'Spans in export calls that failed (each failure of a retried batch counts).',
      labelNames: ['exporter'],
      registers,
    }),
    exporterSpansDropped: new Counter({
      name: 'betrace_exporter_spans_dropped_total',
      help:
        'Spans given up on, by reason (queue_full, retries_exhausted, rejected: refused by downstream as not retryable, shutdown: still queued or retrying when shutdown_timeout passed, embedded transport) and the gRPC status name downstream answered (code).',
      labelNames: ['exporter', 'reason', 'code'],
      registers,
    }),
    exporterBatchSplits: new Counter({
      name: 'betrace_exporter_batch_splits_total',
      help: 'Export requests split in two after downstream refused them as not retryable, to send their entries apart.',
      labelNames: ['exporter'],
      registers,
    }),
    exporterRetries: new Counter({
      name: 'betrace_exporter_retries_total',
      help: 'Export calls retried after a retryable error.',
      labelNames: ['exporter'],
      registers,
    }),
    exporterQueueSpans: new Gauge({
      name: 'betrace_exporter_queue_spans',
      help: 'Spans waiting for export.',
      labelNames: ['exporter'],
      registers,
    }),
    workerTracesEvaluated: new Counter({
      name: 'betrace_worker_traces_evaluated_total',
      help: 'Traces evaluated, by outcome (complete, partial, late).',
      labelNames: ['outcome'],
      registers,
    }),
    workerSpansConsumed: new Counter({
      name: 'betrace_worker_spans_consumed_total',
      help: 'Spans read from the transport by workers.',
      registers,
    }),
    workerLiveTraces: new Gauge({ name: 'betrace_worker_live_traces', help: 'Traces being assembled.', registers }),
    workerLiveSpans: new Gauge({ name: 'betrace_worker_live_spans', help: 'Spans held in traces being assembled.', registers }),
    workerPayloadBytes: new Gauge({
      name: 'betrace_worker_payload_bytes',
      help: 'Shared memory holding the payloads of traces assembled or in their grace period (slabs in use and kept for use again).',
      registers,
    }),
    workerForcedCuts: new Counter({
      name: 'betrace_worker_forced_cuts_total',
      help: 'Traces evaluated before they were idle, by reason (max_duration, max_spans, max_bytes, shutdown).',
      labelNames: ['reason'],
      registers,
    }),
    workerLateSpans: new Counter({
      name: 'betrace_worker_late_spans_total',
      help: 'Spans that arrived after their trace was evaluated: reevaluated (within the grace) or ignored (after it).',
      labelNames: ['outcome'],
      registers,
    }),
    workerDuplicateSpans: new Counter({
      name: 'betrace_worker_duplicate_spans_total',
      help: 'Spans dropped because a span with the same id was already in the trace.',
      registers,
    }),
    workerAttributeLimits: new Counter({
      name: 'betrace_worker_attribute_limits_total',
      help: 'Attributes dropped (attributes_per_span) or string values truncated (attribute_value_length) in the copy rules evaluate.',
      labelNames: ['limit'],
      registers,
    }),
    workerPaused: new Gauge({
      name: 'betrace_worker_paused',
      help: '1 while the worker has paused the transport at max_live_traces.',
      registers,
    }),
    ruleEvaluationDuration: new Histogram({
      name: 'betrace_rule_evaluation_duration_seconds',
      help: 'Time to evaluate every rule on one trace.',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    ruleEvaluationBudgetExceeded: new Counter({
      name: 'betrace_rule_evaluation_budget_exceeded_total',
      help: 'Rules abandoned on a trace at its evaluation budget (the rule running when it ran out, and the rules after it), whether or not one of them is blamed for it.',
      labelNames: ['rule_id'],
      registers,
    }),
    ruleEvaluationStalls: new Counter({
      name: 'betrace_rule_evaluation_stalls_total',
      help: 'Evaluation threads stopped by the watchdog, still busy on one trace past budget + margin, by the rule they were in ("" when in none).',
      labelNames: ['rule_id'],
      registers,
    }),
    rulesQuarantined: new Gauge({
      name: 'betrace_rules_quarantined',
      help: 'Rules quarantined (over budget repeatedly: not evaluated until changed or re-enabled).',
      registers,
    }),
    ruleQuarantines: new Counter({
      name: 'betrace_rule_quarantines_total',
      help: 'Quarantines decided by this process, by rule.',
      labelNames: ['rule_id'],
      registers,
    }),
    violations: new Counter({
      name: 'betrace_violations_total',
      help: 'Distinct violations found, by rule and severity: a violation found again (a trace evaluated again by a partition\'s next owner) is not counted again.',
      labelNames: ['rule_id', 'severity'],
      registers,
    }),
    violationReemissions: new Counter({
      name: 'betrace_violation_reemissions_total',
      help: 'Kafka mode: violation spans sent downstream again, identical, because they were in flight (written, not yet acknowledged downstream) when their worker stopped or died.',
      labelNames: ['rule_id'],
      registers,
    }),
    violationsAlreadyDelivered: new Counter({
      name: 'betrace_violations_already_delivered_total',
      help: 'Kafka mode: violations found again on a trace evaluated again whose spans were already delivered downstream (not sent again).',
      registers,
    }),
    violationWritesFailed: new Counter({
      name: 'betrace_violation_writes_failed_total',
      help: 'Kafka mode: failed writes to the violations topic (retried until they succeed), by kind: violation records, delivered markers.',
      labelNames: ['kind'],
      registers,
    }),
    violationsEmitted: new Counter({
      name: 'betrace_violation_spans_emitted_total',
      help: 'Violation spans handed to the downstream exporter.',
      registers,
    }),
    violationStoreWritten: new Counter({
      name: 'betrace_violation_store_written_total',
      help: 'Embedded mode: violation records written to data_dir/violations.jsonl (served by the API from then on).',
      registers,
    }),
    violationStoreRemoved: new Counter({
      name: 'betrace_violation_store_removed_total',
      help: 'Embedded mode: lines removed from data_dir/violations.jsonl by its retention (violations.max_age, violations.max_bytes).',
      registers,
    }),
    violationStoreWriteErrors: new Counter({
      name: 'betrace_violation_store_write_errors_total',
      help: 'Failed writes to the violation store, by error code (ENOSPC, EIO, ...); each retry that fails counts.',
      labelNames: ['code'],
      registers,
    }),
    violationStorePending: new Gauge({
      name: 'betrace_violation_store_pending',
      help: 'Violation records waiting to be written to the violation store (not yet served by the API).',
      registers,
    }),
    violationStoreDegraded: new Gauge({
      name: 'betrace_violation_store_degraded',
      help: '1 while writes to the violation store fail (violations wait in memory; /ready answers 200 with status degraded).',
      registers,
    }),
    violationStoreLost: new Counter({
      name: 'betrace_violation_store_lost_total',
      help: 'Violation records never written to the store, by reason (queue_full, shutdown, closed).',
      labelNames: ['reason'],
      registers,
    }),
    violationStoreDamagedLines: new Counter({
      name: 'betrace_violation_store_damaged_lines_total',
      help: 'Lines of violations.jsonl found damaged at start, by reason (torn: cut off; not_json, not_a_record: skipped).',
      labelNames: ['reason'],
      registers,
    }),
    rulesLoaded: new Gauge({
      name: 'betrace_rules_loaded',
      help: 'Rules in force, by source (file, api).',
      labelNames: ['source'],
      registers,
    }),
    rulesReloadErrors: new Counter({
      name: 'betrace_rules_reload_errors_total',
      help: 'Rule reloads that failed (the previous rules stay in force).',
      registers,
    }),
    rulesReloadFailing: new Gauge({
      name: 'betrace_rules_reload_failing',
      help: '1 while some rule file does not compile (its previous version stays in force).',
      registers,
    }),
    ruleFilesRemoved: new Counter({
      name: 'betrace_rule_files_removed_total',
      help: 'Rule files that disappeared from rules.paths (their rules were taken out of force).',
      registers,
    }),
    notificationsSent: new Counter({
      name: 'betrace_notifications_sent_total',
      help: 'Notification messages accepted by their channel, by channel (alertmanager, pagerduty, slack, email, webhook); a grouped message counts once.',
      labelNames: ['channel'],
      registers,
    }),
    notificationsFailed: new Counter({
      name: 'betrace_notifications_failed_total',
      help: 'Notification messages given up on (dead-lettered, logged), by channel and reason (permanent: refused as not retryable, retry_time: notifications.max_retry_time spent, not_configured: the route names a destination the configuration lacks).',
      labelNames: ['channel', 'reason'],
      registers,
    }),
    notificationsRetried: new Counter({
      name: 'betrace_notifications_retried_total',
      help: 'Notification sends retried after a retryable failure (connection error, timeout, 408, 429, 5xx, SMTP 4xx), by channel.',
      labelNames: ['channel'],
      registers,
    }),
    notificationsQueued: new Gauge({
      name: 'betrace_notifications_queued',
      help: 'Violations in the notification outbox not yet sent, by channel (one per violation and destination).',
      labelNames: ['channel'],
      registers,
    }),
    notificationsOldestPendingAge: new Gauge({
      name: 'betrace_notifications_oldest_pending_seconds',
      help: 'Age of the oldest violation in the outbox not yet sent, by channel (0 when none waits).',
      labelNames: ['channel'],
      registers,
    }),
    notificationsSuppressed: new Counter({
      name: 'betrace_notifications_suppressed_total',
      help: 'Violations not notified because their rule stopped being in force before they were sent, by reason (rule_disabled, rule_quarantined, rule_removed).',
      labelNames: ['reason'],
      registers,
    }),
    notificationsDamagedLines: new Counter({
      name: 'betrace_notifications_outbox_damaged_lines_total',
      help: 'Lines of the notification outbox skipped at start as not JSON or not an outbox entry (a torn last line after a crash).',
      registers,
    }),
  };
}
