/**
 * A real Prometheus Alertmanager in tests (`cmd/alertmanager` of
 * github.com/prometheus/alertmanager), built from the Go module proxy into the tool cache
 * once per version, on loopback with clustering off.
 *
 * The module zip has no UI assets (`ui/app/dist`, built from Elm and Node sources by the
 * project's Makefile, and embedded with go:embed), so neither `go install` nor `go get -tool`
 * builds it. The build copies the module's source from the module cache, puts a placeholder
 * page where the assets go, and builds the command there: the API (`/api/v2`) is unchanged,
 * the UI is a blank page.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePorts } from './kafka.ts';
import { betraceCacheDir, cachedTool, cachedToolAt, goRunner, installBuiltTool, runTool } from './tools.ts';

export const ALERTMANAGER_MODULE = 'github.com/prometheus/alertmanager';
export const ALERTMANAGER_VERSION = 'v0.35.0';
const BINARY_NAME = 'alertmanager';

let building: Promise<string> | undefined;

/** Path of the Alertmanager binary, built the first time (a minute or two with a cold Go cache). */
export function ensureAlertmanager(): Promise<string> {
  building ??= build();
  building.catch(() => (building = undefined));
  return building;
}

async function build(): Promise<string> {
  const { binary, marker } = cachedTool(BINARY_NAME);
  const cached = await cachedToolAt(BINARY_NAME, ALERTMANAGER_VERSION);
  if (cached !== undefined) return cached;
  const work = path.join(betraceCacheDir(), 'alertmanager-build');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const spec = `${ALERTMANAGER_MODULE}@${ALERTMANAGER_VERSION}`;
  const go = goRunner('ensureAlertmanager', spec, { binary, marker, version: ALERTMANAGER_VERSION }, { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' });
  const info = JSON.parse(await go(['mod', 'download', '-json', spec], work)) as { Dir?: string };
  if (info.Dir === undefined) throw new Error(`ensureAlertmanager: go mod download gave no source directory for ${spec}`);
  const src = path.join(work, 'src');
  await cp(info.Dir, src, { recursive: true });
  // The module cache is read-only; the copy must take the placeholder assets.
  const chmod = await runTool('chmod', ['-R', 'u+w', src], process.env);
  if (chmod.code !== 0) throw new Error(`ensureAlertmanager: chmod failed: ${chmod.output}`);
  for (const ui of ['elm', 'mantine']) {
    await mkdir(path.join(src, 'ui', 'app', 'dist', ui), { recursive: true });
    await writeFile(path.join(src, 'ui', 'app', 'dist', ui, 'index.html'), '<!doctype html><title>Alertmanager</title><p>UI assets not built (test build).</p>\n');
  }
  const built = path.join(work, BINARY_NAME);
  const ldflags = `-X github.com/prometheus/common/version.Version=${ALERTMANAGER_VERSION.slice(1)}`;
  await go(['build', '-trimpath', `-ldflags=${ldflags}`, '-o', built, './cmd/alertmanager'], src);
  return installBuiltTool(BINARY_NAME, built, ALERTMANAGER_VERSION, work);
}

export interface Alertmanager {
  /** `http://127.0.0.1:PORT`: betrace's notifications.alertmanager.url. */
  readonly url: string;
  output(): string;
  close(): Promise<void>;
}

/**
 * Starts Alertmanager with one route to a webhook receiver at `webhookUrl`, grouped by
 * `groupBy`, every listener on loopback, clustering off; waits until /-/ready answers.
 */
export async function startAlertmanager(options: { webhookUrl: string; groupBy: readonly string[]; groupWait?: string; groupInterval?: string }): Promise<Alertmanager> {
  const binary = await ensureAlertmanager();
  const [port] = await freePorts(1);
  const dir = await mkdtemp(path.join(tmpdir(), 'betrace-alertmanager-'));
  const configFile = path.join(dir, 'alertmanager.yml');
  await writeFile(
    configFile,
    stringify({
      route: { receiver: 'hook', group_by: [...options.groupBy], group_wait: options.groupWait ?? '1s', group_interval: options.groupInterval ?? '1s', repeat_interval: '4h' },
      receivers: [{ name: 'hook', webhook_configs: [{ url: options.webhookUrl, send_resolved: false }] }],
    }),
  );
  const child: ChildProcess = spawn(
    binary,
    [`--config.file=${configFile}`, `--storage.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
    { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Alertmanager exited (${child.exitCode}) at start:\n${out.slice(-3000)}`);
    const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (res?.ok === true) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`Alertmanager did not get ready in 30 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    output: () => out,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
