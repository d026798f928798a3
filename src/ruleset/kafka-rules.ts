/**
 * The compacted rules topic: key = rule id, value = the stored rule as JSON,
 * null = deleted; a rule's quarantine under its own key, quarantine:<rule id>
 * (a tombstone lifts it; see StoredRule). Every process (API, workers) reads it in full at start, then
 * follows it (TopicFollower).
 */
import type { KafkaConfig } from '../config/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Producer, kafkaClientOptions } from '../kafka/client.ts';
import { TopicFollower } from '../transport/kafka-follow.ts';
import type { RuleRegistry } from './rule-registry.ts';
import { applyStoredRule, type RuleStore, type StoredRule } from './rule-store.ts';

export class KafkaRuleStore implements RuleStore {
  readonly #config: KafkaConfig;
  readonly #topic: string;
  readonly #registry: RuleRegistry;
  readonly #logger: Logger;
  readonly #entries = new Map<string, StoredRule>();
  #producer: Producer | undefined;
  readonly #follower: TopicFollower;

  constructor(options: { config: KafkaConfig; topic: string; registry: RuleRegistry; logger: Logger }) {
    this.#config = options.config;
    this.#topic = options.topic;
    this.#registry = options.registry;
    this.#logger = options.logger;
    this.#follower = new TopicFollower({
      config: options.config,
      topic: options.topic,
      groupPrefix: 'betrace-rules',
      onRecord: (key, value) => this.#apply(key, value),
      logger: options.logger,
    });
  }

  get(id: string): StoredRule | undefined {
    return this.#entries.get(id);
  }

  #apply(key: string, value: Buffer | null): void {
    if (value === null) {
      this.#entries.delete(key);
      applyStoredRule(this.#registry, key, undefined, this.#logger);
      return;
    }
    try {
      const entry = JSON.parse(value.toString('utf8')) as StoredRule;
      const current = this.#entries.get(key);
      if (current !== undefined && current.kind === entry.kind) {
        // A quarantine's version is the rule's in the process that decided it (per process for file rules): its time orders it.
        if (current.kind === 'quarantine' ? current.since > (entry as typeof current).since : current.version > entry.version) return;
      }
      this.#entries.set(key, entry);
      applyStoredRule(this.#registry, key, entry, this.#logger);
    } catch (err) {
      this.#logger.error({ ruleId: key, err }, 'rules topic: unreadable record ignored');
    }
  }

  /** Reads the topic up to its end as of now, then keeps following it. */
  async start(): Promise<void> {
    this.#producer = new Producer(kafkaClientOptions(this.#config, '-rules'));
    await this.#follower.start();
  }

  async put(entry: StoredRule): Promise<void> {
    await this.#producer!.send({ acks: -1, messages: [{ topic: this.#topic, key: Buffer.from(entry.id), value: Buffer.from(JSON.stringify(entry)) }] });
    this.#apply(entry.id, Buffer.from(JSON.stringify(entry)));
  }

  async remove(id: string): Promise<void> {
    // A tombstone: a record with a key and no value.
    await this.#producer!.send({ acks: -1, messages: [{ topic: this.#topic, key: Buffer.from(id) }] });
    this.#apply(id, null);
  }

  async shutdown(): Promise<void> {
    await this.#follower.stop();
    await this.#producer?.close();
  }
}
