/**
 * V8 heap settings for `betrace run`, applied by restarting the process once at
 * start with them (process.execve: the same process id, no parent left
 * waiting), unless it already runs with them.
 *
 * Why: betrace moves most of its bytes through buffers outside the JavaScript
 * heap (request bodies, split payloads, Kafka requests and responses). V8
 * starts a full garbage collection each time 64 MiB more of such external
 * memory is held, and with its default limits for a small heap it also starts
 * one whenever the old generation has less room left than the young one; under
 * load that was a full collection every 50 to 100 ms, about half of a receiver's
 * CPU time. A young generation of 8 MiB per semi-space (so that short-lived
 * buffers are freed by the cheap young collections, before they add up) and an
 * old generation allowed to grow to 512 MiB before its first full collection
 * cut that to a few per second (README, Benchmarks). `replay`, which reads files
 * or a topic as fast as it can in one process, ran slower with them (measured)
 * and keeps V8's defaults.
 *
 * BETRACE_NODE_FLAGS replaces the flags (space-separated; empty: none, no restart).
 */
export const DEFAULT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--initial-heap-size=512'];

/** Set in the restarted process: it never restarts again. */
const APPLIED_ENV = 'BETRACE_NODE_FLAGS_APPLIED';

/** The node flags the command should run with (none but for `run`). */
export function nodeFlagsFor(command: string | undefined, env: NodeJS.ProcessEnv): readonly string[] {
  if (command !== 'run') return [];
  const override = env.BETRACE_NODE_FLAGS;
  return override === undefined ? DEFAULT_NODE_FLAGS : override.split(/\s+/).filter((f) => f !== '');
}

/**
 * Restarts this process with `flags` before anything else happened in it, when
 * it runs without them and can (Node >= 22.15 on POSIX); otherwise returns and
 * the command runs on V8's defaults.
 */
export function restartWithNodeFlags(flags: readonly string[]): void {
  if (flags.length === 0 || process.env[APPLIED_ENV] !== undefined) return;
  if (flags.every((f) => process.execArgv.includes(f))) return;
  if (typeof process.execve !== 'function' || process.platform === 'win32') return;
  const args = [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)];
  process.execve(process.execPath, args, { ...process.env, [APPLIED_ENV]: flags.join(' ') });
}
