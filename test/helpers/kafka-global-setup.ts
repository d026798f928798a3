// Global setup for `node --test --test-global-setup=test/helpers/kafka-global-setup.ts`:
// starts one Kafka broker for the whole run and publishes its address in
// BETRACE_TEST_KAFKA_BROKERS. Node runs this module in the test-runner process before it
// spawns the test files, and the children inherit its environment (checked with Node 24,
// default process isolation and --test-concurrency=1 alike), so test files read the
// address through getTestKafka() in kafka.ts.
//
// - BETRACE_TEST_KAFKA_BROKERS already set: that (external) broker is used, none started.
// - BETRACE_TEST_KAFKA=0: no broker; Kafka tests then start private ones via getTestKafka().
// - BETRACE_KAFKA_LOG_DIR: keep the broker log there (default: deleted with the broker).
// - If the broker cannot start (no java, no mvn, ...) the run goes on with a warning; the
//   tests that need Kafka will fail with the precise error when getTestKafka() retries.
import { startKafka, TEST_KAFKA_ENV } from './kafka.ts';
import type { KafkaBroker } from './kafka.ts';

let broker: KafkaBroker | undefined;

export async function globalSetup(): Promise<void> {
  if (process.env[TEST_KAFKA_ENV] || process.env.BETRACE_TEST_KAFKA === '0') return;
  try {
    const logDir = process.env.BETRACE_KAFKA_LOG_DIR;
    broker = await startKafka(logDir ? { logDir } : {});
    process.env[TEST_KAFKA_ENV] = broker.brokers.join(',');
  } catch (err) {
    process.emitWarning(`kafka-global-setup: no shared Kafka broker: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export async function globalTeardown(): Promise<void> {
  const b = broker;
  broker = undefined;
  if (b) {
    delete process.env[TEST_KAFKA_ENV];
    await b.destroy();
  }
}
