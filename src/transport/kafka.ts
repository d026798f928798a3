/**
 * The Kafka transport (@platformatic/kafka, public API only). Records are
 * exactly docs/contract.md "Kafka records": one per (export request, trace),
 * key = trace id hex, value = OTLP protobuf of that trace's spans, timestamp =
 * earliest span start (event time; one in the future, a sender's clock ahead,
 * is clamped to the time the request was received, which the broker's
 * message.timestamp.after.max.ms accepts: the spans themselves are not
 * changed), partitioned with the Collector-compatible `sarama` function (or
 * `murmur2`), the partition computed here and set on each record.
 *
 * Producer: records of concurrent requests are batched for `linger`, sent with
 * acks=all; send() resolves 'success' only when Kafka acknowledged, and
 * 'retryable' at once while the cluster cannot be reached, or when no
 * acknowledgement came within `ack_timeout` (sooner when the client's own
 * deadline is nearer), so that clients are told UNAVAILABLE with a retry delay
 * while they can still retry.
 *
 * Consumer: a consumer group (KIP-848 `consumer` protocol by default: an
 * assignment change moves only the partitions that move; `classic`: eager
 * rebalances that stop every member). The stage acknowledges each record when
 * done with it; the consumer keeps the low watermark per partition
 * (OffsetTracker) and commits it every second, when a rebalance begins, when a
 * partition is lost, and on shutdown after the stage drained. The client has no
 * revocation callback it waits for: the commit when a rebalance begins is not
 * awaited by the client, so a partition's next owner may start from an older
 * offset and read again what was already handled; stages are built for that
 * (a worker's violation ledger, kafka-ledger.ts).
 */
import type { KafkaConfig } from '../config/index.ts';
import { recordTraces } from '../otlp/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import {
  Admin,
  Producer,
  consumeSettleMs,
  describeKafkaError,
  hasKafkaErrorCode,
  groupConsumer,
  kafkaClientOptions,
  KafkaTransportError,
  settleWithin,
  withAdmin,
  withDeadline,
  type Consumer,
  type Message,
  type MessagesStream,
} from '../kafka/client.ts';
import { OffsetTracker } from './offset-tracker.ts';
import { partitionerFor, type PartitionerName } from './partitioner.ts';
import type {
  ConsumedRecord,
  ConsumerCallbacks,
  ProduceResult,
  SendOptions,
  TraceRecord,
  Transport,
  TransportConsumer,
  TransportProducer,
} from './transport.ts';

export { KafkaTransportError, withAdmin, isRetriableKafkaError, describeKafkaError, kafkaClientOptions } from '../kafka/client.ts';

export interface KafkaTransportOptions {
  readonly config: KafkaConfig;
  /** Partitions of the spans topic when betrace creates it. */
  readonly partitions: number;
  readonly partitioner: PartitionerName;
  readonly retryAfterMs: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** Creates missing topics, or fails with a clear error; checks max_record_bytes against the topic. */
export async function ensureTopics(admin: Admin, config: KafkaConfig, partitions: number, logger: Logger): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const wanted = [
    { topic: config.spansTopic, partitions, configs: [{ name: 'retention.ms', value: config.retentionMs === 0 ? '-1' : String(config.retentionMs) }] },
    { topic: config.rulesTopic, partitions: 1, configs: [{ name: 'cleanup.policy', value: 'compact' }] },
    // As many partitions as the spans topic: a worker writes a trace's violations to its spans partition (kafka-ledger.ts).
    { topic: config.violationsTopic, partitions, configs: [] },
    // As many partitions as the spans topic, and its retention: a trace's index record goes to its spans partition's number (kafka-index.ts).
    { topic: config.indexTopic, partitions, configs: [{ name: 'retention.ms', value: config.retentionMs === 0 ? '-1' : String(config.retentionMs) }] },
  ].filter((t) => !existing.has(t.topic));
  if (wanted.length > 0) {
    if (!config.createTopics) {
      throw new KafkaTransportError(
        `Kafka topics missing: ${wanted.map((t) => t.topic).join(', ')} (transport.kafka.create_topics is false: create them, or let betrace create them)`,
      );
    }
    for (const t of wanted) {
      try {
        await admin.createTopics({ topics: [t.topic], partitions: t.partitions, replicas: config.replicationFactor, configs: t.configs });
        logger.info({ topic: t.topic, partitions: t.partitions }, 'Kafka topic created');
      } catch (err) {
        if (!hasKafkaErrorCode(err, 'TOPIC_ALREADY_EXISTS')) {
          throw new KafkaTransportError(`cannot create Kafka topic ${t.topic}: ${describeKafkaError(err)} (create it by hand, or grant CREATE on the cluster)`);
        }
      }
    }
  }
  const described = await admin.describeConfigs({ resources: [{ resourceType: 2 /* TOPIC */, resourceName: config.spansTopic, configurationKeys: ['max.message.bytes'] }] });
  const entry = described[0]?.configs.find((e) => e.name === 'max.message.bytes');
  const topicMax = entry?.value === undefined || entry.value === null ? undefined : Number(entry.value);
  if (topicMax !== undefined && Number.isFinite(topicMax) && config.maxRecordBytes > topicMax) {
    throw new KafkaTransportError(
      `transport.kafka.max_record_bytes (${config.maxRecordBytes}) is larger than the ${config.spansTopic} topic's max.message.bytes (${topicMax}): lower it, or raise the topic's limit`,
    );
  }
}

