/**
 * Acceptance: a config with a misspelt key, a bad duration or a bad port fails
 * at start with one line naming key and value, exit status 1.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, ConfigError } from '../../src/config/index.ts';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

function runWith(yaml: string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-config-'));
  const file = join(dir, 'betrace.yaml');
  writeFileSync(file, yaml);
  const r = spawnSync(process.execPath, [cli, 'run', '--config', file], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH } });
  return { status: r.status, stderr: r.stderr };
}

describe('bad configuration', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['misspelt key', 'receiver:\n  grcp:\n    endpoint: 127.0.0.1:4317\n', /:2: unknown key receiver\.grcp \(did you mean receiver\.grpc\?\)$/],
    ['bad duration', 'worker:\n  trace_idle_timeout: 5 seconds\n', /:2: worker\.trace_idle_timeout must be a duration .*got "5 seconds"$/],
    ['zero duration', 'worker:\n  trace_idle_timeout: 0s\n', /worker\.trace_idle_timeout must be a duration > 0, got "0s"$/],
    ['bad port', 'api:\n  endpoint: 127.0.0.1:70000\n', /api\.endpoint must be an endpoint host:port .*got "127\.0\.0\.1:70000"$/],
    ['bad enum', 'transport:\n  kind: kafak\n', /transport\.kind must be one of embedded, kafka, got "kafak"$/],
    ['bad type', 'worker:\n  max_live_traces: many\n', /worker\.max_live_traces must be integer, got "many"$/],
    ['flow-control window below HTTP/2\'s', 'receiver:\n  grpc:\n    flow_control_window: 16KiB\n', /receiver\.grpc\.flow_control_window must be between 64KiB and 1GiB, got "16KiB"$/],
  ];
  for (const [what, yaml, expected] of cases) {
    it(`fails at start on a ${what}: exit 1, one line naming key and value`, () => {
      const { status, stderr } = runWith(yaml);
      assert.equal(status, 1);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line, got: ${stderr}`);
      assert.match(lines[0]!, expected);
    });
  }

  it('takes the downstream endpoint from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT over OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    const config = parseConfig('downstream:\n  endpoint: http://127.0.0.1:1111\n', {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:2222', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:3333' },
    });
    assert.equal(config.downstream.endpoint, 'http://127.0.0.1:3333');
    const general = parseConfig('{}', { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:2222', OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20x' } });
    assert.equal(general.downstream.endpoint, 'http://127.0.0.1:2222');
    assert.equal(general.downstream.headers.authorization, 'Bearer x');
    assert.equal(general.forwarder.enabled, true);
    assert.equal(parseConfig('{}', { env: {} }).forwarder.enabled, false, 'no downstream: forwarder off');
  });

  it('validates environment overrides like file values', () => {
    assert.throws(() => parseConfig('{}', { env: { BETRACE_TRANSPORT: 'carrier-pigeon' } }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /transport\.kind must be one of embedded, kafka, got "carrier-pigeon"/);
      return true;
    });
  });

  it('applies defaults and freezes the result', () => {
    const config = parseConfig('{}', { env: {} });
    assert.equal(config.worker.traceIdleTimeoutMs, 5000);
    assert.equal(config.worker.traceMaxDurationMs, 60_000);
    assert.equal(config.receiver.maxRequestBytes, 16 * 1024 * 1024);
    assert.equal(config.receiver.grpc.port, 4317);
    assert.equal(config.api.host, '127.0.0.1');
    assert.ok(Object.isFrozen(config.worker));
  });
});
