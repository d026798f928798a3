/**
 * Loading the configuration: YAML file → environment overrides → schema
 * validation (unknown keys rejected, every error naming its key and value) →
 * normalized, frozen Config. Errors are values (ConfigError), never exits.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import type { Config, KafkaConfig, ListenConfig, SpoolConfig, TlsConfig } from './config.ts';
import { configSchema, type SchemaNode } from './schema.ts';
import { DOWNSTREAM_ENDPOINT_VARIABLES } from './self-loop.ts';
import { isLoopbackHost, parseDurationMs, parseEndpoint, parseSizeBytes } from './units.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
}

type Raw = Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, verbose: true, useDefaults: true, strict: false, allowUnionTypes: true });
ajv.addKeyword('x-env');
ajv.addFormat('duration', { type: 'string', validate: (s: string) => parseDurationMs(s) !== undefined });
ajv.addFormat('endpoint', { type: 'string', validate: (s: string) => parseEndpoint(s) !== undefined });
ajv.addFormat('size', { type: 'string', validate: (s: string) => parseSizeBytes(s) !== undefined });
const validate = ajv.compile(configSchema);

/** Environment variables that override keys: name → YAML path. */
const ENV_OVERRIDES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['BETRACE_RECEIVER_GRPC_ENDPOINT', ['receiver', 'grpc', 'endpoint']],
  ['BETRACE_RECEIVER_HTTP_ENDPOINT', ['receiver', 'http', 'endpoint']],
  ['BETRACE_API_ENDPOINT', ['api', 'endpoint']],
  ['BETRACE_API_TOKEN', ['api', 'token']],
  ['BETRACE_RECEIVER_TOKEN', ['receiver', 'auth_token']],
  ['BETRACE_TRANSPORT', ['transport', 'kind']],
  ['BETRACE_KAFKA_SASL_PASSWORD', ['transport', 'kafka', 'sasl', 'password']],
  ['BETRACE_DATA_DIR', ['data_dir']],
  ['BETRACE_LOG_LEVEL', ['log', 'level']],
  // The general before the more specific (applied later, so it wins): BETRACE_DOWNSTREAM_ENDPOINT last.
  ...[...DOWNSTREAM_ENDPOINT_VARIABLES].reverse().map((name) => [name, ['downstream', 'endpoint']] as const),
];

function setPath(target: Raw, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Raw;
  }
  node[path[path.length - 1]!] = value;
}

/** OTEL_EXPORTER_OTLP_HEADERS: comma-separated key=value pairs, values URL-encoded. */
function parseHeaderList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    out[decodeURIComponent(pair.slice(0, i).trim())] = decodeURIComponent(pair.slice(i + 1).trim());
  }
  return out;
}

function applyEnv(raw: Raw, env: NodeJS.ProcessEnv): void {
  for (const [name, path] of ENV_OVERRIDES) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, path, value);
  }
  const allow = env.BETRACE_API_ALLOW_UNAUTHENTICATED;
  if (allow !== undefined && allow !== '') {
    // A boolean key: true/false as text; anything else is left for the schema to refuse.
    setPath(raw, ['api', 'allow_unauthenticated'], allow === 'true' ? true : allow === 'false' ? false : allow);
  }
  const brokers = env.BETRACE_KAFKA_BROKERS;
  if (brokers !== undefined && brokers !== '') {
    setPath(raw, ['transport', 'kafka', 'brokers'], brokers.split(',').map((b) => b.trim()).filter((b) => b !== ''));
  }
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const downstream = (raw.downstream ??= {}) as Raw;
    const headers = (downstream.headers ??= {}) as Record<string, string>;
    Object.assign(headers, parseHeaderList(value));
  }
}

function yamlPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function schemaAt(path: readonly string[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = configSchema;
  for (const key of path) node = node?.properties?.[key];
  return node;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function describeError(e: ErrorObject): { path: string; message: string } {
  const path = yamlPath(e.instancePath);
  const value = e.data;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const full = path === '' ? key : `${path}.${key}`;
      const known = Object.keys(schemaAt(path === '' ? [] : path.split('.'))?.properties ?? {});
      const suggestion = closest(key, known);
      return {
        path: full,
        message: `unknown key ${full}${suggestion ? ` (did you mean ${path === '' ? suggestion : `${path}.${suggestion}`}?)` : ''}`,
      };
    }
    case 'format': {
      const format = (e.params as { format: string }).format;
      const what =
        format === 'duration'
          ? 'a duration with a unit (e.g. "5s", "250ms")'
          : format === 'size'
            ? 'a size (bytes, or e.g. "16MiB")'
            : 'an endpoint host:port with a port 0-65535';
      return { path, message: `${path} must be ${what}, got ${show(value)}` };
    }
    case 'enum':
      return {
        path,
        message: `${path} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}, got ${show(value)}`,
      };
    case 'type':
      return { path, message: `${path} must be ${(e.params as { type: string }).type}, got ${show(value)}` };
    case 'minimum':
    case 'maximum':
      return { path, message: `${path} must be ${e.keyword === 'minimum' ? '>=' : '<='} ${(e.params as { limit: number }).limit}, got ${show(value)}` };
    case 'oneOf':
      return { path, message: `${path} must be a size (bytes, or e.g. "16MiB"), got ${show(value)}` };
    default:
      return { path, message: `${path || 'config'} ${e.message ?? 'is invalid'}, got ${show(value)}` };
  }
}

/** Line of the YAML node at a dotted path, for error messages. */
function lineOf(doc: Document | undefined, path: string, lineStarts: number[], atKey = false): number | undefined {
  if (doc === undefined || path === '') return undefined;
  let node: Node | null | undefined = doc.contents;
  const keys = path.split('.');
  for (const [i, key] of keys.entries()) {
    if (isMap(node)) {
      const pair: { key: unknown; value: unknown } | undefined = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (pair === undefined) return undefined;
      node = atKey && i === keys.length - 1 ? (pair.key as Node) : ((pair.value as Node | null) ?? (pair.key as Node));
    } else if (isSeq(node)) node = node.items[Number(key)] as Node | undefined;
    else return undefined;
  }
  const offset = node?.range?.[0];
  if (offset === undefined) return undefined;
  let line = 0;
  while (line + 1 < lineStarts.length && lineStarts[line + 1]! <= offset) line++;
  return line + 1;
}

function positiveDuration(path: string, text: string, allowZero: boolean): number {
  const ms = parseDurationMs(text)!;
  if (!allowZero && ms <= 0) throw new ConfigError(`${path} must be a duration > 0, got ${show(text)}`);
  return ms;
}

function listen(path: string, raw: Raw): ListenConfig {
  const ep = parseEndpoint(raw.endpoint as string)!;
  return { enabled: raw.enabled as boolean, host: ep.host, port: ep.port };
}

