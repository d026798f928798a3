/**
 * The environment variables that override keys come from the schema (`x-env`, one fact): each
 * sets its key, as the key's type (a list from comma-separated items, a boolean from
 * true/false), and the standard OpenTelemetry endpoint variables yield to
 * BETRACE_DOWNSTREAM_ENDPOINT.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, schemaKeys } from '../../src/config/index.ts';

describe('environment overrides', () => {
  it('every variable the schema names sets its key, as the key\'s type', () => {
    const config = parseConfig('{}', {
      source: 't.yaml',
      env: {
        BETRACE_KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093',
        BETRACE_API_ALLOW_UNAUTHENTICATED: 'true',
        BETRACE_LOG_LEVEL: 'debug',
        BETRACE_DATA_DIR: '/var/lib/betrace-test',
        BETRACE_RECEIVER_GRPC_ENDPOINT: '127.0.0.1:14317',
      },
    });
    assert.deepEqual(config.transport.kafka.brokers, ['127.0.0.1:9092', '127.0.0.1:9093']);
    assert.equal(config.api.allowUnauthenticated, true);
    assert.equal(config.log.level, 'debug');
    assert.equal(config.dataDir, '/var/lib/betrace-test');
    assert.equal(config.receiver.grpc.port, 14317);
    const named = schemaKeys().flatMap(([, node]) => (node['x-env'] === undefined ? [] : [node['x-env']]));
    assert.ok(named.includes('BETRACE_KAFKA_BROKERS') && named.includes('BETRACE_DOWNSTREAM_ENDPOINT') && named.length >= 12, named.join(', '));
  });

  it('a variable whose value the key refuses is named in the error', () => {
    for (const [path, node] of schemaKeys()) {
      const name = node['x-env'];
      if (name === undefined || !(node.type === 'boolean' || node.enum !== undefined || node.format === 'endpoint')) continue;
      assert.throws(() => parseConfig('{}', { source: 't.yaml', env: { [name]: 'not-a-valid-value' } }), new RegExp(`environment variable ${name}: ${path.replace(/\./g, '\\.')} `), name);
    }
  });

  it('BETRACE_DOWNSTREAM_ENDPOINT wins over OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which wins over OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    const endpoint = (env: Record<string, string>) => parseConfig('{}', { source: 't.yaml', env }).downstream.endpoint;
    const all = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1001', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:1002', BETRACE_DOWNSTREAM_ENDPOINT: 'http://127.0.0.1:1003' };
    assert.equal(endpoint(all), 'http://127.0.0.1:1003');
    assert.equal(endpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: all.OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: all.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT }), 'http://127.0.0.1:1002');
    assert.equal(endpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: all.OTEL_EXPORTER_OTLP_ENDPOINT }), 'http://127.0.0.1:1001');
  });
});
