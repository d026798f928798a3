/**
 * Reads a whole topic, then follows it: a consumer group of its own (never
 * committing, so every start reads from the beginning) deleted when stopped.
 * start() resolves once the topic was read up to its end as of the start, or
 * after `catchUpTimeoutMs`. Used for the rules topic and the violations topic,
 * which every process that needs them reads in full. When the client ends the
 * stream (a fetch failed: a broker away), a new one resumes after the last
 * record applied.
 */
import { randomUUID } from 'node:crypto';
import type { KafkaConfig } from '../config/index.ts';
import { RateLimitedLog, type Logger } from '../telemetry/logger.ts';
import { consumeSettleMs, describeKafkaError, groupConsumer, settleWithin, withAdmin, type Consumer, type Message, type MessagesStream } from '../kafka/client.ts';

/** A record of the topic: `kind` is the `betrace-kind` header when there is one. */
export type TopicRecordHandler = (key: string, value: Buffer | null, partition: number, offset: string, kind: string | undefined) => void;

export const KIND_HEADER = 'betrace-kind';

export class TopicFollower {
  readonly #config: KafkaConfig;
  readonly #topic: string;
  readonly #group: string;
  readonly #onRecord: TopicRecordHandler;
  readonly #logger: Logger;
  readonly #log: RateLimitedLog;
  readonly #applied = new Map<number, bigint>();
  #consumer: Consumer | undefined;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  /** A consume() in flight: the client is closed only once it settled (see TopicFollower.stop). */
  #opening: Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>> | undefined;
  #check: () => void = () => undefined;

  constructor(options: { config: KafkaConfig; topic: string; groupPrefix: string; onRecord: TopicRecordHandler; logger: Logger }) {
    this.#config = options.config;
    this.#topic = options.topic;
    this.#group = `${options.groupPrefix}-${randomUUID()}`;
    this.#onRecord = options.onRecord;
    this.#logger = options.logger;
    this.#log = new RateLimitedLog(options.logger);
  }

  async start(catchUpTimeoutMs = 30_000): Promise<void> {
    const consumer = groupConsumer(this.#config, this.#group, '-follow', 10_000, { autocommit: false });
    this.#consumer = consumer;
    const ends = (await consumer.listOffsets({ topics: [this.#topic] })).get(this.#topic) ?? [];
    let caughtUp: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    this.#check = () => {
      for (let p = 0; p < ends.length; p++) {
        const high = ends[p]!;
        if (high > 0n && (this.#applied.get(p) ?? -1n) + 1n < high) return;
      }
      caughtUp();
    };
    this.#check();
    await this.#open();
    const timeout = setTimeout(() => {
      this.#logger.warn({ topic: this.#topic }, `topic not read to its end within ${catchUpTimeoutMs / 1000} s: continuing`);
      caughtUp();
    }, catchUpTimeoutMs);
    await ready;
    clearTimeout(timeout);
  }

  async #open(): Promise<void> {
    const consumer = this.#consumer!;
    const offsets = [...this.#applied].map(([partition, offset]) => ({ topic: this.#topic, partition, offset: offset + 1n }));
    const opening =
      offsets.length === 0
        ? consumer.consume({ topics: [this.#topic], mode: 'earliest' })
        : consumer.consume({ topics: [this.#topic], mode: 'manual', offsets, fallbackMode: 'earliest' });
    this.#opening = opening;
    const stream = await opening.finally(() => {
      if (this.#opening === opening) this.#opening = undefined;
    });
    if (this.#stopped) {
      void stream.close().catch(() => undefined);
      return;
    }
    this.#stream = stream;
    stream.on('data', (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
      if ((this.#applied.get(m.partition) ?? -1n) >= m.offset) return;
      let kind: Buffer | undefined;
      for (const [k, v] of m.headers) if (k.toString('utf8') === KIND_HEADER) kind = v;
      const value = m.value === undefined || m.value === null ? null : m.value;
      this.#onRecord(m.key?.toString('utf8') ?? '', value, m.partition, m.offset.toString(), kind?.toString('utf8'));
      this.#applied.set(m.partition, m.offset);
      this.#check();
    });
    const reopen = (err?: Error) => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      if (this.#stopped) return;
      if (err !== undefined) this.#log.warn('follow', { topic: this.#topic, error: describeKafkaError(err) }, 'following a Kafka topic failed: resuming');
      void stream.close().catch(() => undefined);
      const again = (attempt: number) => {
        this.#retry = setTimeout(() => {
          if (this.#stopped) return;
          this.#open().catch(() => again(attempt + 1));
        }, Math.min(1000 * 2 ** attempt, 10_000));
      };
      again(0);
    };
    stream.on('error', reopen);
    stream.on('close', () => reopen());
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    // Closing the client under a consume() still joining makes its join recurse without end (@platformatic/kafka 2.12).
    await settleWithin(this.#opening, consumeSettleMs(this.#config));
    const stream = this.#stream;
    this.#stream = undefined;
    await stream?.close().catch(() => undefined);
    await this.#consumer?.close().catch(() => undefined);
    try {
      await withAdmin(this.#config, (admin) => admin.deleteGroups({ groups: [this.#group] }), 3000);
    } catch {
      // The group expires on its own.
    }
  }
}
