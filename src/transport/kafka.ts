/**
 * The Kafka transport (kafkajs). Records are exactly docs/contract.md "Kafka records": one per
 * (export request, trace), key = trace id hex, value = OTLP protobuf of that
 * trace's spans, timestamp = earliest span start (event time; one in the
 * future, a sender's clock ahead, is clamped to the time the request was
 * received, which the broker's message.timestamp.after.max.ms accepts: the
 * spans themselves are not changed), partitioned
 * with the Collector-compatible `sarama` function (or `murmur2`).
 *
 * Producer: records of concurrent requests are batched for `linger`, sent with
 * acks=all; send() resolves only when Kafka acknowledged, and a failure is a
 * retryable value (the receiver answers UNAVAILABLE).
 *
 * Consumer: a consumer group with autoCommit off. Handled ≠ committed: the
 * owner of the records (worker, forwarder) commits a low watermark. kafkajs
 * refetches every partition from the committed offset after each rebalance and
 * has no revoke hook, so this consumer remembers the highest offset it handed
 * over per partition and skips records it already delivered while it keeps the
 * partition; partitions it loses are reported through onAssigned.
 */
import type { Admin, Consumer, KafkaConfig as KafkaJsConfig, Producer, SASLOptions } from 'kafkajs';
import { Kafka, logLevel } from './kafkajs.ts';
import type { KafkaConfig } from '../config/index.ts';
import { recordTraces } from '../otlp/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { framedSocketFactory } from './kafka-socket.ts';
import { partitionerFor, type PartitionerName } from './partitioner.ts';
import type {
  ConsumedRecord,
  ConsumerCallbacks,
  ProduceResult,
  TraceRecord,
  Transport,
  TransportConsumer,
  TransportProducer,
} from './transport.ts';

