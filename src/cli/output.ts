/** Where a command writes: injectable so tests can capture it. */
export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const processOutput: Output = {
  stdout: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  stderr: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

/** Exit statuses of every command (docs/contract.md "Exit statuses"). */
export const ExitCode = { ok: 0, inputError: 1, violationsFound: 2 } as const;
