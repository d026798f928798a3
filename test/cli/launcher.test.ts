/**
 * The `betrace` command as a user runs it from a clone: `npx betrace …` (the
 * package's bin, bin/betrace.js) and `npm start`. On a Node.js older than
 * package.json's engines both answer one line saying which Node is needed and how
 * to get it, exit 1; the system Node of the test machine (/usr/bin/node, Node 20)
 * stands in for it, with the system npm. Machine-readable output (`--format json`,
 * `config reference`, `rules test`) is all that reaches stdout.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runProgram } from '../helpers/cli.ts';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { demoTraces, encodeDemoTraces } from '../../src/cli/demo.ts';
import { configReference } from '../../src/cli/config-reference.ts';

const root = join(import.meta.dirname, '..', '..');
const oldNode = '/usr/bin/node';
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; engines: { node: string }; scripts: Record<string, string> };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  return runProgram(file, args, { cwd: root, env });
}

/** The environment of a user whose PATH finds this test's Node (24) first. */
const userEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` });
/** The command through its launcher, without npx's start-up (which writes nothing to stdout: see config reference). */
const betrace = (args: string[]): Promise<Result> => run(process.execPath, [join(root, 'bin', 'betrace.js'), ...args], userEnv());

describe('the betrace command', () => {
  it('is bin/betrace.js, shipped in the package, and npm start goes through it', () => {
    assert.equal(pkg.bin.betrace, 'bin/betrace.js');
    assert.match(pkg.scripts.start!, /^node bin\/betrace\.js run /);
    assert.equal(pkg.scripts.betrace, undefined, 'no `npm run betrace` (its banner goes to stdout): npx betrace');
  });

  describe('on a Node.js older than package.json engines', { skip: !existsSync(oldNode) && `no ${oldNode}` }, () => {
    const needs = /^betrace needs Node\.js >= 22\.22 or >= 24\.6 \(this is v\d+\.\d+\.\d+\): install Node 24 LTS from https:\/\/nodejs\.org or with your version manager \(nvm install 24\)$/;
    let version = '';
    before(async () => {
      version = (await run(oldNode, ['--version'], process.env)).stdout.trim();
      assert.match(version, /^v(1\d|20|21)\./, `${oldNode} is older than ${pkg.engines.node}`);
    });

    it('bin/betrace.js --help: one line on stderr, nothing on stdout, exit 1', async () => {
      const r = await run(oldNode, [join(root, 'bin', 'betrace.js'), '--help'], process.env);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, needs);
      assert.ok(lines[0]!.includes(`(this is ${version})`));
    });

    it('npm start (the system npm on that Node): the same one line, exit 1', async () => {
      const r = await run('npm', ['start'], { ...process.env, PATH: '/usr/bin:/bin' });
      assert.equal(r.code, 1);
      const lines = r.stderr.split('\n').filter((l) => l !== '' && !/^npm (error|warn|notice)/.test(l));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, needs);
      assert.doesNotMatch(r.stderr + r.stdout, /ERR_UNKNOWN_FILE_EXTENSION|\n\s+at /);
    });
  });

  describe('npx betrace from the clone', () => {
    let dir = '';
    let traces = '';
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'betrace-cli-'));
      traces = join(dir, 'demo.pb');
      writeFileSync(traces, encodeDemoTraces(demoTraces()));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('--help exits 0 with the usage, every command listed', async () => {
      const r = await run('npx', ['betrace', '--help'], userEnv());
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: betrace \[options\] \[command\]/);
      for (const command of ['run', 'rules', 'replay', 'demo', 'config']) assert.match(r.stdout, new RegExp(`^  ${command}\\b`, 'm'));
    });

    it('config reference: stdout is the reference and nothing else', async () => {
      const r = await run('npx', ['betrace', 'config', 'reference'], userEnv());
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${configReference().replace(/\n$/, '')}\n`);
    });

    it('replay --format json: stdout is one JSON document; rules test: one line per violation and the summary', async () => {
      const replay = await betrace(['replay', '--rules', 'config/rules/seed-invariants.yaml', '--source', traces, '--from', '1h', '--to', 'now', '--format', 'json']);
      assert.equal(replay.code, 0, replay.stderr);
      const report = JSON.parse(replay.stdout) as { violations: Array<{ rule_id: string }> };
      assert.deepEqual(report.violations.map((v) => v.rule_id).sort(), ['admin-audit-log', 'cross-tenant-isolation', 'payment-idempotency', 'shipment-requires-payment']);

      const test = await betrace(['rules', 'test', '--rules', 'config/rules/seed-invariants.yaml', '--traces', traces]);
      assert.equal(test.code, 0, test.stderr);
      const lines = test.stdout.trimEnd().split('\n');
      assert.equal(lines.pop(), '4 violations in 8 traces (4 rules)');
      for (const line of lines) assert.match(line, /^[0-9a-f]{32} [a-z-]+ (critical|high) ".*" witnesses=\d+ \[[0-9a-f,]+\] id=[0-9a-f]{32}$/);
      assert.equal(lines.length, 4);
    });
  });
});
