/**
 * Acceptance: the README's quick start. `npm start` (betrace run on
 * config/betrace.yaml) answers /ready; the process stops cleanly on SIGTERM.
 * Ports come from environment overrides so the test never collides with a
 * betrace already running on the default ports.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

describe('quick start', () => {
  it('npm start answers /ready with the example config and shuts down on SIGTERM', async () => {
    const child = spawn('npm', ['start', '--silent'], {
      cwd: root,
      env: {
        ...process.env,
        BETRACE_RECEIVER_GRPC_ENDPOINT: '127.0.0.1:0',
        BETRACE_RECEIVER_HTTP_ENDPOINT: '127.0.0.1:0',
        BETRACE_API_ENDPOINT: '127.0.0.1:0',
        BETRACE_DATA_DIR: join(root, 'data', `quick-start-${process.pid}`),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(String(code ?? signal))));
    try {
      const deadline = Date.now() + 30_000;
      let apiAddress: string | undefined;
      while (apiAddress === undefined && Date.now() < deadline) {
        apiAddress = /"address":"([^"]+)","msg":"admin API listening"/.exec(output)?.[1];
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(apiAddress, `the API started; output:\n${output}`);
      let ready = 0;
      while (ready !== 200 && Date.now() < deadline) {
        ready = (await fetch(`http://${apiAddress}/ready`)).status;
        if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(ready, 200);
      assert.equal((await fetch(`http://${apiAddress}/health`)).status, 200);
      const metrics = await (await fetch(`http://${apiAddress}/metrics`)).text();
      assert.match(metrics, /^# TYPE betrace_receiver_spans_received_total counter$/m);
      assert.match(metrics, /^process_resident_memory_bytes/m);
    } finally {
      // Signal the whole process group (npm, its shell and betrace), as a terminal's Ctrl-C would.
      process.kill(-child.pid!, 'SIGTERM');
    }
    // npm itself may die of the signal; betrace must have handled it and shut down cleanly.
    assert.ok(['0', 'SIGTERM'].includes(await exited), output);
    await new Promise((r) => setTimeout(r, 200));
    assert.match(output, /"msg":"shutting down"/);
    assert.doesNotMatch(output, /internal error|"level":50/);
  });
});
