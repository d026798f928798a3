/**
 * `betrace run` restarts itself once at start (same process id) with V8 heap
 * settings for streaming and glibc's malloc on transparent huge pages;
 * BETRACE_NODE_FLAGS replaces the flags, empty for none (and no restart).
 * Other commands run as started.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_GLIBC_TUNABLES, DEFAULT_NODE_FLAGS, WORKER_NODE_FLAGS, nodeFlagsFor } from '../../src/cli/node-flags.ts';
import { spawnBetrace } from '../helpers/process.ts';

/** The node arguments of a running process, as the kernel has them. */
function nodeArgs(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--'));
}

/** GLIBC_TUNABLES in a running process's environment, as the kernel has it. */
function tunables(pid: number): string | undefined {
  const entry = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith('GLIBC_TUNABLES='));
  return entry?.slice('GLIBC_TUNABLES='.length);
}

async function runOnce(env: Record<string, string>, seen?: { tunables?: string | undefined }): Promise<string[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'betrace-flags-'));
  const b = spawnBetrace('flags', ['run'], {
    BETRACE_RECEIVER_GRPC_ENDPOINT: '127.0.0.1:0',
    BETRACE_RECEIVER_HTTP_ENDPOINT: '127.0.0.1:0',
    BETRACE_API_ENDPOINT: '127.0.0.1:0',
    BETRACE_DATA_DIR: dataDir,
    ...env,
  });
  try {
    await b.waitFor(/betrace started/);
    if (seen !== undefined) seen.tunables = tunables(b.child.pid!);
    return nodeArgs(b.child.pid!);
  } finally {
    assert.equal(await b.stop(), 0, b.output());
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('node flags', () => {
  it('are the heap settings for run, none for other commands, as BETRACE_NODE_FLAGS says when set', () => {
    assert.deepEqual(nodeFlagsFor('run', {}), DEFAULT_NODE_FLAGS);
    assert.deepEqual(nodeFlagsFor('replay', {}), []);
    assert.deepEqual(nodeFlagsFor('rules', {}), []);
    assert.deepEqual(nodeFlagsFor(undefined, {}), []);
    assert.deepEqual(nodeFlagsFor('run', { BETRACE_NODE_FLAGS: ' --max-semi-space-size=32  --stack-size=2000 ' }), ['--max-semi-space-size=32', '--stack-size=2000']);
    assert.deepEqual(nodeFlagsFor('run', { BETRACE_NODE_FLAGS: '' }), []);
  });

  it('give a worker-only process the larger young generation, any process with a receiver or forwarder the default', () => {
    const flags = (...args: string[]) => nodeFlagsFor('run', {}, args);
    assert.deepEqual(flags('--config', 'c.yaml', '--roles', 'worker'), WORKER_NODE_FLAGS);
    assert.deepEqual(flags('-r', 'worker,api'), WORKER_NODE_FLAGS);
    assert.deepEqual(flags('--roles=worker'), WORKER_NODE_FLAGS);
    assert.deepEqual(flags('--roles', 'receiver,worker'), DEFAULT_NODE_FLAGS);
    assert.deepEqual(flags('--roles', 'worker,forwarder'), DEFAULT_NODE_FLAGS);
    assert.deepEqual(flags('--roles', 'api'), DEFAULT_NODE_FLAGS);
    assert.deepEqual(flags('--config', 'c.yaml'), DEFAULT_NODE_FLAGS, 'no --roles: every role');
    assert.deepEqual(nodeFlagsFor('run', { BETRACE_NODE_FLAGS: '--stack-size=2000' }, ['--roles', 'worker']), ['--stack-size=2000'], 'BETRACE_NODE_FLAGS wins');
    assert.notDeepEqual(WORKER_NODE_FLAGS, DEFAULT_NODE_FLAGS);
  });

  it('are in force in the running process, which keeps its process id, malloc on huge pages', async () => {
    const seen: { tunables?: string | undefined } = {};
    const running = await runOnce({}, seen);
    for (const flag of DEFAULT_NODE_FLAGS) assert.ok(running.includes(flag), `${flag} in ${running.join(' ')}`);
    assert.equal(seen.tunables, DEFAULT_GLIBC_TUNABLES);
  });

  it('leave GLIBC_TUNABLES as the environment sets it', async () => {
    const seen: { tunables?: string | undefined } = {};
    await runOnce({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, seen);
    assert.equal(seen.tunables, 'glibc.malloc.arena_max=2');
  });

  it('are replaced by BETRACE_NODE_FLAGS, and none at all when it is empty', async () => {
    assert.deepEqual(await runOnce({ BETRACE_NODE_FLAGS: '--max-semi-space-size=4' }), ['--max-semi-space-size=4']);
    assert.deepEqual(await runOnce({ BETRACE_NODE_FLAGS: '' }), []);
  });
});