function normalize(raw: Raw, baseDir: string): Config {
  const r = raw as Record<string, Raw>;
  const receiver = r.receiver!;
  const transport = r.transport!;
  const downstream = r.downstream!;
  const worker = r.worker!;
  const api = r.api!;
  const size = (v: unknown) => parseSizeBytes(v as string | number)!;
  const dur = (path: string, v: unknown, allowZero = false) => positiveDuration(path, v as string, allowZero);

  let token = api.token as string;
  const tokenFile = api.token_file as string;
  if (token === '' && tokenFile !== '') {
    try {
      token = readFileSync(resolve(baseDir, tokenFile), 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`api.token_file cannot be read, got ${show(tokenFile)}: ${(err as Error).message}`);
    }
  }
  const apiListen = listen('api', api);
  if (apiListen.enabled && token === '' && api.allow_unauthenticated !== true && !isLoopbackHost(apiListen.host)) {
    throw new ConfigError(
      `api.endpoint binds ${show(api.endpoint)} (not loopback) and no API token is set, so anyone who reaches it could change the rules: ` +
        'set BETRACE_API_TOKEN, api.token_file or api.token; bind 127.0.0.1; or, only behind your own authentication, set api.allow_unauthenticated: true (BETRACE_API_ALLOW_UNAUTHENTICATED=true)',
    );
  }
  const endpointText = (downstream.endpoint as string).trim();
  if (endpointText !== '' && !/^(https?:\/\/)?[^\s/]+:\d{1,5}\/?$/.test(endpointText)) {
    throw new ConfigError(`downstream.endpoint must be a URL like http://host:4317, got ${show(endpointText)}`);
  }
  const maxRequestBytes = size(receiver.max_request_bytes);
  if (maxRequestBytes < 1024) throw new ConfigError(`receiver.max_request_bytes must be at least 1KiB, got ${show(receiver.max_request_bytes)}`);
  const maxReceivingBytes = size(receiver.max_receiving_bytes);
  if (maxReceivingBytes < maxRequestBytes) {
    throw new ConfigError(`receiver.max_receiving_bytes must be at least receiver.max_request_bytes (${maxRequestBytes} bytes), got ${show(receiver.max_receiving_bytes)}`);
  }
  const grpcRaw = receiver.grpc as Raw;
  const flowControlWindowBytes = size(grpcRaw.flow_control_window);
  if (flowControlWindowBytes < 65_535 || flowControlWindowBytes > 2 ** 30) {
    throw new ConfigError(`receiver.grpc.flow_control_window must be between 64KiB and 1GiB, got ${show(grpcRaw.flow_control_window)}`);
  }

  const dataDir = resolve(baseDir, raw.data_dir as string);
  const spool = spoolConfig(receiver.spool as Raw, transport.kind as string, baseDir, dataDir);

  return {
    baseDir,
    receiver: {
      grpc: { ...listen('receiver.grpc', grpcRaw), flowControlWindowBytes, maxConcurrentStreams: grpcRaw.max_concurrent_streams as number },
      http: listen('receiver.http', receiver.http as Raw),
      maxRequestBytes,
      maxInFlightBytes: size(receiver.max_in_flight_bytes),
      maxReceivingBytes,
      maxConnections: receiver.max_connections as number,
      readTimeoutMs: dur('receiver.read_timeout', receiver.read_timeout),
      retryAfterMs: dur('receiver.retry_after', receiver.retry_after),
      maxSpansPerRequest: receiver.max_spans_per_request as number,
      authToken: receiver.auth_token as string,
      tls: tlsConfig('receiver.tls', receiver.tls as Raw, baseDir),
      spool,
    },
    transport: {
      kind: transport.kind as 'embedded' | 'kafka',
      partitions: transport.partitions as number,
      partitioner: transport.partitioner as 'sarama' | 'murmur2',
      maxQueuedBytes: size(transport.max_queued_bytes),
      kafka: kafkaConfig(transport.kafka as Raw, baseDir),
    },
    downstream: {
      endpoint: endpointText,
      headers: { ...(downstream.headers as Record<string, string>) },
      timeoutMs: dur('downstream.timeout', downstream.timeout),
      compression: downstream.compression as 'none' | 'gzip',
      maxQueueSpans: downstream.max_queue_spans as number,
      maxBatchSpans: downstream.max_batch_spans as number,
      batchTimeoutMs: dur('downstream.batch_timeout', downstream.batch_timeout),
      maxRetryTimeMs: dur('downstream.max_retry_time', downstream.max_retry_time),
    },
    forwarder: { enabled: (r.forwarder!.enabled as boolean) && endpointText !== '' },
    worker: {
      traceIdleTimeoutMs: dur('worker.trace_idle_timeout', worker.trace_idle_timeout),
      traceMaxDurationMs: dur('worker.trace_max_duration', worker.trace_max_duration),
      rootIdleTimeoutMs: dur('worker.root_idle_timeout', worker.root_idle_timeout, true),
      maxLiveTraces: worker.max_live_traces as number,
      maxSpansPerTrace: worker.max_spans_per_trace as number,
      lateSpanGraceMs: dur('worker.late_span_grace', worker.late_span_grace, true),
      evaluationThreads: worker.evaluation_threads as number,
      evaluationBudgetMs: dur('worker.evaluation_budget', worker.evaluation_budget),
      evaluationStallMarginMs: dur('worker.evaluation_stall_margin', worker.evaluation_stall_margin),
      quarantineAfter: worker.quarantine_after as number,
      quarantineWindowMs: dur('worker.quarantine_window', worker.quarantine_window),
      maxTraceBytes: size(worker.max_trace_bytes),
      maxAttributesPerSpan: worker.max_attributes_per_span as number,
      maxAttributeValueLength: worker.max_attribute_value_length as number,
    },
    rules: { paths: (r.rules!.paths as string[]).map((p) => resolve(baseDir, p)) },
    api: {
      ...apiListen,
      token,
      allowUnauthenticated: api.allow_unauthenticated as boolean,
      replayDir: (api.replay_dir as string) === '' ? '' : resolve(baseDir, api.replay_dir as string),
      tls: tlsConfig('api.tls', api.tls as Raw, baseDir),
      maxConnections: api.max_connections as number,
      readTimeoutMs: dur('api.read_timeout', api.read_timeout),
    },
    dataDir,
    shutdownTimeoutMs: dur('shutdown_timeout', raw.shutdown_timeout),
    log: { level: (r.log!.level as string) },
  };
}

