/**
 * Fault: unsafe defaults. An admin API bound beyond loopback without a token
 * refuses to start (saying how to set one), unless api.allow_unauthenticated
 * says it is fronted by other authentication; the container's default config
 * therefore needs BETRACE_API_TOKEN. An OTLP receiver open beyond loopback
 * without a token starts, with a warning.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCommand } from '../../src/cli/run.ts';
import { parseConfig, ConfigError } from '../../src/config/index.ts';
import { createPipeline, ALL_ROLES } from '../../src/cli/pipeline.ts';
import { createLogger } from '../../src/telemetry/logger.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
const refusal = /api\.endpoint binds "[^"]+" \(not loopback\) and no API token is set.*set BETRACE_API_TOKEN, api\.token_file or api\.token.*api\.allow_unauthenticated: true/;

function refused(yaml: string, env: NodeJS.ProcessEnv = {}): ConfigError {
  let caught: unknown;
  try {
    parseConfig(yaml, { env });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `refused: ${yaml}`);
  return caught;
}

describe('safe defaults', () => {
  it('refuses to run an admin API bound beyond loopback without a token: exit status 1, one line saying how to set one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-safe-'));
    try {
      const file = join(dir, 'betrace.yaml');
      // A documentation address (TEST-NET-1), not this host's: were it not refused, binding it would fail.
      writeFileSync(file, 'api:\n  endpoint: 192.0.2.1:12011\nreceiver: { grpc: { endpoint: "127.0.0.1:0" }, http: { endpoint: "127.0.0.1:0" } }\n');
      const stderr: string[] = [];
      const status = await runCommand({ config: file }, { stdout: () => undefined, stderr: (t) => stderr.push(t) });
      assert.equal(status, 1, stderr.join(''));
      assert.equal(stderr.length, 1, stderr.join(''));
      assert.match(stderr[0]!, refusal);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts a token (key, env or file), a loopback bind, or the explicit opt-out', () => {
    for (const host of ['0.0.0.0', '[::]', '10.1.2.3', 'betrace.example']) refused(`api: { endpoint: "${host}:12011" }`);
    for (const host of ['127.0.0.1', '127.9.9.9', '[::1]', 'localhost']) assert.equal(parseConfig(`api: { endpoint: "${host}:12011" }`, { env: {} }).api.token, '');
    const yaml = 'api: { endpoint: "0.0.0.0:12011" }';
    assert.equal(parseConfig(yaml, { env: { BETRACE_API_TOKEN: 't0k' } }).api.token, 't0k');
    assert.equal(parseConfig('api: { endpoint: "0.0.0.0:12011", token: t1 }', { env: {} }).api.token, 't1');
    const dir = mkdtempSync(join(tmpdir(), 'betrace-safe-'));
    try {
      writeFileSync(join(dir, 'token'), 't2\n');
      assert.equal(parseConfig('api: { endpoint: "0.0.0.0:12011", token_file: token }', { env: {}, baseDir: dir }).api.token, 't2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(parseConfig('api: { endpoint: "0.0.0.0:12011", allow_unauthenticated: true }', { env: {} }).api.allowUnauthenticated, true);
    assert.equal(parseConfig(yaml, { env: { BETRACE_API_ALLOW_UNAUTHENTICATED: 'true' } }).api.allowUnauthenticated, true);
    refused(yaml, { BETRACE_API_ALLOW_UNAUTHENTICATED: 'false' });
    assert.match(refused(yaml, { BETRACE_API_ALLOW_UNAUTHENTICATED: 'yes' }).message, /BETRACE_API_ALLOW_UNAUTHENTICATED: api\.allow_unauthenticated must be true or false/);
    assert.equal(parseConfig('api: { endpoint: "0.0.0.0:12011", enabled: false }', { env: {} }).api.enabled, false, 'no API, nothing to protect');
  });

  it("makes the container's default config need BETRACE_API_TOKEN (or the opt-out)", () => {
    const yaml = readFileSync(join(repoRoot, 'deploy', 'docker', 'betrace.yaml'), 'utf8');
    assert.match(refused(yaml).message, refusal);
    assert.equal(parseConfig(yaml, { env: { BETRACE_API_TOKEN: 'from-env' } }).api.host, '0.0.0.0');
    assert.equal(parseConfig(yaml, { env: { BETRACE_API_ALLOW_UNAUTHENTICATED: 'true' } }).api.token, '');
  });

  it('warns when the OTLP receiver listens beyond loopback without a token (and starts)', async () => {
    const logs: string[] = [];
    const logger = createLogger('info', new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }));
    const dir = mkdtempSync(join(tmpdir(), 'betrace-safe-'));
    const yaml = (token: string) =>
      `receiver: { auth_token: "${token}", grpc: { endpoint: "0.0.0.0:4317" }, http: { endpoint: "127.0.0.1:4318" } }\ndata_dir: ${dir}\n`;
    try {
      // Built, not started: nothing listens (tests bind loopback only).
      const open = createPipeline({ config: parseConfig(yaml(''), { env: {} }), roles: [...ALL_ROLES], logger });
      await open.shutdown();
      const warning = logs.map((l) => JSON.parse(l) as { level: number; msg: string; endpoints?: string[] }).find((l) => /receiver\.auth_token/.test(l.msg));
      assert.ok(warning, logs.join(''));
      assert.equal(warning.level, 40);
      assert.deepEqual(warning.endpoints, ['0.0.0.0:4317']);
      logs.length = 0;
      const closed = createPipeline({ config: parseConfig(yaml('secret'), { env: {} }), roles: [...ALL_ROLES], logger });
      await closed.shutdown();
      assert.ok(!logs.some((l) => /receiver\.auth_token/.test(l)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
