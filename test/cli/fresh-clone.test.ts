/**
 * Acceptance: a newcomer's first hour, from a fresh clone. The repository's
 * committed HEAD cloned into a temporary directory; `npm ci` there with an empty
 * npm cache and a PATH holding only the README's prerequisites (this test's
 * Node.js 24, whose directory holds nothing else, then /usr/bin:/bin for npm, sh,
 * git and curl); then the commands of the README's "Your first violation"
 * walkthrough as written, with the violations it documents; and `npx betrace
 * --help` there.
 *
 * Ports: `npm start` gets free ports through the variables betrace reads
 * (BETRACE_RECEIVER_GRPC_ENDPOINT, …); `npx betrace demo` defaults to the same
 * variables, so it runs as written in the same environment; in the curl line the
 * default API address 127.0.0.1:12011 is replaced by the test's.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runProgram } from '../helpers/cli.ts';
import { freePorts } from '../helpers/kafka.ts';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The README's walkthrough: its commands (comments dropped) and the text after it. */
function walkthrough(): { commands: string[]; after: string } {
  const m = /<!-- walkthrough:start -->\n```sh\n([\s\S]*?)```\n<!-- walkthrough:end -->\n([\s\S]*?)\n#{2,3} /.exec(readme);
  assert.ok(m, 'README: a ```sh block between <!-- walkthrough:start --> and <!-- walkthrough:end -->');
  const commands = m[1]!
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  return { commands, after: m[2]! };
}


function sh(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return runProgram('/bin/sh', ['-c', command], { cwd, env });
}

describe('a fresh clone', () => {
  let dir = '';
  let repo = '';
  let env: NodeJS.ProcessEnv = {};
  let apiAddress = '';
  let start: ChildProcess | undefined;
  let startOutput = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'betrace-clone-'));
    repo = join(dir, 'betrace');
    await promisify(execFile)('git', ['clone', '-q', root, repo]);
    const [grpc, http, api] = await freePorts(3);
    apiAddress = `127.0.0.1:${api}`;
    // Nothing of this process's environment (npm_* variables of an `npm test`, NODE_OPTIONS, …) but HOME
    // and the machine's network setup (proxies, extra CA certificates) that any user of it has too.
    const network = Object.entries(process.env).filter(([k]) => /^(https?_proxy|no_proxy|node_extra_ca_certs|ssl_cert_(file|dir))$/i.test(k));
    env = {
      ...Object.fromEntries(network),
      HOME: process.env.HOME,
      PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
      npm_config_cache: join(dir, 'npm-cache'),
      BETRACE_RECEIVER_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
      BETRACE_RECEIVER_HTTP_ENDPOINT: `127.0.0.1:${http}`,
      BETRACE_API_ENDPOINT: apiAddress,
    };
  });

  after(async () => {
    if (start !== undefined && start.exitCode === null) {
      const exited = new Promise((resolve) => start!.once('exit', resolve));
      process.kill(-start.pid!, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('npm ci, then the walkthrough as written: npm start, npx betrace demo, the violations it documents', async () => {
    const quickStart = /^(npm ci) && npm start\b/m.exec(readme);
    assert.ok(quickStart, 'the quick start command');
    const ci = await sh(quickStart[1]!, repo, env);
    assert.equal(ci.code, 0, ci.stderr);

    const { commands, after: text } = walkthrough();
    assert.equal(commands[0], 'npm start', 'the walkthrough starts betrace');
    start = spawn('/bin/sh', ['-c', commands[0]], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    start.stdout!.on('data', (d: Buffer) => (startOutput += d.toString()));
    start.stderr!.on('data', (d: Buffer) => (startOutput += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/"msg":"betrace started"/.test(startOutput)) {
      assert.ok(start.exitCode === null && Date.now() < deadline, `npm start:\n${startOutput}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const outputs: string[] = [];
    for (const command of commands.slice(1)) {
      const r = await sh(command.replaceAll('127.0.0.1:12011', apiAddress), repo, env);
      assert.equal(r.code, 0, `${command}:\n${r.stdout}\n${r.stderr}\n${startOutput.slice(-2000)}`);
      outputs.push(r.stdout);
    }
    const demoAt = commands.indexOf('npx betrace demo');
    assert.ok(demoAt > 0, 'the walkthrough runs npx betrace demo');
    const summary = /ends with\s+`([^`]+)`/.exec(text)?.[1];
    assert.ok(summary, 'the README quotes how the demo ends');
    assert.match(outputs[demoAt - 1]!, new RegExp(`^${summary}$`, 'm'));

    const listed = /lists\s+((?:`[a-z0-9.-]+`(?:,\s+|\s+and\s+)?)+)/.exec(text)?.[1];
    assert.ok(listed, 'the README lists the rule ids /v1/violations shows');
    const documented = [...listed.matchAll(/`([^`]+)`/g)].map((m) => m[1]!).sort();
    const curlAt = commands.findIndex((c) => c.startsWith('curl ') && c.includes('/v1/violations'));
    assert.ok(curlAt > 0, 'the walkthrough reads /v1/violations');
    const body = JSON.parse(outputs[curlAt - 1]!) as { violations: Array<{ rule_id: string }> };
    assert.deepEqual(body.violations.map((v) => v.rule_id).sort(), documented);
    assert.equal(documented.length, 4);
  });

  it('npx betrace --help there', async () => {
    const r = await sh('npx betrace --help', repo, env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: betrace \[options\] \[command\]/);
    assert.match(r.stdout, /^ {2}demo\b/m);
  });
});