/** How long a broker that cannot be reached, or leaders that moved, count as a disturbance. */
const DISTURBANCE_HOLD_MS = 5_000;
/** The longest one disturbance stops workers' idle clocks (a leader failover takes seconds). */
const DISTURBANCE_CAP_MS = 30_000;

export interface KafkaHealthState {
  readonly ok: boolean;
  readonly reason?: string;
}

/**
 * Whether the cluster can be reached: a metadata request of the spans topic
 * every `intervalMs`, each with a deadline. Client connection events are not
 * enough: a broker that goes away while no request is in flight fires none.
 * Unreachable also when a spans partition has no leader.
 *
 * Disturbed (not unready): one broker of the cluster cannot be connected to, or
 * the spans partitions' leaders moved, within the last DISTURBANCE_HOLD_MS —
 * records bound for the partitions it led wait (in clients' retries, in a
 * receiver's spool) until new leaders take over, so workers stop their idle
 * clocks meanwhile; for at most DISTURBANCE_CAP_MS, after which the partitions
 * have new leaders and a broker staying away changes nothing more.
 */
export class KafkaHealth {
  readonly #config: KafkaConfig;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #metrics: Metrics | undefined;
  #admin: Admin | undefined;
  #timer: NodeJS.Timeout | undefined;
  #state: KafkaHealthState = { ok: true };
  #since = Date.now();
  #users = 0;
  #probing = false;
  #leaders: string | undefined;
  #disturbedSince = 0;
  #disturbedUntil = 0;

  constructor(config: KafkaConfig, logger: Logger, metrics?: Metrics, intervalMs = 2000) {
    this.#config = config;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#intervalMs = intervalMs;
  }

  get state(): KafkaHealthState {
    return this.#state;
  }

  /** A broker away or leaders moving (see the class comment): records may be held back upstream. */
  disturbed(): boolean {
    const now = Date.now();
    return now < this.#disturbedUntil && now - this.#disturbedSince < DISTURBANCE_CAP_MS;
  }

