/** betrace as a real child process (`betrace run`), with its log lines at hand. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export interface BetraceProcess {
  readonly child: ChildProcess;
  readonly name: string;
  output(): string;
  /** Waits until the output matches, returns the first capture group (or the match). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

export function spawnBetrace(name: string, args: string[], env: Record<string, string> = {}): BetraceProcess {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    name,
    output: () => out,
    async waitFor(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = pattern.exec(out);
        if (m !== null) return m[1] ?? m[0];
        if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before ${pattern}:\n${out.slice(-3000)}`);
        if (Date.now() > deadline) throw new Error(`${name}: timed out waiting for ${pattern}:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * `betrace run` on the README's example config (config/betrace.yaml), on free loopback
 * ports and its own data directory; resolves once it has started.
 */
export async function startExampleBetrace(name: string, dataDir: string): Promise<{ b: BetraceProcess; grpc: string; api: string }> {
  const b = spawnBetrace(name, ['run', '--config', join(import.meta.dirname, '..', '..', 'config', 'betrace.yaml')], {
    BETRACE_RECEIVER_GRPC_ENDPOINT: '127.0.0.1:0',
    BETRACE_RECEIVER_HTTP_ENDPOINT: '127.0.0.1:0',
    BETRACE_API_ENDPOINT: '127.0.0.1:0',
    BETRACE_DATA_DIR: dataDir,
  });
  const grpc = await b.waitFor(/"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/);
  const api = await b.waitFor(/"address":"([^"]+)","msg":"admin API listening"/);
  await b.waitFor(/betrace started/);
  return { b, grpc, api };
}
