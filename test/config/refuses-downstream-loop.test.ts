/**
 * Acceptance: a downstream that is betrace's own receiver (same port, a host that reaches the
 * bound address; from the config file or from the export variables inherited from the shell) is
 * refused at start with one line saying why and what to set, exit 1; in Kafka mode too, in a
 * process without a receiver.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { downstreamLoopProblem, parseConfig } from '../../src/config/index.ts';
import { freePorts } from '../helpers/kafka.ts';
import { spawnBetrace } from '../helpers/process.ts';

type Result = { status: number | null; output: string };

/** None of the export variables of the test's own shell. */
const CLEAN_ENV = { BETRACE_DOWNSTREAM_ENDPOINT: '', OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' };

function configFile(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'betrace-loop-'));
  const file = join(dir, 'betrace.yaml');
  writeFileSync(file, `data_dir: ./data\napi:\n  endpoint: 127.0.0.1:0\n${yaml}`);
  return file;
}

async function run(yaml: string, env: Record<string, string> = {}, roles?: string): Promise<Result> {
  const args = ['run', '--config', configFile(yaml), ...(roles === undefined ? [] : ['--roles', roles])];
  const b = spawnBetrace('loop', args, { ...CLEAN_ENV, ...env });
  // -1: it started (then stopped); else its exit status.
  const status = await b.waitFor(/betrace started/, 30_000).then(
    async () => (await b.stop(), -1),
    () => b.stop(),
  );
  return { status, output: b.output() };
}

function assertRefused(r: Result, expected: RegExp): void {
  assert.equal(r.status, 1, r.output);
  const lines = r.output.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${r.output}`);
  assert.match(lines[0]!, expected);
}


describe('a downstream that is betrace\'s own receiver', () => {
  // Every process is started at once (each spends its time loading); the tests read their outcome.
  let p = 0;
  let q = 0;
  let other = 0;
  const local = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';
  const runs: Record<string, Promise<Result>> = {};
  before(async () => {
    [p, q, other] = (await freePorts(3)) as [number, number, number];
    const yaml = `receiver:\n  grpc:\n    endpoint: 127.0.0.1:${p}\n  http:\n    endpoint: localhost:${q}\n`;
    runs.file = run(`${yaml}downstream:\n  endpoint: http://localhost:${p}\n`);
    runs.otel = run(yaml, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${p}` });
    runs.kafka = run(`transport:\n  kind: kafka\n  kafka:\n    brokers: ["127.0.0.1:1"]\n${yaml}`, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://localhost:${p}` }, 'forwarder');
    // Started one after the other: both bind the same receiver port.
    runs.otherPort = run(`${yaml}downstream:\n  endpoint: http://127.0.0.1:${other}\n`).then(async (r) => {
      runs.override = run(yaml, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${p}`, BETRACE_DOWNSTREAM_ENDPOINT: `http://127.0.0.1:${other}` });
      await runs.override;
      return r;
    });
  });

  it('is refused from the config file: localhost for 127.0.0.1', async () => {
    assertRefused(
      await runs.file!,
      new RegExp(
        `^betrace: .*downstream\\.endpoint http://localhost:${p} is betrace's own OTLP/gRPC receiver \\(receiver\\.grpc\\.endpoint 127\\.0\\.0\\.1:${p}\\): betrace would send every span back to itself\\. Set downstream\\.endpoint \\(or BETRACE_DOWNSTREAM_ENDPOINT\\) to your tracing backend's OTLP/gRPC endpoint`,
      ),
    );
  });

  it('is refused from an inherited OTEL_EXPORTER_OTLP_ENDPOINT, naming the variable and what to set', async () => {
    assertRefused(
      await runs.otel!,
      new RegExp(
        `OTEL_EXPORTER_OTLP_ENDPOINT=http://127\\.0\\.0\\.1:${p} is betrace's own OTLP/gRPC receiver .*: betrace would send every span back to itself\\. Unset it in betrace's environment .*or set downstream\\.endpoint / BETRACE_DOWNSTREAM_ENDPOINT to your backend`,
      ),
    );
  });

  // The same check as `betrace run` makes, without a process per variant.
  const problem = (yaml: string, env: Record<string, string>) => downstreamLoopProblem(parseConfig(yaml, { env }), env);

  it('is refused from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as [::1] without a scheme, and for the OTLP/HTTP port', () => {
    const yaml = `receiver:\n  grpc:\n    endpoint: 127.0.0.1:${p}\n  http:\n    endpoint: localhost:${q}\n`;
    assert.match(problem(yaml, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `[::1]:${p}` }) ?? '', /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=\[::1\]:\d+ is betrace's own OTLP\/gRPC receiver/);
    assert.match(problem(yaml, { OTEL_EXPORTER_OTLP_ENDPOINT: `https://127.0.0.1:${q}/` }) ?? '', /^OTEL_EXPORTER_OTLP_ENDPOINT=https:\/\/127\.0\.0\.1:\d+\/ is betrace's own OTLP\/HTTP receiver \(receiver\.http\.endpoint localhost:\d+\)/);
    assert.equal(problem(yaml, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.2:${other}` }), undefined, 'another port');
  });

  it('is refused when the receiver binds 0.0.0.0 or :: and the downstream names a local address', () => {
    for (const bound of ['0.0.0.0', '[::]']) {
      const yaml = `receiver:\n  grpc:\n    endpoint: "${bound}:${p}"\ndownstream:\n  endpoint: http://${local}:${p}\n`;
      assert.match(problem(yaml, {}) ?? '', new RegExp(`^downstream\\.endpoint http://${local.replace(/\./g, '\\.')}:${p} is betrace's own OTLP/gRPC receiver \\(receiver\\.grpc\\.endpoint ${bound.replace(/[[\].]/g, '\\$&')}:${p}\\)`));
    }
    assert.equal(problem(`receiver:\n  grpc:\n    endpoint: 0.0.0.0:${p}\ndownstream:\n  endpoint: http://192.0.2.7:${p}\n`, {}), undefined, 'another host');
    assert.equal(problem(`receiver:\n  grpc:\n    endpoint: 127.0.0.1:${p}\ndownstream:\n  endpoint: http://${local === '127.0.0.1' ? '192.0.2.7' : local}:${p}\n`, {}), undefined, 'a receiver on loopback is not reached by another address');
  });

  it('is refused in a Kafka-mode forwarder: the receiver of the same config is the same loop', async () => {
    assertRefused(await runs.kafka!, /OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/localhost:\d+ is betrace's own OTLP\/gRPC receiver/);
  });

  it('starts with another port, and with BETRACE_DOWNSTREAM_ENDPOINT set over the inherited variable', async () => {
    const r = await runs.otherPort!;
    assert.equal(r.status, -1, r.output);
    const o = await runs.override!;
    assert.equal(o.status, -1, o.output);
  });
});
