/**
 * Runs the helm binary (built from the Go module proxy by test/helpers/tools.ts) over
 * deploy/helm/betrace and parses what it renders.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, parseDocument } from 'yaml';
import { parseConfig, type Config } from '../../src/config/index.ts';
import { ensureGoTool } from '../helpers/tools.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const chartDir = join(repoRoot, 'deploy', 'helm', 'betrace');

/** A rendered Kubernetes object, loosely typed: tests read the fields they check. */
 
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [key: string]: any };

let binary: Promise<string> | undefined;

/** Path of helm; fails (never skips) with the reason when it cannot be built. */
export function helmBinary(): Promise<string> {
  binary ??= ensureGoTool('helm').catch((err: Error) => {
    throw new Error(`the deployment tests need helm, built with Go from the module proxy: ${err.message}`, { cause: err });
  });
  return binary;
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function helm(args: readonly string[]): Promise<HelmResult> {
  const bin = await helmBinary();
  return new Promise((resolve, reject) => {
    execFile(bin, [...args], { maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      // A non-zero exit is a result (the tests look at helm's message); failing to run is an error.
      if (err !== null && typeof err.code !== 'number') reject(new Error(`cannot run ${bin}: ${err.message}`, { cause: err }));
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

/**
 * Options of `helm lint` / `helm template`: values files (paths relative to the chart),
 * then --set pairs, then --set-file pairs (key = path relative to the repository).
 */
export interface ValuesOptions {
  readonly files?: readonly string[];
  readonly set?: Readonly<Record<string, string>>;
  readonly setFile?: Readonly<Record<string, string>>;
}

function valueArgs(options: ValuesOptions): string[] {
  const args: string[] = [];
  for (const f of options.files ?? []) args.push('-f', join(chartDir, f));
  for (const [k, v] of Object.entries(options.set ?? {})) args.push('--set', `${k}=${v}`);
  for (const [k, v] of Object.entries(options.setFile ?? {})) args.push('--set-file', `${k}=${join(repoRoot, v)}`);
  return args;
}

export function helmLint(options: ValuesOptions): Promise<HelmResult> {
  return helm(['lint', chartDir, '--strict', ...valueArgs(options)]);
}

export function helmTemplate(options: ValuesOptions): Promise<HelmResult> {
  return helm(['template', 'rel', chartDir, '--namespace', 'obs', ...valueArgs(options)]);
}

/** Renders the chart and parses every document; throws with helm's output if it fails. */
export async function renderChart(options: ValuesOptions): Promise<K8sObject[]> {
  const result = await helmTemplate(options);
  if (result.code !== 0) throw new Error(`helm template failed (${result.code}):\n${result.stderr}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(result.stdout)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  return objects;
}

export function ofKind(objects: readonly K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** The values sets every test renders: the defaults (plus the one required value) and ci/*.yaml. */
export const VALUES_SETS: ReadonlyArray<{ readonly name: string; readonly options: ValuesOptions }> = [
  { name: 'default values', options: { set: { 'auth.token': 'test-token' } } },
  { name: 'ci/all-in-one.yaml', options: { files: ['ci/all-in-one.yaml'] } },
  { name: 'ci/split-kafka-tls-sasl.yaml', options: { files: ['ci/split-kafka-tls-sasl.yaml'] } },
  { name: 'ci/monitoring.yaml', options: { files: ['ci/monitoring.yaml'] } },
];

/** Files the config names and the pod mounts (Secrets): a test stands in for each. */
const MOUNTED_FILE_KEYS = [
  ['api', 'token_file'],
  ['transport', 'kafka', 'tls', 'ca_file'],
  ['transport', 'kafka', 'tls', 'cert_file'],
  ['transport', 'kafka', 'tls', 'key_file'],
] as const;

/**
 * The chart's betrace.yaml as betrace loads it (parseConfig, the code's own validation),
 * with the files it names from mounted Secrets replaced by stand-ins; `raw` is the YAML
 * as rendered, for the paths the pods must mount.
 */
export function parseChartConfig(text: string, env: NodeJS.ProcessEnv = {}): { config: Config; raw: Record<string, unknown> } {
  const raw = parse(text) as Record<string, unknown>;
  const doc = parseDocument(text);
  const dir = mkdtempSync(join(tmpdir(), 'betrace-chart-'));
  try {
    for (const path of MOUNTED_FILE_KEYS) {
      const value = doc.getIn(path);
      if (typeof value !== 'string' || value === '') continue;
      const standIn = join(dir, path.join('.'));
      writeFileSync(standIn, path[0] === 'api' ? 'stand-in-token\n' : '-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n');
      doc.setIn(path, standIn);
    }
    return { config: parseConfig(doc.toString(), { source: 'chart betrace.yaml', baseDir: '/etc/betrace/config', env }), raw };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The value at a dotted path of parsed YAML. */
export function at(raw: unknown, dotted: string): unknown {
  let node = raw;
  for (const key of dotted.split('.')) node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}
