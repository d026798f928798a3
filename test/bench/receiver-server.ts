/**
 * The receiver alone, for its benchmark: OTLP/gRPC into the embedded transport
 * (drained by a consumer that drops records) or into Kafka (acks=all).
 * Usage: node receiver-server.ts embedded | kafka BROKERS TOPIC
 * Prints {"port": N} once listening; runs until SIGTERM.
 */
import { Writable } from 'node:stream';
import { nodeFlagsFor, restartWithNodeFlags } from '../../src/cli/node-flags.ts';
import { parseConfig } from '../../src/config/index.ts';
import { GrpcReceiver, Ingest } from '../../src/receiver/index.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';
import { createEmbeddedTransport } from '../../src/transport/embedded.ts';
import { KafkaTransport } from '../../src/transport/kafka.ts';
import type { TransportProducer } from '../../src/transport/transport.ts';

// With the node flags of `betrace run` (restarts this process once).
restartWithNodeFlags(nodeFlagsFor('run', process.env));

const [kind, brokers, topic] = process.argv.slice(2);
const metrics = createMetrics();
const logger = createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));
let producer: TransportProducer;
if (kind === 'kafka') {
  const config = parseConfig(
    JSON.stringify({ transport: { kind: 'kafka', partitions: 4, kafka: { brokers: brokers!.split(','), spans_topic: topic, rules_topic: `${topic}.rules`, violations_topic: `${topic}.violations`, index_topic: `${topic}.index` } } }),
    { env: {} },
  );
  const transport = new KafkaTransport({ config: config.transport.kafka, partitions: 4, partitioner: 'sarama', retryAfterMs: 1000, metrics, logger });
  await transport.prepare();
  producer = transport.createProducer();
} else {
  const transport = createEmbeddedTransport({ partitions: 4, partitioner: 'sarama', maxQueuedBytes: 256 * 1024 * 1024, retryAfterMs: 1000, metrics });
  await transport.createConsumer('drain', { onBatch: () => Promise.resolve() }).start();
  producer = transport.createProducer();
}
await producer.start();
const ingest = new Ingest({ producer, metrics, maxInFlightBytes: 256 * 1024 * 1024, retryAfterMs: 1000, maxPartBytes: kind === 'kafka' ? 1_000_000 : undefined });
const grpc = new GrpcReceiver({ host: '127.0.0.1', port: 0, maxRequestBytes: 64 * 1024 * 1024, ingest, metrics, logger });
await grpc.start();
process.stdout.write(`${JSON.stringify({ port: grpc.port })}\n`);
process.once('SIGTERM', () => {
  void grpc.shutdown().then(() => producer.shutdown()).then(() => process.exit(0));
});
