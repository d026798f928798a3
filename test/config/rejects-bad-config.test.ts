/**
 * Acceptance: a config with a misspelt key, a bad duration or a bad port fails
 * at start with one line naming key and value, exit status 1; a config with
 * several problems gets them all at once, one line each at the value's
 * line:column (or naming the environment variable it came from), each saying
 * what the value must look like.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, ConfigError } from '../../src/config/index.ts';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

function runWith(yaml: string, command: 'run' | 'check' = 'run', env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-config-'));
  const file = join(dir, 'betrace.yaml');
  writeFileSync(file, yaml);
  const args = command === 'run' ? ['run', '--config', file] : ['config', 'check', file];
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH, ...env } });
  return { status: r.status, stderr: r.stderr, file };
}

describe('bad configuration', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['misspelt key', 'receiver:\n  grcp:\n    endpoint: 127.0.0.1:4317\n', /:2:3: unknown key receiver\.grcp \(did you mean receiver\.grpc\?\)$/],
    ['bad duration', 'worker:\n  trace_idle_timeout: 5 seconds\n', /:2:23: worker\.trace_idle_timeout must be a duration .*got "5 seconds"$/],
    ['zero duration', 'worker:\n  trace_idle_timeout: 0s\n', /:2:23: worker\.trace_idle_timeout must be a duration > 0, got "0s"$/],
    ['bad port', 'api:\n  endpoint: 127.0.0.1:70000\n', /api\.endpoint must be host:port like "127\.0\.0\.1:12011" \(port 0-65535\), got "127\.0\.0\.1:70000"$/],
    ['bad enum', 'transport:\n  kind: kafak\n', /transport\.kind must be one of embedded, kafka, got "kafak" \(did you mean kafka\?\)$/],
    ['bad type', 'worker:\n  max_live_traces: many\n', /worker\.max_live_traces must be an integer >= 1, got "many"$/],
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

  // One file holding a problem of every kind: each is reported, once, at its line:column.
  const MANY = [
    'receiver:', //                                  1
    '  grcp:', //                                    2
    '    endpoint: 127.0.0.1:4317', //               3
    '  max_request_bytes: lots', //                  4
    'worker:', //                                    5
    '  trace_idle_timeout: 5', //                    6
    '  max_live_traces: many', //                    7
    '  evaluation_threads: 0', //                    8
    '  trace_max_duration: 0s', //                   9
    'transport:', //                                 10
    '  kind: kafak', //                              11
    '  kafka:', //                                   12
    '    brokers: [127.0.0.1:9092, nope]', //        13
    'api:', //                                       14
    '  endpoint: 127.0.0.1:70000', //                15
    '  enabled: yes', //                             16
    'log:', //                                       17
    '  levl: debug', //                              18
    '',
  ].join('\n');
  const MANY_EXPECTED: RegExp[] = [
    /:2:3: unknown key receiver\.grcp \(did you mean receiver\.grpc\?\)$/,
    /:4:22: receiver\.max_request_bytes must be a size like "64MiB" \(units B, KB, MB, GB, KiB, MiB, GiB\) or a number of bytes, got "lots"$/,
    /:6:23: worker\.trace_idle_timeout must be a duration with a unit, like "5s" or "500ms" \(units ns, us, ms, s, m, h, d\), got 5$/,
    /:7:20: worker\.max_live_traces must be an integer >= 1, got "many"$/,
    /:8:23: worker\.evaluation_threads must be an integer from 1 to 64, got 0$/,
    /:9:23: worker\.trace_max_duration must be a duration > 0, got "0s"$/,
    /:11:9: transport\.kind must be one of embedded, kafka, got "kafak" \(did you mean kafka\?\)$/,
    /:13:31: transport\.kafka\.brokers\[1\] must be host:port like "127\.0\.0\.1:9092" \(port 0-65535\), got "nope"$/,
    /:15:13: api\.endpoint must be host:port like "127\.0\.0\.1:12011" \(port 0-65535\), got "127\.0\.0\.1:70000"$/,
    /:16:12: api\.enabled must be true or false, got "yes"$/,
    /:18:3: unknown key log\.levl \(did you mean log\.level\?\)$/,
  ];

  for (const command of ['check', 'run'] as const) {
    it(`reports every problem of a file at once, one line each saying what is expected (${command === 'check' ? 'config check' : 'run'})`, () => {
      const { status, stderr, file } = runWith(MANY, command);
      assert.equal(status, 1);
      const lines = stderr.trim().replace(/^betrace: /, '').split('\n');
      assert.equal(lines.length, MANY_EXPECTED.length, `one line per problem, got:\n${stderr}`);
      for (const [i, expected] of MANY_EXPECTED.entries()) {
        assert.ok(lines[i]!.startsWith(`${file}:`), lines[i]);
        assert.match(lines[i]!, expected);
      }
    });
  }

  it('reports environment overrides with the file\'s problems, naming the variable', () => {
    const { status, stderr, file } = runWith('worker:\n  trace_idle_timeout: 5\n', 'check', {
      BETRACE_LOG_LEVEL: 'loud',
      BETRACE_RECEIVER_GRPC_ENDPOINT: '4317',
      BETRACE_API_ALLOW_UNAUTHENTICATED: 'yes',
    });
    assert.equal(status, 1);
    assert.deepEqual(stderr.trim().replace(/^betrace: /, '').split('\n'), [
      `${file}:2:23: worker.trace_idle_timeout must be a duration with a unit, like "5s" or "500ms" (units ns, us, ms, s, m, h, d), got 5`,
      'environment variable BETRACE_RECEIVER_GRPC_ENDPOINT: receiver.grpc.endpoint must be host:port like "127.0.0.1:4317" (port 0-65535), got "4317"',
      'environment variable BETRACE_API_ALLOW_UNAUTHENTICATED: api.allow_unauthenticated must be true or false, got "yes"',
      'environment variable BETRACE_LOG_LEVEL: log.level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ]);
  });

  it('lists the problems in the error value too, with key, position and variable', () => {
    assert.throws(() => parseConfig(MANY, { source: 'b.yaml', env: { BETRACE_TRANSPORT: 'pigeon' } }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, MANY_EXPECTED.length);
      assert.deepEqual(err.problems[0], { path: 'receiver.grcp', message: 'unknown key receiver.grcp (did you mean receiver.grpc?)', line: 2, column: 3 });
      const kind = err.problems.find((p) => p.path === 'transport.kind');
      assert.deepEqual(kind, { path: 'transport.kind', message: 'transport.kind must be one of embedded, kafka, got "pigeon"', env: 'BETRACE_TRANSPORT' });
      return true;
    });
  });

  it('places a problem of a key missing beside another at the enclosing key, and says what a list holds', () => {
    assert.throws(() => parseConfig('api:\n  tls:\n    cert_file: x.pem\ntransport:\n  kafka:\n    brokers: 127.0.0.1:9092\n', { source: 'b.yaml', env: {} }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.message.split('\n'), [
        'b.yaml:3:5: api.tls.cert_file and api.tls.key_file must both be set for TLS, got {"cert_file":"x.pem","key_file":""}',
        'b.yaml:6:14: transport.kafka.brokers must be a list of host:port endpoints like "127.0.0.1:9092" (port 0-65535), got "127.0.0.1:9092"',
      ]);
      return true;
    });
  });

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
