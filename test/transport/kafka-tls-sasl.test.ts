/**
 * Kafka over TLS and SASL against a real broker: a listener with TLS only, and one with
 * TLS and SASL (PLAIN and SCRAM-SHA-256 users). Over each, spans from the OpenTelemetry
 * SDK go through the receiver, the spans topic and the forwarder to the downstream
 * endpoint, and a violation through a worker and the violations topic; a wrong password
 * or an untrusted broker certificate stops the start with an error that says so.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { stringify } from 'yaml';
import { makeTestCerts, type TestCerts } from '../helpers/certs.ts';
import { startKafka, uniqueName, type KafkaBroker } from '../helpers/kafka.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startTestPipeline, metricValue } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter } from '../helpers/sdk.ts';

const PLAIN_USER = 'betrace-plain';
const PLAIN_PASSWORD = 'plain-secret';
const SCRAM_USER = 'betrace-scram';
const SCRAM_PASSWORD = 'scram-secret';

function rulesFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-rules-'));
  const file = join(dir, 'rules.yaml');
  writeFileSync(
    file,
    stringify({
      rules: [{ id: 'audited-admin', name: 'Admin actions are audited', severity: 'high', condition: 'trace.every(admin.action).followed_by(audit.log)' }],
    }),
  );
  return file;
}

describe('Kafka over TLS and SASL', () => {
  let certs: TestCerts;
  let kafka: KafkaBroker;
  let sink: OtlpSink;
  const rules = rulesFile();

  before(async () => {
    certs = makeTestCerts();
    // The broker's PEM key store: its key (PKCS#8) then its certificate.
    const keyStore = join(certs.dir, 'broker-keystore.pem');
    writeFileSync(keyStore, readFileSync(certs.serverKey, 'utf8') + readFileSync(certs.serverCert, 'utf8'));
    kafka = await startKafka({
      listeners: { TLS: 'SSL', AUTH: 'SASL_SSL' },
      formatArgs: ['--add-scram', `SCRAM-SHA-256=[name=${SCRAM_USER},password=${SCRAM_PASSWORD}]`],
      properties: {
        'ssl.keystore.type': 'PEM',
        'ssl.keystore.location': keyStore,
        'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256',
        'listener.name.auth.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required user_${PLAIN_USER}="${PLAIN_PASSWORD}";`,
        'listener.name.auth.scram-sha-256.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
      },
    });
    sink = await startOtlpSink();
  });
  after(async () => {
    await sink?.close();
    await kafka?.destroy();
  });

  const variants: Array<{ what: string; listener: string; sasl: Record<string, string> }> = [
    { what: 'TLS', listener: 'TLS', sasl: {} },
    { what: 'TLS and SASL/PLAIN', listener: 'AUTH', sasl: { mechanism: 'plain', username: PLAIN_USER, password: PLAIN_PASSWORD } },
    { what: 'TLS and SASL/SCRAM-SHA-256', listener: 'AUTH', sasl: { mechanism: 'scram-sha-256', username: SCRAM_USER, password: SCRAM_PASSWORD } },
  ];

  function transport(listener: string, sasl: Record<string, string>, prefix: string, caFile = certs.ca) {
    return {
      kind: 'kafka',
      partitions: 2,
      kafka: {
        brokers: [kafka.listeners[listener]!],
        spans_topic: `${prefix}.spans`,
        rules_topic: `${prefix}.rules`,
        violations_topic: `${prefix}.violations`, index_topic: `${prefix}.index`,
        worker_group: `${prefix}-w`,
        forwarder_group: `${prefix}-f`,
        request_timeout: '5s',
        session_timeout: '6s',
        tls: { enabled: true, ca_file: caFile },
        sasl,
      },
    };
  }

  for (const { what, listener, sasl } of variants) {
    it(`runs the pipeline over ${what}`, async (t) => {
      const prefix = uniqueName('secure');
      const betrace = await startTestPipeline({
        transport: transport(listener, sasl, prefix),
        downstream: { endpoint: sink.url, batch_timeout: '20ms' },
        worker: { trace_idle_timeout: '500ms' },
        rules: { paths: [rules] },
      });
      t.after(() => betrace.stop());
      const app = createTestApp({ service: `secure-${listener.toLowerCase()}`, exporters: [otlpExporter('grpc', betrace.grpcUrl)] });
      t.after(() => app.shutdown());
      const tracer = app.tracer();
      const traceIds: string[] = [];
      for (let i = 0; i < 5; i++) {
        const root = tracer.startSpan(`request ${prefix} ${i}`);
        traceIds.push(root.spanContext().traceId);
        root.end();
      }
      // One trace breaks the rule: an admin action with no audit log after it.
      const admin = tracer.startSpan('admin.action', { attributes: { marker: prefix } });
      const violating = admin.spanContext().traceId;
      admin.end();
      await app.flush();

      await sink.waitFor((spans) => traceIds.every((id) => spans.some((s) => s.traceId === id)), 30_000, `spans of ${prefix} downstream`);
      await sink.waitFor((spans) => spans.some((s) => s.name === 'betrace.violation' && s.traceId === violating), 30_000, 'the violation downstream');

      // The violation record is on the violations topic, read here over the same listener.
      const client = new Kafka({
        clientId: 'betrace-test-reader',
        brokers: [kafka.listeners[listener]!],
        ssl: { ca: [readFileSync(certs.ca, 'utf8')] },
        ...(sasl.mechanism ? { sasl: { mechanism: sasl.mechanism, username: sasl.username!, password: sasl.password! } as never } : {}),
        logLevel: logLevel.NOTHING,
      });
      const consumer = client.consumer({ groupId: `${prefix}-reader` });
      t.after(() => consumer.disconnect());
      await consumer.connect();
      await consumer.subscribe({ topic: `${prefix}.violations`, fromBeginning: true });
      const record = await new Promise<{ trace_id: string; rule_id: string }>((resolve) => {
        void consumer.run({
          eachMessage: ({ message }) => {
            resolve(JSON.parse(message.value!.toString()) as { trace_id: string; rule_id: string });
            return Promise.resolve();
          },
        });
      });
      assert.equal(record.trace_id, violating);
      assert.equal(record.rule_id, 'audited-admin');
      assert.equal(await metricValue(betrace.apiUrl, 'betrace_receiver_spans_accepted_total', { protocol: 'grpc' }), 6);
    });
  }

  it('does not start with a wrong SASL password, and says why', async () => {
    await assert.rejects(
      startTestPipeline({ transport: transport('AUTH', { mechanism: 'scram-sha-256', username: SCRAM_USER, password: 'not-the-password' }, uniqueName('badpw')) }),
      (err: Error) => /SASL|authentication/i.test(err.message),
    );
  });

  it('does not start when the broker certificate is not signed by the configured CA', async () => {
    const other = makeTestCerts();
    const caFile = join(mkdtempSync(join(tmpdir(), 'betrace-ca-')), 'other-ca.pem');
    copyFileSync(other.ca, caFile);
    await assert.rejects(startTestPipeline({ transport: transport('TLS', {}, uniqueName('badca'), caFile) }), (err: Error) => /certificate|self.signed|unable to verify/i.test(err.message));
  });
});