export interface KafkaTransportOptions {
  readonly config: KafkaConfig;
  /** Partitions of the spans topic when betrace creates it. */
  readonly partitions: number;
  readonly partitioner: PartitionerName;
  readonly retryAfterMs: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

export class KafkaTransportError extends Error {
  override name = 'KafkaTransportError';
}

function kafkaLogger(logger: Logger) {
  const error: number = logLevel.ERROR;
  const warn: number = logLevel.WARN;
  return () =>
    ({ level, log }: { level: number; log: { message: string; [k: string]: unknown } }) => {
      const { message, ...rest } = log;
      if (level <= error) logger.error({ kafka: rest }, `kafka: ${message}`);
      else if (level === warn) logger.warn({ kafka: rest }, `kafka: ${message}`);
    };
}

/**
 * A kafkajs client for `config`. `reuseFetchFrames`: only for consumers that copy
 * every payload they keep before their batch handler returns (kafka-socket.ts).
 */
export function createKafkaClient(config: KafkaConfig, logger: Logger, clientSuffix = '', reuseFetchFrames = false): Kafka {
  const options: KafkaJsConfig = {
    clientId: `${config.clientId}${clientSuffix}`,
    brokers: [...config.brokers],
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: Math.min(config.requestTimeoutMs, 10_000),
    retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
    logLevel: logLevel.WARN,
    logCreator: kafkaLogger(logger),
  };
  if (config.tls.enabled) {
    options.ssl = {
      rejectUnauthorized: true,
      ...(config.tls.ca ? { ca: [config.tls.ca] } : {}),
      ...(config.tls.cert ? { cert: config.tls.cert } : {}),
      ...(config.tls.key ? { key: config.tls.key } : {}),
    };
  }
  if (config.sasl.mechanism !== 'none') {
    options.sasl = { mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password } as SASLOptions;
  } else {
    // Responses handed over whole, large ones in shared memory (kafka-socket.ts).
    options.socketFactory = framedSocketFactory({ reuseFetchFrames });
  }
  return new Kafka(options);
}

/** Node's codes for a TLS peer certificate that fails verification (untrusted, expired, for another host). */
const CERTIFICATE_ERROR_CODES = /^(UNABLE_TO_(GET_ISSUER_CERT|GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE)|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_(HAS_EXPIRED|NOT_YET_VALID|SIGNATURE_FAILURE|REVOKED|UNTRUSTED|REJECTED)|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** Whether a kafkajs error is worth trying again (a leader not elected yet, a broker restarting). */
export function isRetriableKafkaError(err: unknown): boolean {
  const e = err as { retriable?: unknown; name?: unknown; cause?: unknown; code?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  // kafkajs calls every connection error retriable; a broker certificate that is not trusted is not mended by trying again.
  if (typeof e.code === 'string' && CERTIFICATE_ERROR_CODES.test(e.code)) return false;
  if (e.retriable === true) return true;
  // kafkajs's own retrier gives up with this wrapper around the last (retriable) error.
  return e.name === 'KafkaJSNumberOfRetriesExceeded' && isRetriableKafkaError(e.cause);
}

/**
 * Runs `call` with a connected admin client of its own, again with a fresh one
 * (fresh metadata) while it fails with a retriable error, for up to `deadlineMs`.
 * kafkajs's admin bails on most retriable errors itself: fetchTopicOffsets, for
 * one, retries only UNKNOWN_TOPIC_OR_PARTITION, and answers NOT_LEADER_FOR_PARTITION
 * from a topic created a moment ago. Other errors, and the last one, are thrown.
 */
export async function withAdmin<T>(kafka: Kafka, call: (admin: Admin) => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 0; ; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      return await call(admin);
    } catch (err) {
      const waitMs = Math.min(100 * 2 ** attempt, 2000);
      if (!isRetriableKafkaError(err) || Date.now() + waitMs > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/** Creates missing topics, or fails with a clear error; checks max_record_bytes against the topic. */
export async function ensureTopics(
  admin: Admin,
  config: KafkaConfig,
  partitions: number,
  logger: Logger,
): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const wanted = [
    {
      topic: config.spansTopic,
      numPartitions: partitions,
      configEntries: [{ name: 'retention.ms', value: config.retentionMs === 0 ? '-1' : String(config.retentionMs) }],
    },
    { topic: config.rulesTopic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    { topic: config.violationsTopic, numPartitions: partitions, configEntries: [] },
  ].filter((t) => !existing.has(t.topic));
  if (wanted.length > 0) {
    if (!config.createTopics) {
      throw new KafkaTransportError(
        `Kafka topics missing: ${wanted.map((t) => t.topic).join(', ')} (transport.kafka.create_topics is false: create them, or let betrace create them)`,
      );
    }
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: wanted.map((t) => ({ ...t, replicationFactor: config.replicationFactor })),
      });
      logger.info({ topics: wanted.map((t) => t.topic) }, 'Kafka topics created');
    } catch (err) {
      const message = (err as Error).message;
      if (!/already exists/i.test(message)) {
        throw new KafkaTransportError(
          `cannot create Kafka topics ${wanted.map((t) => t.topic).join(', ')}: ${message} (create them by hand, or grant CREATE on the cluster)`,
        );
      }
    }
  }
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 /* TOPIC */, name: config.spansTopic, configNames: ['max.message.bytes'] }],
  });
  const entry = described.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes');
  const topicMax = entry === undefined ? undefined : Number(entry.configValue);
  if (topicMax !== undefined && Number.isFinite(topicMax) && config.maxRecordBytes > topicMax) {
    throw new KafkaTransportError(
      `transport.kafka.max_record_bytes (${config.maxRecordBytes}) is larger than the ${config.spansTopic} topic's max.message.bytes (${topicMax}): lower it, or raise the topic's limit`,
    );
  }
}

interface Pending {
  readonly records: readonly TraceRecord[];
  /** When send() was called: the latest record timestamp produced (clock skew of senders). */
  readonly receivedAtMs: number;
  readonly resolve: (r: ProduceResult) => void;
}

class KafkaProducer implements TransportProducer {
  readonly #o: KafkaTransportOptions;
  readonly #producer: Producer;
  #connected = false;
  #queue: Pending[] = [];
  #queueBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #partition: (key: string, partitions: number) => number;
  readonly #kafka: Kafka;
  #topicPartitions: number;

  constructor(kafka: Kafka, options: KafkaTransportOptions) {
    this.#o = options;
    this.#kafka = kafka;
    this.#topicPartitions = options.partitions;
    const partition = partitionerFor(options.partitioner);
    this.#partition = partition;
    this.#producer = kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: () => ({ partitionMetadata, message }) => partition(String(message.key), partitionMetadata.length),
      retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    this.#producer.on(this.#producer.events.DISCONNECT, () => (this.#connected = false));
    this.#producer.on(this.#producer.events.CONNECT, () => (this.#connected = true));
  }

  get connected(): boolean {
    return this.#connected;
  }

