/** The validated, normalized configuration every component is built from. Frozen after load. */
import type { Destination, Severity } from '../rules/index.ts';

export interface ListenConfig {
  readonly enabled: boolean;
  readonly host: string;
  readonly port: number;
}

/** TLS files ('' when off); files are re-read when they change. */
export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile: string;
}

export interface DownstreamConfig {
  /** '' when no downstream is configured. */
  readonly endpoint: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly compression: 'none' | 'gzip';
  readonly maxQueueSpans: number;
  readonly maxBatchSpans: number;
  readonly batchTimeoutMs: number;
  readonly maxRetryTimeMs: number;
}

export interface KafkaConfig {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly spansTopic: string;
  readonly rulesTopic: string;
  readonly violationsTopic: string;
  /** The trace index (kafka-index.ts). */
  readonly indexTopic: string;
  readonly workerGroup: string;
  readonly forwarderGroup: string;
  readonly createTopics: boolean;
  readonly replicationFactor: number;
  /** 0: unlimited. */
  readonly retentionMs: number;
  readonly maxRecordBytes: number;
  readonly lingerMs: number;
  readonly requestTimeoutMs: number;
  /** How long an export waits for Kafka's acknowledgement (transport.kafka.ack_timeout). */
  readonly ackTimeoutMs: number;
  readonly groupProtocol: 'consumer' | 'classic';
  /** Classic protocol only. */
  readonly sessionTimeoutMs: number;
  readonly tls: { readonly enabled: boolean; readonly ca: string; readonly cert: string; readonly key: string };
  readonly sasl: { readonly mechanism: 'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512'; readonly username: string; readonly password: string };
}

/** transport.history: the embedded transport's local history. */
export interface HistoryConfig {
  /** False with transport.kind kafka, whatever the file says. */
  readonly enabled: boolean;
  /** Absolute. */
  readonly dir: string;
  /** 0: no age limit. */
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  readonly segmentBytes: number;
}

/** receiver.spool: the disk spool in front of Kafka. */
export interface SpoolConfig {
  readonly enabled: boolean;
  /** Absolute. */
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly shutdownTimeoutMs: number;
  readonly degradedAfterMs: number;
}

/** notifications: routes' defaults, grouping, and the channels with their secrets read. */
export interface NotificationsConfig {
  /** '' when no link; `{trace_id}` is replaced. */
  readonly traceUrl: string;
  /** By rule severity: the destinations of rules without an alerts entry. */
  readonly defaults: Readonly<Record<Severity, readonly Destination[]>>;
  readonly groupWindowMs: number;
  readonly maxMessages: number;
  readonly rateWindowMs: number;
  readonly maxTracesPerMessage: number;
  readonly maxRetryTimeMs: number;
  /** '' when off. */
  readonly alertmanager: { readonly url: string; readonly resolveTimeoutMs: number };
  /** Slack channel name → incoming webhook URL. */
  readonly slack: Readonly<Record<string, string>>;
  readonly pagerduty: { readonly url: string; readonly routingKeys: Readonly<Record<string, string>> };
  readonly webhooks: Readonly<Record<string, { readonly url: string; readonly secret: string }>>;
  /** host '' when off. */
  readonly email: { readonly host: string; readonly port: number; readonly secure: boolean; readonly username: string; readonly password: string; readonly from: string };
}

export interface Config {
  /** Directory of the config file; relative paths in it are resolved against this. */
  readonly baseDir: string;
  readonly receiver: {
    readonly grpc: ListenConfig & { readonly flowControlWindowBytes: number; readonly maxConcurrentStreams: number };
    readonly http: ListenConfig;
    readonly maxRequestBytes: number;
    readonly maxInFlightBytes: number;
    readonly maxReceivingBytes: number;
    readonly maxConnections: number;
    readonly readTimeoutMs: number;
    readonly retryAfterMs: number;
    readonly maxSpansPerRequest: number;
    readonly authToken: string;
    readonly tls: TlsConfig | undefined;
    readonly spool: SpoolConfig;
  };
  readonly transport: {
    readonly kind: 'embedded' | 'kafka';
    readonly partitions: number;
    readonly partitioner: 'sarama' | 'murmur2';
    readonly maxQueuedBytes: number;
    readonly history: HistoryConfig;
    readonly kafka: KafkaConfig;
  };
  readonly downstream: DownstreamConfig;
  readonly forwarder: { readonly enabled: boolean };
  readonly worker: {
    readonly traceIdleTimeoutMs: number;
    readonly traceMaxDurationMs: number;
    readonly rootIdleTimeoutMs: number;
    readonly maxLiveTraces: number;
    readonly maxSpansPerTrace: number;
    readonly lateSpanGraceMs: number;
    readonly evaluationThreads: number;
    readonly evaluationBudgetMs: number;
    readonly evaluationStallMarginMs: number;
    readonly quarantineAfter: number;
    readonly quarantineWindowMs: number;
    readonly maxTraceBytes: number;
    readonly maxAttributesPerSpan: number;
    readonly maxAttributeValueLength: number;
  };
  readonly rules: { readonly paths: readonly string[] };
  readonly api: ListenConfig & {
    readonly token: string;
    /** Start without a token on a non-loopback bind (refused otherwise). */
    readonly allowUnauthenticated: boolean;
    /** Absolute; '' when file replays through the API are off. */
    readonly replayDir: string;
    /** host:port of the Jaegers API replays may read; empty: none. */
    readonly replayJaeger: readonly string[];
    readonly tls: TlsConfig | undefined;
    readonly maxConnections: number;
    readonly readTimeoutMs: number;
    /** Serve the web console at /ui (with the api role). */
    readonly console: boolean;
  };
  /** Retention of data_dir/violations.jsonl (embedded mode). */
  readonly violations: { readonly maxAgeMs: number; readonly maxBytes: number };
  readonly notifications: NotificationsConfig;
  readonly dataDir: string;
  /** shutdown_timeout: from SIGTERM to stopping regardless. */
  readonly shutdownTimeoutMs: number;
  readonly log: { readonly level: string };
}
