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
 * cut that to a few per second (test/bench/README.md). `replay`, which reads files
 * or a topic as fast as it can in one process, ran slower with them (measured)
 * and keeps V8's defaults.
 *
 * BETRACE_NODE_FLAGS replaces the flags (space-separated; empty: none, no restart).
 *
 * The restarted process also gets GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (unless
 * GLIBC_TUNABLES is set): glibc's malloc then asks the kernel for transparent
 * huge pages (madvise mode, the common default) for the memory it maps. Memory
 * the kernel hands out fresh is zeroed on first touch, one fault per 4 KiB page,
 * and the buffers spans pass through (Kafka responses, a worker's payload arena)
 * are mostly such memory: with 2 MiB pages a worker takes far fewer faults and
 * less CPU time (measured in test/bench/README.md). Ignored where
 * the C library is not glibc or the kernel offers no huge pages.
 */
export const DEFAULT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--initial-heap-size=512'];

/**
 * A process that runs workers without a receiver or forwarder (`--roles worker`, as
 * the Helm chart's worker deployment does): 32 MiB per semi-space, for its I/O thread
 * and its evaluation threads alike (V8 flags hold for every thread). Much of what a
 * worker allocates lives for a fetch, a violation batch (up to 50 ms) or a trace's
 * evaluation; with 8 MiB more of it outlives a young collection and is copied. Receivers
 * and forwarders keep 8 MiB: they were no faster with more. The measurements are in
 * test/bench/README.md.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32', '--initial-heap-size=512'];

/** The roles named by `--roles`/`-r` among `args` (the command's arguments); undefined when none is given (every role). */
export function rolesArgument(args: readonly string[]): string[] | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    let value: string | undefined;
    if (a === '--roles' || a === '-r') value = args[i + 1];
    else if (a.startsWith('--roles=')) value = a.slice('--roles='.length);
    else continue;
    return (value ?? '').split(',').map((r) => r.trim());
  }
  return undefined;
}

/** GLIBC_TUNABLES of the restarted process when none is set. */
export const DEFAULT_GLIBC_TUNABLES = 'glibc.malloc.hugetlb=1';

/** Set in the restarted process: it never restarts again. */
const APPLIED_ENV = 'BETRACE_NODE_FLAGS_APPLIED';

/** The node flags the command should run with (none but for `run`); `args`: the command's arguments. */
export function nodeFlagsFor(command: string | undefined, env: NodeJS.ProcessEnv, args: readonly string[] = []): readonly string[] {
  if (command !== 'run') return [];
  const override = env.BETRACE_NODE_FLAGS;
  if (override !== undefined) return override.split(/\s+/).filter((f) => f !== '');
  const roles = rolesArgument(args);
  const workerOnly = roles !== undefined && roles.includes('worker') && !roles.includes('receiver') && !roles.includes('forwarder');
  return workerOnly ? WORKER_NODE_FLAGS : DEFAULT_NODE_FLAGS;
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
  process.execve(process.execPath, args, restartEnv(process.env, flags));
}

/** The environment of the restarted process. */
export function restartEnv(env: NodeJS.ProcessEnv, flags: readonly string[]): NodeJS.ProcessEnv {
  return { ...env, GLIBC_TUNABLES: env.GLIBC_TUNABLES ?? DEFAULT_GLIBC_TUNABLES, [APPLIED_ENV]: flags.join(' ') };
}
