/** Runs the betrace CLI (src/cli/main.ts) as a user would, on this Node; resolves with its exit status and output. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

export function runBetrace(args: readonly string[], options: { cwd?: string } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: options.cwd, env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      if (status === -1) reject(new Error(`betrace ${args.join(' ')}: ${err?.message}\n${stderr}`));
      else resolve({ status, stdout, stderr });
    });
  });
}