  async start(): Promise<void> {
    await this.#producer.connect();
    this.#connected = true;
    // The topic's own partition count (it may predate transport.partitions): produce calls are sized per partition.
    try {
      const metadata = await withAdmin(this.#kafka, (admin) => admin.fetchTopicMetadata({ topics: [this.#o.config.spansTopic] }));
      const n = metadata.topics[0]?.partitions.length ?? 0;
      if (n > 0) this.#topicPartitions = n;
    } catch (err) {
      this.#o.logger.warn({ topic: this.#o.config.spansTopic, error: (err as Error).message }, 'cannot read the spans topic partition count: using transport.partitions');
    }
  }

  send(records: readonly TraceRecord[]): Promise<ProduceResult> {
    return new Promise((resolve) => {
      this.#queue.push({ records, receivedAtMs: Date.now(), resolve });
      for (const r of records) this.#queueBytes += r.payload.length;
      if (this.#queueBytes >= this.#o.config.maxRecordBytes * this.#topicPartitions) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.#o.config.lingerMs);
    });
  }

  #flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    this.#queueBytes = 0;
    const messages = batch.flatMap((p) =>
      p.records.map((r) => ({
        key: r.traceId,
        value: Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength),
        timestamp: String(Math.min(r.timestampMs, p.receivedAtMs)),
      })),
    );
    const error = (message: string): ProduceResult => ({
      status: 'retryable',
      retryInMillis: this.#o.retryAfterMs,
      error: `Kafka produce failed: ${message}`,
    });
    let timer: NodeJS.Timeout | undefined;
    // kafkajs retries and reconnects on its own; past request_timeout the client is
    // told UNAVAILABLE (should Kafka take the records after all, the client's retry
    // repeats them: spans are de-duplicated by span id downstream of here).
    const deadline = new Promise<ProduceResult>((resolve) => {
      timer = setTimeout(() => resolve(error(`no acknowledgement within ${this.#o.config.requestTimeoutMs} ms`)), this.#o.config.requestTimeoutMs);
    });
    // One produce call carries one record batch per partition, and the broker caps a batch at
    // max.message.bytes: each call holds at most max_record_bytes for any one partition.
    const chunks: (typeof messages)[] = [];
    let chunk: typeof messages = [];
    const chunkBytes = new Map<number, number>();
    for (const m of messages) {
      const p = this.#partition(m.key, this.#topicPartitions);
      const bytes = chunkBytes.get(p) ?? 0;
      if (bytes > 0 && bytes + m.value.length > this.#o.config.maxRecordBytes) {
        chunks.push(chunk);
        chunk = [];
        chunkBytes.clear();
      }
      chunk.push(m);
      chunkBytes.set(p, (chunkBytes.get(p) ?? 0) + m.value.length + 64);
    }
    if (chunk.length > 0) chunks.push(chunk);
    const produced = Promise.all(
      chunks.map((c) => this.#producer.send({ topic: this.#o.config.spansTopic, acks: -1, timeout: this.#o.config.requestTimeoutMs, messages: c })),
    ).then(
      (): ProduceResult => {
        this.#o.metrics.transportRecordsProduced.inc(messages.length);
        return { status: 'success' };
      },
      (err: unknown): ProduceResult => error((err as Error).message),
    );
    const sent = Promise.race([produced, deadline]).then((result) => {
      clearTimeout(timer);
      if (result.status !== 'success') this.#o.metrics.transportProduceRefused.inc({ reason: 'kafka_unavailable' });
      for (const p of batch) p.resolve(result);
    });
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }

  async shutdown(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#inFlight]);
    await this.#producer.disconnect();
  }
}

class KafkaConsumer implements TransportConsumer {
  readonly #o: KafkaTransportOptions;
  readonly #consumer: Consumer;
  readonly #callbacks: ConsumerCallbacks;
  readonly #group: string;
  /** Next offset not yet handed over, per owned partition. */
  readonly #delivered = new Map<number, bigint>();
  readonly #toCommit = new Map<number, bigint>();
  readonly #committed = new Map<number, bigint>();
  #commitTimer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(kafka: Kafka, group: string, callbacks: ConsumerCallbacks, options: KafkaTransportOptions) {
    this.#o = options;
    this.#group = group;
    this.#callbacks = callbacks;
    this.#consumer = kafka.consumer({
      groupId: group,
      sessionTimeout: options.config.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(options.config.sessionTimeoutMs / 10)),
      rebalanceTimeout: Math.max(options.config.sessionTimeoutMs, 10_000),
      allowAutoTopicCreation: false,
      // A few MiB per fetch is as fast as more (measured); a worker copies what it keeps.
      maxBytesPerPartition: Math.max(2 * 1024 * 1024, options.config.maxRecordBytes),
      maxBytes: Math.max(8 * 1024 * 1024, options.config.maxRecordBytes),
      maxWaitTimeInMs: 250,
      // After a crash kafkajs restarts the consumer on its own; never once shut down.
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 5000, restartOnFailure: () => Promise.resolve(this.#running) },
    });
    this.#consumer.on(this.#consumer.events.GROUP_JOIN, (event) => {
      const mine = event.payload.memberAssignment[options.config.spansTopic] ?? [];
      for (const p of [...this.#delivered.keys()]) if (!mine.includes(p)) this.#delivered.delete(p);
      for (const p of [...this.#toCommit.keys()]) if (!mine.includes(p)) this.#toCommit.delete(p);
      options.logger.info({ group, partitions: mine }, 'Kafka partitions assigned');
      this.#callbacks.onAssigned?.(mine);
    });
    this.#consumer.on(this.#consumer.events.CRASH, (event) => {
      options.logger.error({ group, error: event.payload.error.message, restart: event.payload.restart }, 'Kafka consumer crashed');
    });
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topics: [this.#o.config.spansTopic], fromBeginning: true });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async (payload) => {
        const { batch } = payload;
        if (!payload.isRunning() || payload.isStale()) return;
        const partition = batch.partition;
        const delivered = this.#delivered.get(partition) ?? -1n;
        const records: ConsumedRecord[] = [];
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < delivered) continue; // refetched after a rebalance: already handed over
          if (m.value === null) continue;
          const parts = recordTraces(m.value);
          if (parts === undefined) {
            this.#o.metrics.transportUndecodableRecords.inc();
            continue;
          }
          for (const part of parts) {
            records.push({
              traceId: part.traceId,
              payload: part.payload,
              spanCount: part.spanCount,
              timestampMs: Number(m.timestamp),
              rootSpans: part.rootSpans,
              partition,
              offset,
            });
          }
        }
        if (records.length > 0) {
          await this.#callbacks.onBatch(partition, records);
          this.#delivered.set(partition, records[records.length - 1]!.offset + 1n);
        }
        const last = batch.messages[batch.messages.length - 1];
        if (last !== undefined) payload.resolveOffset(last.offset);
        await payload.heartbeat();
      },
    });
    this.#commitTimer = setInterval(() => void this.#flushCommits(), 1000);
  }

  commit(partition: number, nextOffset: bigint): void {
    const prev = this.#committed.get(partition);
    if (prev !== undefined && nextOffset <= prev) return;
    this.#toCommit.set(partition, nextOffset);
  }

  async #flushCommits(): Promise<void> {
    if (this.#toCommit.size === 0) return;
    const entries = [...this.#toCommit.entries()];
    this.#toCommit.clear();
    try {
      await this.#consumer.commitOffsets(
        entries.map(([partition, offset]) => ({ topic: this.#o.config.spansTopic, partition, offset: offset.toString() })),
      );
      for (const [p, o] of entries) this.#committed.set(p, o);
    } catch (err) {
      // Lost the partition in a rebalance, or the broker is away: the next commit carries it.
      for (const [p, o] of entries) if (!this.#toCommit.has(p)) this.#toCommit.set(p, o);
      this.#o.logger.warn({ group: this.#group, error: (err as Error).message }, 'Kafka offset commit failed (will retry)');
    }
  }

  pause(): void {
    this.#consumer.pause([{ topic: this.#o.config.spansTopic }]);
  }

  resume(): void {
    this.#consumer.resume([{ topic: this.#o.config.spansTopic }]);
  }

  async shutdown(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#commitTimer !== undefined) clearInterval(this.#commitTimer);
    await this.#flushCommits();
    await this.#consumer.disconnect();
  }
}

export class KafkaTransport implements Transport {
  readonly kind = 'kafka';
  readonly partitions: number;
  readonly kafka: Kafka;
  readonly #o: KafkaTransportOptions;
  /** For consumers that copy what they keep: fetch responses in memory used again. */
  #copyingKafka: Kafka | undefined;

  constructor(options: KafkaTransportOptions) {
    this.#o = options;
    this.partitions = options.partitions;
    this.kafka = createKafkaClient(options.config, options.logger);
  }

  /** Creates missing topics (or fails clearly) and checks the record size limit. */
  async prepare(): Promise<void> {
    await withAdmin(this.kafka, (admin) => ensureTopics(admin, this.#o.config, this.partitions, this.#o.logger));
  }

  createProducer(): TransportProducer {
    return new KafkaProducer(this.kafka, this.#o);
  }

  createConsumer(group: string, callbacks: ConsumerCallbacks): TransportConsumer {
    const kafka = callbacks.copiesPayloads === true ? (this.#copyingKafka ??= createKafkaClient(this.#o.config, this.#o.logger, '', true)) : this.kafka;
    return new KafkaConsumer(kafka, group, callbacks, this.#o);
  }
}
