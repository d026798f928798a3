// External command-line tools for the test suite, built from source through the Go
// module proxy (the only route to them on a machine without Docker or GitHub access):
//
//   helm          helm.sh/helm/v3/cmd/helm
//   telemetrygen  github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen
//   otelcol-builder  go.opentelemetry.io/collector/cmd/builder (builds the test Collector, otelcol.ts)
//
// Binaries land in `<cache>/bin` (see betraceCacheDir) and are built once: a
// `<cache>/bin/.<name>.version` marker records the pinned version they were built
// from, so bumping a pin below rebuilds on next use.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Root of the tool cache, outside the repository:
 * `${BETRACE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/betrace}`.
 */
export function betraceCacheDir(): string {
  const explicit = process.env.BETRACE_CACHE;
  if (explicit) return path.resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg ? path.resolve(xdg) : path.join(os.homedir(), '.cache'), 'betrace');
}

export type GoToolName = 'helm' | 'telemetrygen' | 'otelcol-builder';

/** Pinned versions; each resolves on proxy.golang.org (`go list -m -versions <module>`). */
export const GO_TOOLS: Readonly<Record<GoToolName, { readonly pkg: string; readonly version: string }>> = {
  helm: { pkg: 'helm.sh/helm/v3/cmd/helm', version: 'v3.22.0' },
  telemetrygen: {
    pkg: 'github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen',
    version: 'v0.161.0',
  },
  'otelcol-builder': { pkg: 'go.opentelemetry.io/collector/cmd/builder', version: 'v0.165.0' },
};

const inFlight = new Map<GoToolName, Promise<string>>();

/**
 * Path of the named tool's binary, running `go install <pkg>@<version>` into
 * `<cache>/bin` the first time. Concurrent calls in one process share one build.
 */
export function ensureGoTool(name: GoToolName): Promise<string> {
  let pending = inFlight.get(name);
  if (!pending) {
    pending = installGoTool(name);
    inFlight.set(name, pending);
    // A failed build may be retried by a later call.
    pending.catch(() => inFlight.delete(name));
  }
  return pending;
}

async function installGoTool(name: GoToolName): Promise<string> {
  const tool = GO_TOOLS[name];
  if (!tool) throw new Error(`ensureGoTool: unknown tool ${String(name)}`);
  const binDir = path.join(betraceCacheDir(), 'bin');
  const command = tool.pkg.split('/').pop()!;
  const binary = path.join(binDir, process.platform === 'win32' ? `${command}.exe` : command);
  const marker = path.join(binDir, `.${name}.version`);
  if (existsSync(binary) && (await readFile(marker, 'utf8').catch(() => '')).trim() === tool.version) {
    return binary;
  }
  await mkdir(binDir, { recursive: true });
  const spec = `${tool.pkg}@${tool.version}`;
  const { code, output } = await runTool('go', ['install', spec], {
    ...process.env,
    GOBIN: binDir,
    CGO_ENABLED: process.env.CGO_ENABLED ?? '0',
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      throw new Error(
        `ensureGoTool(${name}): the \`go\` command was not found on PATH. ` +
          `Install Go (https://go.dev/dl/) so the test suite can build ${spec}, ` +
          `or put a prebuilt ${name} binary at ${binary} and write "${tool.version}" to ${marker}.`,
        { cause: err },
      );
    }
    throw err;
  });
  if (code !== 0 || !existsSync(binary)) {
    throw new Error(`ensureGoTool(${name}): \`go install ${spec}\` failed (exit ${code}):\n${output.slice(-4000)}`);
  }
  await writeFile(marker, `${tool.version}\n`);
  return binary;
}

/** Runs a command to its end (in `cwd`, default the current directory), with its stdout and stderr (the last 32-64k characters) together. */
export function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > 64_000) output = output.slice(-32_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** Where a tool built by the suite lives in the cache, and its version marker. */
export function cachedTool(name: string): { binDir: string; binary: string; marker: string } {
  const binDir = path.join(betraceCacheDir(), 'bin');
  return { binDir, binary: path.join(binDir, name), marker: path.join(binDir, `.${name}.version`) };
}

/** The cached binary when its marker names `version`, else undefined. */
export async function cachedToolAt(name: string, version: string): Promise<string | undefined> {
  const { binary, marker } = cachedTool(name);
  return existsSync(binary) && (await readFile(marker, 'utf8').catch(() => '')).trim() === version ? binary : undefined;
}

/**
 * Runs `go ARGS` in `cwd` for the build of `spec` by `caller` (ensureJaeger, …), resolving to its
 * output; a missing `go` or a failed command throws with what to do (install Go, or put the
 * binary and its marker in the cache).
 */
export function goRunner(caller: string, spec: string, tool: { binary: string; marker: string; version: string }, env: NodeJS.ProcessEnv): (args: string[], cwd: string) => Promise<string> {
  return async (args, cwd) => {
    const { code, output } = await runTool('go', args, env, cwd).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new Error(
          `${caller}: the \`go\` command was not found on PATH. Install Go (https://go.dev/dl/) so the test ` +
            `suite can build ${spec} from the Go module proxy, or put a ${spec} binary at ${tool.binary} and write "${tool.version}" to ${tool.marker}.`,
          { cause: err },
        );
      }
      throw err;
    });
    if (code !== 0) {
      throw new Error(
        `${caller}: \`go ${args.join(' ')}\` failed (exit ${code}) in ${cwd}; building ${spec} needs Go and the ` +
          `Go module proxy (GOPROXY=${process.env.GOPROXY ?? 'default'}):\n${output.slice(-4000)}`,
      );
    }
    return output;
  };
}

/** Moves a binary built in `work` into the cache, writes its version marker, removes `work`. */
export async function installBuiltTool(name: string, built: string, version: string, work: string): Promise<string> {
  const { binDir, binary, marker } = cachedTool(name);
  await mkdir(binDir, { recursive: true });
  await rm(binary, { force: true });
  await rename(built, binary);
  await writeFile(marker, `${version}\n`);
  await rm(work, { recursive: true, force: true });
  return binary;
}