function spoolConfig(raw: Raw, transportKind: string, baseDir: string, dataDir: string): SpoolConfig {
  const enabled = raw.enabled as boolean;
  const maxBytes = parseSizeBytes(raw.max_bytes as string | number)!;
  const segmentBytes = parseSizeBytes(raw.segment_bytes as string | number)!;
  if (enabled && transportKind !== 'kafka') {
    throw new ConfigError(
      `receiver.spool.enabled needs transport.kind kafka, got ${show(transportKind)}: the embedded transport holds spans in this process's memory, so a disk spool in front of it would keep nothing across a restart`,
    );
  }
  if (segmentBytes < 64 * 1024) throw new ConfigError(`receiver.spool.segment_bytes must be at least 64KiB, got ${show(raw.segment_bytes)}`);
  if (segmentBytes * 4 > maxBytes) {
    throw new ConfigError(`receiver.spool.max_bytes must be at least 4 × receiver.spool.segment_bytes (${segmentBytes * 4} bytes), got ${show(raw.max_bytes)}`);
  }
  const dir = raw.dir as string;
  return {
    enabled,
    dir: dir === '' ? join(dataDir, 'spool') : resolve(baseDir, dir),
    maxBytes,
    segmentBytes,
    shutdownTimeoutMs: positiveDuration('receiver.spool.shutdown_timeout', raw.shutdown_timeout as string, true),
    degradedAfterMs: positiveDuration('receiver.spool.degraded_after', raw.degraded_after as string, false),
  };
}

function tlsConfig(path: string, raw: Raw, baseDir: string): TlsConfig | undefined {
  const cert = raw.cert_file as string;
  const key = raw.key_file as string;
  const ca = raw.client_ca_file as string;
  if (cert === '' && key === '' && ca === '') return undefined;
  if (cert === '' || key === '') throw new ConfigError(`${path}.cert_file and ${path}.key_file must both be set for TLS, got ${show({ cert_file: cert, key_file: key })}`);
  const files = { certFile: resolve(baseDir, cert), keyFile: resolve(baseDir, key), clientCaFile: ca === '' ? '' : resolve(baseDir, ca) };
  for (const [name, file] of [['cert_file', files.certFile], ['key_file', files.keyFile], ['client_ca_file', files.clientCaFile]] as const) {
    if (file !== '') readPem(file, `${path}.${name}`, baseDir);
  }
  return files;
}

