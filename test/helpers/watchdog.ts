// A test file must never hang the run. Loaded into every test file's process by
// `node --import ./test/helpers/watchdog.ts --test ...` (package.json "test"):
//
// - Once the file's tests and hooks have all ended, the process gets
//   BETRACE_TEST_EXIT_GRACE_MS (default 20 s) to exit on its own. A handle left open
//   (a server not closed after a failed start, a client still reconnecting) would
//   otherwise keep it alive forever; instead the open resources are listed and the
//   process exits with the tests' own status.
// - A file still running after BETRACE_TEST_FILE_TIMEOUT_MS (default 15 min: the
//   slowest file takes about 1.5 min, building a Go tool included) is stopped with a
//   failure, whatever it is waiting for (a hook has no timeout of its own).
//
// Exiting runs the 'exit' handlers, which kill the Kafka brokers a file started
// (test/helpers/kafka.ts). The test runner's own process is left alone.
import { after } from 'node:test';

function limitMs(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

function openResources(): string {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].map(([r, n]) => `${r} x${n}`).join(', ');
}

if (process.env.NODE_TEST_CONTEXT !== undefined) {
  const file = process.argv[1] ?? 'test file';
  const fileLimitMs = limitMs('BETRACE_TEST_FILE_TIMEOUT_MS', 15 * 60_000);
  setTimeout(() => {
    process.stderr.write(`watchdog: ${file} still running after ${fileLimitMs / 1000} s; stopping it. Open: ${openResources()}\n`);
    process.exit(1);
  }, fileLimitMs).unref();

  after(() => {
    const graceMs = limitMs('BETRACE_TEST_EXIT_GRACE_MS', 20_000);
    setTimeout(() => {
      process.stderr.write(`watchdog: ${file} did not exit ${graceMs / 1000} s after its tests ended; exiting. Open: ${openResources()}\n`);
      process.exit();
    }, graceMs).unref();
  });
}