  #disturb(reason: string): void {
    const now = Date.now();
    if (now >= this.#disturbedUntil) {
      this.#disturbedSince = now;
      this.#logger.info({ reason }, 'Kafka cluster disturbed: workers stop trace idle clocks until it settles');
    }
    this.#disturbedUntil = now + DISTURBANCE_HOLD_MS;
  }

  /** Each component that reads the state starts and stops it; the probe runs while any does. */
  start(): void {
    if (this.#users++ > 0) return;
    this.#admin = this.#newAdmin();
    this.#timer = setInterval(() => void this.probe(), this.#intervalMs);
    this.#timer.unref();
    void this.probe();
  }

  async stop(): Promise<void> {
    if (--this.#users > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.close().catch(() => undefined);
  }

  #newAdmin(): Admin {
    const admin = new Admin({ ...kafkaClientOptions(this.#config, '-health'), retries: 0 });
    // A connection to a broker lost (a broker killed closes them at once): look now.
    admin.on('client:broker:disconnect', ({ broker }) => void this.#checkBroker(admin, broker));
    return admin;
  }

  /** A broker whose connection closed: disturbed at once unless it takes a new connection within a second (brokers also close idle ones). */
  async #checkBroker(admin: Admin, broker: { host: string; port: number }): Promise<void> {
    if (admin !== this.#admin) return;
    const node = [...(admin.currentMetadata?.brokers ?? new Map<number, { host: string; port: number }>())].find(([, b]) => b.host === broker.host && b.port === broker.port)?.[0];
    if (node === undefined) {
      void this.probe();
      return;
    }
    try {
      await withDeadline(admin.connectToBrokers([node]), 1000, 'connection');
    } catch (err) {
      this.#disturb(`broker ${broker.host}:${broker.port} cannot be reached: ${describeKafkaError(err)}`);
    }
  }

  /** Tells the probe what a client just saw (a request that failed or succeeded), at once. */
  report(state: KafkaHealthState): void {
    this.#set(state);
  }

  async probe(): Promise<void> {
    const admin = this.#admin;
    if (admin === undefined || this.#probing) return;
    this.#probing = true;
    const deadlineMs = Math.min(this.#config.requestTimeoutMs, Math.max(1000, this.#intervalMs * 1.5));
    try {
      const metadata = await withDeadline(admin.metadata({ topics: [this.#config.spansTopic], forceUpdate: true }), deadlineMs, 'metadata answer');
      const topic = metadata.topics.get(this.#config.spansTopic);
      const leaderless = topic === undefined ? [] : topic.partitions.flatMap((p, i) => (p.leader < 0 ? [i] : []));
      this.#set(leaderless.length > 0 ? { ok: false, reason: `Kafka: partitions ${leaderless.join(',')} of ${this.#config.spansTopic} have no leader` } : { ok: true });
      const leaders = topic?.partitions.map((p) => p.leader).join(',');
      if (this.#leaders !== undefined && leaders !== this.#leaders) this.#disturb(`leaders of ${this.#config.spansTopic} moved`);
      this.#leaders = leaders;
      // Every broker, not just one that answers: a dead one holds back the records of the partitions it led.
      await withDeadline(admin.connectToBrokers(null), deadlineMs, 'connection').catch((err: unknown) =>
        this.#disturb(`a broker cannot be reached: ${describeKafkaError(err)}`),
      );
    } catch (err) {
      this.#set({ ok: false, reason: `Kafka unreachable (${this.#config.brokers.join(',')}): ${describeKafkaError(err)}` });
      // A fresh client for the next probe: the failed one may hold a request that never returns.
      if (this.#admin === admin) {
        this.#admin = this.#newAdmin();
        void admin.close().catch(() => undefined);
      }
    } finally {
      this.#probing = false;
    }
  }

  #set(state: KafkaHealthState): void {
    this.#metrics?.transportKafkaReachable.set(state.ok ? 1 : 0);
    if (state.ok === this.#state.ok) {
      if (!state.ok) this.#state = state;
      return;
    }
    const now = Date.now();
    if (state.ok) this.#logger.info({ afterMs: now - this.#since }, 'Kafka reachable again');
    else this.#logger.warn({ reason: state.reason }, 'Kafka cannot be reached');
    this.#state = state;
    this.#since = now;
  }
}

interface Pending {
  readonly records: readonly TraceRecord[];
  /** When send() was called: the latest record timestamp produced (clock skew of senders). */
  readonly receivedAtMs: number;
  readonly waitMs: number;
  readonly resolve: (r: ProduceResult) => void;
}

type OutMessage = { topic: string; partition: number; key: Buffer; value: Buffer; timestamp: bigint };

class KafkaProducer implements TransportProducer {
  readonly #o: KafkaTransportOptions;
  readonly #health: KafkaHealth;
  readonly #producer: Producer;
  #queue: Pending[] = [];
  #queueBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #partition: (key: string, partitions: number) => number;
  #topicPartitions: number;

  constructor(options: KafkaTransportOptions, health: KafkaHealth) {
    this.#o = options;
    this.#health = health;
    this.#topicPartitions = options.partitions;
    this.#partition = partitionerFor(options.partitioner);
    this.#producer = new Producer(kafkaClientOptions(options.config, '-spans'));
  }

  health(): KafkaHealthState {
    return this.#health.state;
  }

  async start(): Promise<void> {
    this.#health.start();
    // The topic's own partition count (it may predate transport.partitions).
    try {
      const metadata = await this.#producer.metadata({ topics: [this.#o.config.spansTopic] });
      const n = metadata.topics.get(this.#o.config.spansTopic)?.partitionsCount ?? 0;
      if (n > 0) this.#topicPartitions = n;
    } catch (err) {
      this.#o.logger.warn({ topic: this.#o.config.spansTopic, error: describeKafkaError(err) }, 'cannot read the spans topic partition count: using transport.partitions');
    }
  }

  send(records: readonly TraceRecord[], options?: SendOptions): Promise<ProduceResult> {
    const state = this.#health.state;
    if (!state.ok) {
      this.#o.metrics.transportProduceRefused.inc({ reason: 'kafka_unavailable' });
      return Promise.resolve({ status: 'retryable', retryInMillis: this.#o.retryAfterMs, error: state.reason ?? 'Kafka unreachable' });
    }
    const now = Date.now();
    // Answer well before the client gives up: at most ack_timeout, and at most half the time its deadline leaves.
    const left = options?.deadlineMs === undefined ? Infinity : (options.deadlineMs - now) / 2;
    const waitMs = Math.max(50, Math.min(this.#o.config.ackTimeoutMs, left));
    return new Promise((resolve) => {
      this.#queue.push({ records, receivedAtMs: now, waitMs, resolve });
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
    const topic = this.#o.config.spansTopic;
    const n = this.#topicPartitions;
    // One produce call carries one record batch per partition, and the broker caps a batch at
    // max.message.bytes: each call holds at most max_record_bytes for any one partition.
    const chunks: OutMessage[][] = [];
    let chunk: OutMessage[] = [];
    const chunkBytes = new Map<number, number>();
    for (const p of batch) {
      for (const r of p.records) {
        const partition = this.#partition(r.traceId, n);
        const value = Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.byteLength);
        const bytes = chunkBytes.get(partition) ?? 0;
        if (bytes > 0 && bytes + value.length > this.#o.config.maxRecordBytes) {
          chunks.push(chunk);
          chunk = [];
          chunkBytes.clear();
        }
        chunk.push({ topic, partition, key: Buffer.from(r.traceId, 'latin1'), value, timestamp: BigInt(Math.min(r.timestampMs, p.receivedAtMs)) });
        chunkBytes.set(partition, (chunkBytes.get(partition) ?? 0) + value.length + 64);
      }
    }
    if (chunk.length > 0) chunks.push(chunk);
    const count = chunks.reduce((s, c) => s + c.length, 0);
    const refused = (message: string): ProduceResult => ({ status: 'retryable', retryInMillis: this.#o.retryAfterMs, error: `Kafka produce failed: ${message}` });
    const produced = Promise.all(chunks.map((messages) => this.#producer.send({ messages, acks: -1 }))).then(
      (): ProduceResult => {
        this.#o.metrics.transportRecordsProduced.inc(count);
        this.#health.report({ ok: true });
        return { status: 'success' };
      },
      (err: unknown): ProduceResult => refused(describeKafkaError(err)),
    );
    // Each request waits at most its own waitMs; should Kafka take the records after
    // that, the client's retry repeats them: workers de-duplicate spans by span id.
    const sent = Promise.all(
      batch.map(async (p) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<ProduceResult>((resolve) => {
          timer = setTimeout(() => resolve(refused(`no acknowledgement within ${Math.round(p.waitMs)} ms`)), p.waitMs);
        });
        const result = await Promise.race([produced, late]);
        clearTimeout(timer);
        if (result.status !== 'success') this.#o.metrics.transportProduceRefused.inc({ reason: 'kafka_unavailable' });
        p.resolve(result);
      }),
    ).then(() => produced.then(() => undefined));
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
  }

  async shutdown(): Promise<void> {
    this.#flush();
    await Promise.all([...this.#inFlight]);
    await this.#producer.close().catch(() => undefined);
    await this.#health.stop();
  }
}

interface OwnedPartition {
  /** Next offset not yet handed over (the client may fetch again from the committed offset). */
  delivered: bigint;
  leaderEpoch: number;
  /** Records not yet handed to the stage. */
  pending: ConsumedRecord[];
}

/** Lag of an owned partition (records between the next fetch and the partition's end) past which it counts as behind. */
const BEHIND_RECORDS = 5_000;
/** After the partitions could not be read, how long being behind still stops trace idle clocks (the catch-up). */
const CATCH_UP_MS = 60_000;

class KafkaConsumer implements TransportConsumer {
  readonly #o: KafkaTransportOptions;
  readonly #health: KafkaHealth;
  readonly #consumer: Consumer;
  readonly #callbacks: ConsumerCallbacks;
  readonly #group: string;
  readonly #topic: string;
  readonly #log: RateLimitedLog;
  readonly #acks = new OffsetTracker();
  /** Per owned partition: one lookup per message. */
  readonly #parts = new Map<number, OwnedPartition>();
  readonly #committed = new Map<number, bigint>();
  #owned = new Set<number>();
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #flushScheduled = false;
  #outstanding = 0;
  #userPaused = false;
  #streamPaused = false;
  #running = false;
  #streamDown = false;
  #behind = false;
  /** When the partitions last could not be read (outage, broker away, stream down). */
  #troubleAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  /** A consume() in flight: the client is closed only once it settled (see shutdown). */
  #opening: Promise<void> | undefined;
  #committing: Promise<void> | undefined;

  constructor(group: string, callbacks: ConsumerCallbacks, options: KafkaTransportOptions, health: KafkaHealth) {
    this.#o = options;
    this.#health = health;
    this.#group = group;
    this.#topic = options.config.spansTopic;
    this.#callbacks = callbacks;
    this.#log = new RateLimitedLog(options.logger);
    this.#consumer = groupConsumer(options.config, group, '-consumer', options.config.sessionTimeoutMs, {
      // A few MiB per fetch is as fast as more (8 and 32 MiB measured no better); a worker copies what it keeps.
      maxBytesPerPartition: Math.max(2 * 1024 * 1024, options.config.maxRecordBytes),
      maxBytes: Math.max(8 * 1024 * 1024, options.config.maxRecordBytes),
      // How long the broker holds a fetch that finds nothing (a record answers it at once): what an idle consumer costs.
      maxWaitTime: 2000,
      autocommit: false,
    });
    // Revocation begins: commit what is done before the partitions go (the client does not wait for it).
    this.#consumer.on('consumer:group:rebalance', () => void this.#commit());
    this.#consumer.on('consumer:group:join', () => this.#syncAssignments());
    this.#consumer.on('consumer:heartbeat:end', () => this.#syncAssignments());
  }

  caughtUp(): boolean {
    const now = Date.now();
    if (!this.#health.state.ok || this.#health.disturbed() || this.#streamDown) {
      this.#troubleAt = now;
      return false;
    }
    // Behind counts while catching up after trouble: a backlog read at full speed otherwise
    // (a worker starting on a filled topic) must not hold every trace until it is read.
    return !(this.#behind && now - this.#troubleAt < CATCH_UP_MS);
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#health.start();
    await this.#openStream();
    this.#timer = setInterval(() => {
      this.#syncAssignments();
      void this.#commit();
      // How far behind counts only while catching up after trouble (caughtUp): not asked otherwise.
      if (Date.now() - this.#troubleAt < CATCH_UP_MS) void this.#checkLag();
    }, 1000);
    this.#timer.unref();
  }

  #openStream(): Promise<void> {
    const opening = this.#consumer
      .consume({ topics: [this.#topic], mode: 'committed', fallbackMode: 'earliest', highWaterMark: 4096 })
      .then((stream) => this.#streamOpened(stream));
    this.#opening = opening;
    return opening.finally(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
  }

  #streamOpened(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    if (!this.#running) {
      void stream.close().catch(() => undefined);
      return;
    }
    this.#stream = stream;
    this.#streamDown = false;
    this.#streamPaused = false;
    stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => this.#onMessage(m));
    stream.on('error', (err: Error) => {
      this.#log.warn('stream', { group: this.#group, error: describeKafkaError(err) }, 'Kafka consumer stream failed: reopening');
      this.#reopen(stream);
    });
    stream.on('close', () => this.#reopen(stream));
    if (this.#userPaused) this.#pauseStream();
  }

  /** The stream ended or failed (the client ends it on a fetch error): a new one resumes from the committed offsets. */
  #reopen(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    this.#streamDown = true;
    void stream.close().catch(() => undefined);
    this.#scheduleReopen();
  }

  /** Tries again after 1 s, doubling up to 10 s while it fails (an outage is not hammered). */
  #scheduleReopen(attempt = 0): void {
    if (!this.#running) return;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (!this.#running || this.#stream !== undefined) return;
      this.#openStream().catch((err: unknown) => {
        this.#log.warn('reopen', { group: this.#group, error: describeKafkaError(err) }, 'Kafka consumer cannot resume yet: trying again');
        this.#scheduleReopen(attempt + 1);
      });
    }, Math.min(1000 * 2 ** attempt, 10_000));
  }

  #syncAssignments(): void {
    const assignments = this.#consumer.assignments;
    if (assignments === null) return;
    const now = new Set(assignments.filter((a) => a.topic === this.#topic).flatMap((a) => a.partitions));
    let changed = now.size !== this.#owned.size;
    for (const p of now) if (!this.#owned.has(p)) changed = true;
    if (!changed) return;
    const lost = [...this.#owned].filter((p) => !now.has(p));
    if (lost.length > 0) {
      void this.#commit(lost);
      for (const p of lost) {
        this.#acks.forget(p);
        this.#parts.delete(p);
        this.#committed.delete(p);
      }
    }
    this.#owned = now;
    const partitions = [...now].sort((a, b) => a - b);
    this.#o.logger.info({ group: this.#group, lost, partitions }, 'Kafka partitions assigned');
    this.#callbacks.onAssigned?.(partitions);
  }

  #onMessage(m: Message<Buffer, Buffer, Buffer, Buffer>): void {
    const partition = m.partition;
    let part = this.#parts.get(partition);
    if (part === undefined) {
      if (!this.#owned.has(partition)) this.#syncAssignments();
      if (!this.#owned.has(partition)) return;
      part = { delivered: -1n, leaderEpoch: -1, pending: [] };
      this.#parts.set(partition, part);
    }
    const offset = m.offset;
    if (offset < part.delivered) return; // fetched again from the committed offset: handed over already
    part.delivered = offset + 1n;
    part.leaderEpoch = m.leaderEpoch;
    const value = m.value;
    const traces = value === undefined || value === null || value.length === 0 ? undefined : recordTraces(value);
    if (traces === undefined || traces.length === 0) {
      if (value !== undefined && value !== null) this.#o.metrics.transportUndecodableRecords.inc();
      this.#acks.hold(partition, offset, 1);
      this.#acks.release(partition, offset);
      return;
    }
    this.#acks.hold(partition, offset, traces.length);
    const timestampMs = Number(m.timestamp);
    for (const t of traces) {
      part.pending.push({ traceId: t.traceId, payload: t.payload, spanCount: t.spanCount, timestampMs, rootSpans: t.rootSpans, partition, offset, parts: traces.length });
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    for (const [partition, part] of this.#parts) {
      const records = part.pending;
      if (records.length === 0) continue;
      part.pending = [];
      this.#outstanding++;
      const done = () => {
        this.#outstanding--;
        if (this.#outstanding === 0 && !this.#userPaused) this.#resumeStream();
      };
      this.#callbacks.onBatch(partition, records).then(done, (err: unknown) => {
        this.#log.warn('batch', { err }, 'a batch handler failed');
        done();
      });
    }
    // Backpressure: a handler still busy after this turn stops fetching until it is done.
    if (this.#outstanding > 0) {
      setImmediate(() => {
        if (this.#outstanding > 0) this.#pauseStream();
      });
    }
  }

  #pauseStream(): void {
    if (this.#streamPaused) return;
    this.#streamPaused = true;
    this.#stream?.pause();
  }

  #resumeStream(): void {
    if (!this.#streamPaused) return;
    this.#streamPaused = false;
    this.#stream?.resume();
  }

  async #checkLag(): Promise<void> {
    if (this.#owned.size === 0) {
      this.#behind = false;
      return;
    }
    try {
      const ends = (await this.#consumer.listOffsets({ topics: [this.#topic] })).get(this.#topic) ?? [];
      let behind = false;
      for (const p of this.#owned) {
        const end = ends[p];
        const next = this.#parts.get(p)?.delivered;
        if (end !== undefined && next !== undefined && end - next > BigInt(BEHIND_RECORDS)) behind = true;
      }
      this.#behind = behind && !this.#userPaused;
    } catch {
      // The health probe reports an unreachable cluster.
    }
  }

  ack(partition: number, offset: bigint): void {
    this.#acks.release(partition, offset);
  }

  /** Commits the low watermark of the given partitions (default: every owned one) where it moved. */
  #commit(partitions: Iterable<number> = this.#owned): Promise<void> {
    const offsets: { topic: string; partition: number; offset: bigint; leaderEpoch: number }[] = [];
    for (const p of partitions) {
      const next = this.#acks.committable(p);
      if (next === undefined || next <= (this.#committed.get(p) ?? -1n)) continue;
      offsets.push({ topic: this.#topic, partition: p, offset: next, leaderEpoch: this.#parts.get(p)?.leaderEpoch ?? -1 });
    }
    if (offsets.length === 0) return this.#committing ?? Promise.resolve();
    const run = async (): Promise<void> => {
      await this.#committing?.catch(() => undefined);
      try {
        await this.#consumer.commit({ offsets });
        for (const o of offsets) if (o.offset > (this.#committed.get(o.partition) ?? -1n)) this.#committed.set(o.partition, o.offset);
      } catch (err) {
        // Partition lost in a rebalance, or the broker away: the next commit carries it.
        this.#log.warn('commit', { group: this.#group, error: describeKafkaError(err) }, 'Kafka offset commit failed (will retry)');
      }
    };
    const p = run();
    this.#committing = p;
    void p.finally(() => {
      if (this.#committing === p) this.#committing = undefined;
    });
    return p;
  }

  pause(): void {
    this.#userPaused = true;
    this.#pauseStream();
  }

  resume(): void {
    this.#userPaused = false;
    if (this.#outstanding === 0) this.#resumeStream();
  }

  async shutdown(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#timer);
    clearTimeout(this.#restartTimer);
    // The client must not be closed under a consume() still joining the group: its join then
    // recurses without end once it sees the client closed (@platformatic/kafka 2.12).
    if (!(await settleWithin(this.#opening, consumeSettleMs(this.#o.config)))) {
      this.#o.logger.warn({ group: this.#group }, 'Kafka consumer still joining its group at shutdown: closing it anyway');
    }
    const stream = this.#stream;
    this.#stream = undefined;
    await stream?.close().catch(() => undefined);
    this.#flush();
    // The stage finishes what it holds, then the low watermark is committed while the partitions are still ours.
    await this.#callbacks.drain?.();
    await this.#commit();
    await this.#committing?.catch(() => undefined);
    await this.#consumer.close().catch((err: unknown) => this.#o.logger.warn({ group: this.#group, error: describeKafkaError(err) }, 'Kafka consumer did not leave its group cleanly'));
    await this.#health.stop();
  }
}

export class KafkaTransport implements Transport {
  readonly kind = 'kafka';
  readonly partitions: number;
  readonly config: KafkaConfig;
  readonly kafkaHealth: KafkaHealth;
  readonly #o: KafkaTransportOptions;

  constructor(options: KafkaTransportOptions) {
    this.#o = options;
    this.partitions = options.partitions;
    this.config = options.config;
    this.kafkaHealth = new KafkaHealth(options.config, options.logger, options.metrics);
  }

  /** Creates missing topics (or fails clearly) and checks the record size limit. */
  async prepare(): Promise<void> {
    try {
      await withAdmin(this.#o.config, (admin) => ensureTopics(admin, this.#o.config, this.partitions, this.#o.logger));
    } catch (err) {
      if (err instanceof KafkaTransportError) throw err;
      throw new KafkaTransportError(`cannot reach Kafka (${this.#o.config.brokers.join(',')}): ${describeKafkaError(err)}`, { cause: err });
    }
  }

  health(): KafkaHealthState {
    return this.kafkaHealth.state;
  }

  createProducer(): TransportProducer {
    return new KafkaProducer(this.#o, this.kafkaHealth);
  }

  createConsumer(group: string, callbacks: ConsumerCallbacks): TransportConsumer {
    return new KafkaConsumer(group, callbacks, this.#o, this.kafkaHealth);
  }
}