function readPem(path: string, key: string, baseDir: string): string {
  if (path === '') return '';
  try {
    return readFileSync(resolve(baseDir, path), 'utf8');
  } catch (err) {
    throw new ConfigError(`${key} cannot be read, got ${show(path)}: ${(err as Error).message}`);
  }
}

function kafkaConfig(k: Raw, baseDir: string): KafkaConfig {
  const tls = k.tls as Raw;
  const sasl = k.sasl as Raw;
  const mechanism = sasl.mechanism as KafkaConfig['sasl']['mechanism'];
  if (mechanism !== 'none' && (sasl.username === '' || sasl.password === '')) {
    throw new ConfigError(`transport.kafka.sasl.username and password must be set for mechanism ${show(mechanism)}`);
  }
  return {
    brokers: k.brokers as string[],
    clientId: k.client_id as string,
    spansTopic: k.spans_topic as string,
    rulesTopic: k.rules_topic as string,
    violationsTopic: k.violations_topic as string,
    workerGroup: k.worker_group as string,
    forwarderGroup: k.forwarder_group as string,
    createTopics: k.create_topics as boolean,
    replicationFactor: k.replication_factor as number,
    retentionMs: positiveDuration('transport.kafka.retention', k.retention as string, true),
    maxRecordBytes: k.max_record_bytes as number,
    lingerMs: positiveDuration('transport.kafka.linger', k.linger as string, true),
    requestTimeoutMs: positiveDuration('transport.kafka.request_timeout', k.request_timeout as string, false),
    ackTimeoutMs: positiveDuration('transport.kafka.ack_timeout', k.ack_timeout as string, false),
    groupProtocol: k.group_protocol as 'consumer' | 'classic',
    sessionTimeoutMs: positiveDuration('transport.kafka.session_timeout', k.session_timeout as string, false),
    tls: {
      enabled: tls.enabled as boolean,
      ca: readPem(tls.ca_file as string, 'transport.kafka.tls.ca_file', baseDir),
      cert: readPem(tls.cert_file as string, 'transport.kafka.tls.cert_file', baseDir),
      key: readPem(tls.key_file as string, 'transport.kafka.tls.key_file', baseDir),
    },
    sasl: { mechanism, username: sasl.username as string, password: sasl.password as string },
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates a configuration given as YAML text. `source` names it in messages.
 * Throws ConfigError with one line naming the key and the bad value.
 */
export function parseConfig(
  text: string,
  options: { source?: string; baseDir?: string; env?: NodeJS.ProcessEnv } = {},
): Config {
  const source = options.source ?? 'config';
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0].line;
    throw new ConfigError(`${source}${line ? `:${line}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${source}: the configuration must be a YAML mapping`);
  }
  const raw = structuredClone(value) as Raw;
  applyEnv(raw, options.env ?? process.env);
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1);
  if (!validate(raw)) {
    const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'if');
    // The most specific error first: oneOf children repeat the parent's problem.
    const primary = errors.find((e) => e.keyword !== 'oneOf' && !errors.some((o) => o.keyword === 'oneOf' && o.instancePath === e.instancePath)) ?? errors[0]!;
    const { path, message } = describeError(primary);
    const line = lineOf(doc, path, lineStarts, primary.keyword === 'additionalProperties');
    throw new ConfigError(`${source}${line ? `:${line}` : ''}: ${message}`);
  }
  try {
    return deepFreeze(normalize(raw, options.baseDir ?? process.cwd()));
  } catch (err) {
    if (err instanceof ConfigError) {
      const path = err.message.split(' ')[0]!;
      const line = lineOf(doc, path, lineStarts);
      throw new ConfigError(`${source}${line ? `:${line}` : ''}: ${err.message}`);
    }
    throw err;
  }
}

/** Loads and validates a configuration file (or the defaults when `path` is undefined). */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  if (path === undefined) return parseConfig('{}', { source: 'defaults', env });
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file: ${(err as Error).message}`);
  }
  return parseConfig(text, { source: path, baseDir: dirname(resolve(path)), env });
}
