/** Runs the betrace CLI (src/cli/main.ts) as a user would, on this Node; resolves with its exit status and output. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
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

/** Runs `file` with `args` to its end; its exit code and output (a program that cannot be started rejects). */
export async function runProgram(file: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, args, { cwd: options.cwd, env: options.env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
