/**
 * Loading the configuration: YAML file → environment overrides → schema
 * validation (unknown keys rejected) → normalized, frozen Config. Every problem of
 * a configuration is reported at once, one line each, naming its key, the form the
 * value should take and the value given, at the value's line:column in the file or
 * naming the environment variable it came from. Errors are values (ConfigError),
 * never exits.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import { schemaErrorMessages, shown as show } from '../expected.ts';
import { SEVERITIES, readDestinationValue, type AlertProblem, type Destination, type Severity } from '../rules/index.ts';
import type { Config, NotificationsConfig, HistoryConfig, KafkaConfig, ListenConfig, SpoolConfig, TlsConfig } from './config.ts';
import { configSchema, schemaKeys, type SchemaNode } from './schema.ts';
import { DOWNSTREAM_ENDPOINT_VARIABLES } from './self-loop.ts';
import { isLoopbackHost, parseDurationMs, parseEndpoint, parseSizeBytes } from './units.ts';

/** One problem of a configuration. */
export interface ConfigProblem {
  /** Dotted key path ('' for the whole configuration). */
  readonly path: string;
  /** Names the key, what it must be and what it got. */
  readonly message: string;
  /** 1-based position of the key or value in the file, when it is there. */
  readonly line?: number;
  readonly column?: number;
  /** The environment variable the value came from. */
  readonly env?: string;
}

/** `message` holds one line per problem (file:line:col: … or environment variable NAME: …). */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];
  constructor(message: string, problems: readonly ConfigProblem[] = []) {
    super(message);
    this.problems = problems;
  }
}

/** Reports a problem at a key of the configuration (normalization goes on to find the others). */
type Fail = (path: string, message: string) => void;

type Raw = Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, verbose: true, useDefaults: true, strict: false, allowUnionTypes: true });
ajv.addKeyword('x-env');
ajv.addFormat('duration', { type: 'string', validate: (s: string) => parseDurationMs(s) !== undefined });
ajv.addFormat('endpoint', { type: 'string', validate: (s: string) => parseEndpoint(s) !== undefined });
ajv.addFormat('size', { type: 'string', validate: (s: string) => parseSizeBytes(s) !== undefined });
const validate = ajv.compile(configSchema);

/**
 * The keys an environment variable sets (the schema's `x-env`), and the standard OpenTelemetry
 * variables that set downstream.endpoint too: the general before the more specific, each
 * applied after the one before, so BETRACE_DOWNSTREAM_ENDPOINT wins. OTEL_EXPORTER_OTLP_HEADERS
 * (the schema's `x-env` of downstream.headers) adds to a map and is read apart.
 */
const ENV_OVERRIDES: ReadonlyArray<readonly [string, readonly string[], SchemaNode]> = (() => {
  const downstream = [...DOWNSTREAM_ENDPOINT_VARIABLES].reverse().filter((name) => name !== 'BETRACE_DOWNSTREAM_ENDPOINT');
  const keyed = schemaKeys().filter(([, node]) => node['x-env'] !== undefined && node.type !== 'object');
  const endpointNode = keyed.find(([path]) => path === 'downstream.endpoint')![1];
  return [
    ...downstream.map((name) => [name, ['downstream', 'endpoint'], endpointNode] as const),
    ...keyed.map(([path, node]) => [node['x-env']!, path.split('.'), node] as const),
  ];
})();

/** A variable's text as the key's type: a boolean from true/false, a list from comma-separated items. */
function envValue(text: string, node: SchemaNode): unknown {
  if (node.type === 'boolean') return text === 'true' ? true : text === 'false' ? false : text;
  if (node.type === 'array') return text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  return text;
}

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

/** Applies the environment overrides; returns which variable set each dotted key path. */
function applyEnv(raw: Raw, env: NodeJS.ProcessEnv): Map<string, string> {
  const origins = new Map<string, string>();
  for (const [name, path, node] of ENV_OVERRIDES) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      setPath(raw, path, envValue(value, node));
      origins.set(path.join('.'), name);
    }
  }
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const downstream = (raw.downstream ??= {}) as Raw;
    const headers = (downstream.headers ??= {}) as Record<string, string>;
    Object.assign(headers, parseHeaderList(value));
  }
  return origins;
}

/** The schema node of a dotted key path (array items and map values included). */
function schemaAt(path: readonly string[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = configSchema;
  for (const key of path) {
    if (node === undefined) return undefined;
    // An item's example is the list's first default ("127.0.0.1:9092" for a broker).
    if (node.type === 'array') node = node.items && { ...node.items, default: Array.isArray(node.default) ? (node.default[0] as unknown) : undefined };
    else if (node.properties?.[key] !== undefined) node = node.properties[key];
    else node = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
  }
  return node;
}

/** The longest prefix of `path` that is a key of the schema (not an array item): what to drop to get its default. */
function keyOf(path: readonly string[]): string[] {
  const out: string[] = [];
  let node: SchemaNode | undefined = configSchema;
  for (const key of path) {
    const next: SchemaNode | undefined = node?.properties?.[key] ?? (typeof node?.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (next === undefined) break;
    out.push(key);
    node = next;
  }
  return out;
}

interface SchemaProblem {
  readonly path: string;
  readonly message: string;
  /** Positioned at the key itself (an unknown key), not its value. */
  readonly atKey: boolean;
  /** The key to drop so that its default stands in while the rest is checked. */
  readonly drop: readonly string[];
}

/** One problem per key (see schemaErrorMessages), described from the config schema's node of that key. */
function schemaProblems(errors: readonly ErrorObject[]): SchemaProblem[] {
  return schemaErrorMessages(errors, schemaAt).map((m) => ({
    path: m.parts.join('.'),
    message: m.path === '' ? m.message.replace(/^the value/, 'the configuration') : m.message,
    atKey: m.unknownKey,
    drop: m.unknownKey ? m.parts : keyOf(m.parts),
  }));
}

/**
 * 1-based line and column of the YAML node at a dotted path (its key when `atKey`); of the
 * nearest enclosing key in the file when the path is not there (a key missing beside another).
 */
function positionOf(doc: Document, path: string, lc: LineCounter, atKey = false): { line: number; column: number } | undefined {
  if (path === '') return undefined;
  const here = positionIn(doc, path, lc, atKey);
  return here ?? (path.includes('.') ? positionOf(doc, path.slice(0, path.lastIndexOf('.')), lc) : undefined);
}

function positionIn(doc: Document, path: string, lc: LineCounter, atKey: boolean): { line: number; column: number } | undefined {
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
  const p = lc.linePos(offset);
  return { line: p.line, column: p.col };
}

function deletePath(raw: Raw, path: readonly string[]): void {
  let node: unknown = raw;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    node = (node as Raw)[key];
  }
  if (typeof node === 'object' && node !== null && path.length > 0) delete (node as Raw)[path[path.length - 1]!];
}

function render(source: string, p: ConfigProblem): string {
  if (p.env !== undefined) return `environment variable ${p.env}: ${p.message}`;
  return `${source}${p.line === undefined ? '' : `:${p.line}:${p.column}`}: ${p.message}`;
}

function positiveDuration(fail: Fail, path: string, text: string, allowZero: boolean): number {
  const ms = parseDurationMs(text)!;
  if (!allowZero && ms <= 0) fail(path, `${path} must be a duration > 0, got ${show(text)}`);
  return ms;
}

function listen(raw: Raw): ListenConfig {
  const ep = parseEndpoint(raw.endpoint as string)!;
  return { enabled: raw.enabled as boolean, host: ep.host, port: ep.port };
}

function normalize(raw: Raw, baseDir: string, fail: Fail, env: NodeJS.ProcessEnv): Config {
  const r = raw as Record<string, Raw>;
  const receiver = r.receiver!;
  const transport = r.transport!;
  const downstream = r.downstream!;
  const worker = r.worker!;
  const api = r.api!;
  const size = (v: unknown) => parseSizeBytes(v as string | number)!;
  const dur = (path: string, v: unknown, allowZero = false) => positiveDuration(fail, path, v as string, allowZero);

  let token = api.token as string;
  const tokenFile = api.token_file as string;
  if (token === '' && tokenFile !== '') {
    try {
      token = readFileSync(resolve(baseDir, tokenFile), 'utf8').trim();
    } catch (err) {
      fail('api.token_file', `api.token_file cannot be read, got ${show(tokenFile)}: ${(err as Error).message}`);
    }
  }
  const apiListen = listen(api);
  if (apiListen.enabled && token === '' && api.allow_unauthenticated !== true && !isLoopbackHost(apiListen.host)) {
    fail(
      'api.endpoint',
      `api.endpoint binds ${show(api.endpoint)} (not loopback) and no API token is set, so anyone who reaches it could change the rules: ` +
        'set BETRACE_API_TOKEN, api.token_file or api.token; bind 127.0.0.1; or, only behind your own authentication, set api.allow_unauthenticated: true (BETRACE_API_ALLOW_UNAUTHENTICATED=true)',
    );
  }
  const endpointText = (downstream.endpoint as string).trim();
  if (endpointText !== '' && !/^(https?:\/\/)?[^\s/]+:\d{1,5}\/?$/.test(endpointText)) {
    fail('downstream.endpoint', `downstream.endpoint must be a URL like http://host:4317, got ${show(endpointText)}`);
  }
  const maxRequestBytes = size(receiver.max_request_bytes);
  if (maxRequestBytes < 1024) fail('receiver.max_request_bytes', `receiver.max_request_bytes must be at least 1KiB, got ${show(receiver.max_request_bytes)}`);
  const maxReceivingBytes = size(receiver.max_receiving_bytes);
  if (maxReceivingBytes < maxRequestBytes) {
    fail('receiver.max_receiving_bytes', `receiver.max_receiving_bytes must be at least receiver.max_request_bytes (${maxRequestBytes} bytes), got ${show(receiver.max_receiving_bytes)}`);
  }
  const grpcRaw = receiver.grpc as Raw;
  const flowControlWindowBytes = size(grpcRaw.flow_control_window);
  if (flowControlWindowBytes < 65_535 || flowControlWindowBytes > 2 ** 30) {
    fail('receiver.grpc.flow_control_window', `receiver.grpc.flow_control_window must be between 64KiB and 1GiB, got ${show(grpcRaw.flow_control_window)}`);
  }

  const dataDir = resolve(baseDir, raw.data_dir as string);
  const spool = spoolConfig(fail, receiver.spool as Raw, transport.kind as string, baseDir, dataDir);

  return {
    baseDir,
    receiver: {
      grpc: { ...listen(grpcRaw), flowControlWindowBytes, maxConcurrentStreams: grpcRaw.max_concurrent_streams as number },
      http: listen(receiver.http as Raw),
      maxRequestBytes,
      maxInFlightBytes: size(receiver.max_in_flight_bytes),
      maxReceivingBytes,
      maxConnections: receiver.max_connections as number,
      readTimeoutMs: dur('receiver.read_timeout', receiver.read_timeout),
      retryAfterMs: dur('receiver.retry_after', receiver.retry_after),
      maxSpansPerRequest: receiver.max_spans_per_request as number,
      authToken: receiver.auth_token as string,
      tls: tlsConfig(fail, 'receiver.tls', receiver.tls as Raw, baseDir),
      spool,
    },
    transport: {
      kind: transport.kind as 'embedded' | 'kafka',
      partitions: transport.partitions as number,
      partitioner: transport.partitioner as 'sarama' | 'murmur2',
      maxQueuedBytes: size(transport.max_queued_bytes),
      history: historyConfig(fail, transport.history as Raw, transport.kind as string, baseDir, dataDir),
      kafka: kafkaConfig(fail, transport.kafka as Raw, baseDir),
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
      replayJaeger: api.replay_jaeger as string[],
      tls: tlsConfig(fail, 'api.tls', api.tls as Raw, baseDir),
      maxConnections: api.max_connections as number,
      readTimeoutMs: dur('api.read_timeout', api.read_timeout),
      console: api.console as boolean,
    },
    violations: {
      maxAgeMs: positiveDuration(fail, 'violations.max_age', r.violations!.max_age as string, true),
      maxBytes: parseSizeBytes(r.violations!.max_bytes as string | number)!,
    },
    notifications: notificationsConfig(fail, r.notifications as Raw, baseDir, env),
    dataDir,
    shutdownTimeoutMs: dur('shutdown_timeout', raw.shutdown_timeout),
    log: { level: (r.log!.level as string) },
  };
}

function notificationsConfig(fail: Fail, raw: Raw, baseDir: string, env: NodeJS.ProcessEnv): NotificationsConfig {
  const at = 'notifications';
  const defaultsRaw = raw.defaults as Record<string, unknown[]>;
  const defaults = {} as Record<Severity, Destination[]>;
  for (const sev of SEVERITIES) {
    const problems: AlertProblem[] = [];
    defaults[sev] = (defaultsRaw[sev] ?? []).flatMap((v, i) => readDestinationValue(v, `${at}.defaults.${sev}.${i}`, problems) ?? []);
    for (const p of problems) fail(p.path, `${p.path}: ${p.message}`);
  }
  /** Exactly one of NAME, NAME_file (relative to the config file), NAME_env; the value, trimmed. */
  const secret = (path: string, entry: Raw, name: string): string => {
    const given = [name, `${name}_file`, `${name}_env`].filter((k) => entry[k] !== undefined);
    if (given.length !== 1) {
      fail(path, `${path} needs exactly one of ${name}, ${name}_file, ${name}_env, got ${given.length === 0 ? 'none' : given.join(' and ')}`);
      return '';
    }
    if (entry[name] !== undefined) return entry[name] as string;
    if (entry[`${name}_env`] !== undefined) {
      const value = env[entry[`${name}_env`] as string];
      if (value === undefined || value === '') fail(`${path}.${name}_env`, `${path}.${name}_env names the environment variable ${show(entry[`${name}_env`])}, which is not set`);
      return (value ?? '').trim();
    }
    const file = entry[`${name}_file`] as string;
    try {
      return readFileSync(resolve(baseDir, file), 'utf8').trim();
    } catch (err) {
      fail(`${path}.${name}_file`, `${path}.${name}_file cannot be read, got ${show(file)}: ${(err as Error).message}`);
      return '';
    }
  };
  const secrets = (path: string, map: Record<string, Raw>, name: string): Record<string, string> =>
    Object.fromEntries(Object.entries(map).map(([k, v]) => [k, secret(`${path}.${k}`, v, name)]));
  const traceUrl = raw.trace_url as string;
  if (traceUrl !== '' && !traceUrl.includes('{trace_id}')) fail(`${at}.trace_url`, `${at}.trace_url must hold {trace_id}, like "http://jaeger:16686/trace/{trace_id}", got ${show(traceUrl)}`);
  const am = raw.alertmanager as Raw;
  const pd = raw.pagerduty as Raw;
  const email = raw.email as Raw;
  let password = email.password as string;
  if (password === '' && email.password_file !== '') {
    try {
      password = readFileSync(resolve(baseDir, email.password_file as string), 'utf8').trim();
    } catch (err) {
      fail(`${at}.email.password_file`, `${at}.email.password_file cannot be read, got ${show(email.password_file)}: ${(err as Error).message}`);
    }
  }
  if (email.host !== '' && email.from === '') fail(`${at}.email.from`, `${at}.email.from must be set (the sender address) when ${at}.email.host is`);
  return {
    traceUrl,
    defaults,
    groupWindowMs: positiveDuration(fail, `${at}.group_window`, raw.group_window as string, true),
    maxMessages: raw.max_messages as number,
    rateWindowMs: positiveDuration(fail, `${at}.rate_window`, raw.rate_window as string, false),
    maxTracesPerMessage: raw.max_traces_per_message as number,
    maxRetryTimeMs: positiveDuration(fail, `${at}.max_retry_time`, raw.max_retry_time as string, false),
    alertmanager: { url: (am.url as string).replace(/\/+$/, ''), resolveTimeoutMs: positiveDuration(fail, `${at}.alertmanager.resolve_timeout`, am.resolve_timeout as string, false) },
    slack: secrets(`${at}.slack.webhooks`, (raw.slack as Raw).webhooks as Record<string, Raw>, 'url'),
    pagerduty: { url: pd.url as string, routingKeys: secrets(`${at}.pagerduty.routing_keys`, pd.routing_keys as Record<string, Raw>, 'key') },
    webhooks: Object.fromEntries(
      Object.entries(raw.webhooks as Record<string, Raw>).map(([k, v]) => [k, { url: v.url as string, secret: v.secret === undefined && v.secret_file === undefined && v.secret_env === undefined ? '' : secret(`${at}.webhooks.${k}`, v, 'secret') }]),
    ),
    email: { host: email.host as string, port: email.port as number, secure: email.secure as boolean, username: email.username as string, password, from: email.from as string },
  };
}

function historyConfig(fail: Fail, raw: Raw, transportKind: string, baseDir: string, dataDir: string): HistoryConfig {
  const maxBytes = parseSizeBytes(raw.max_bytes as string | number)!;
  const segmentBytes = parseSizeBytes(raw.segment_bytes as string | number)!;
  if (segmentBytes < 64 * 1024) fail('transport.history.segment_bytes', `transport.history.segment_bytes must be at least 64KiB, got ${show(raw.segment_bytes)}`);
  if (segmentBytes * 4 > maxBytes) {
    fail('transport.history.max_bytes', `transport.history.max_bytes must be at least 4 × transport.history.segment_bytes (${segmentBytes * 4} bytes), got ${show(raw.max_bytes)}`);
  }
  const dir = raw.dir as string;
  return {
    enabled: (raw.enabled as boolean) && transportKind === 'embedded',
    dir: dir === '' ? join(dataDir, 'history') : resolve(baseDir, dir),
    maxAgeMs: positiveDuration(fail, 'transport.history.max_age', raw.max_age as string, true),
    maxBytes,
    segmentBytes,
  };
}

function spoolConfig(fail: Fail, raw: Raw, transportKind: string, baseDir: string, dataDir: string): SpoolConfig {
  const enabled = raw.enabled as boolean;
  const maxBytes = parseSizeBytes(raw.max_bytes as string | number)!;
  const segmentBytes = parseSizeBytes(raw.segment_bytes as string | number)!;
  if (enabled && transportKind !== 'kafka') {
    fail(
      'receiver.spool.enabled',
      `receiver.spool.enabled needs transport.kind kafka, got ${show(transportKind)}: the embedded transport holds spans in this process's memory, so a disk spool in front of it would keep nothing across a restart`,
    );
  }
  if (segmentBytes < 64 * 1024) fail('receiver.spool.segment_bytes', `receiver.spool.segment_bytes must be at least 64KiB, got ${show(raw.segment_bytes)}`);
  if (segmentBytes * 4 > maxBytes) {
    fail('receiver.spool.max_bytes', `receiver.spool.max_bytes must be at least 4 × receiver.spool.segment_bytes (${segmentBytes * 4} bytes), got ${show(raw.max_bytes)}`);
  }
  const dir = raw.dir as string;
  return {
    enabled,
    dir: dir === '' ? join(dataDir, 'spool') : resolve(baseDir, dir),
    maxBytes,
    segmentBytes,
    shutdownTimeoutMs: positiveDuration(fail, 'receiver.spool.shutdown_timeout', raw.shutdown_timeout as string, true),
    degradedAfterMs: positiveDuration(fail, 'receiver.spool.degraded_after', raw.degraded_after as string, false),
  };
}

function tlsConfig(fail: Fail, path: string, raw: Raw, baseDir: string): TlsConfig | undefined {
  const cert = raw.cert_file as string;
  const key = raw.key_file as string;
  const ca = raw.client_ca_file as string;
  if (cert === '' && key === '' && ca === '') return undefined;
  if (cert === '' || key === '') {
    fail(`${path}.${cert === '' ? 'cert_file' : 'key_file'}`, `${path}.cert_file and ${path}.key_file must both be set for TLS, got ${show({ cert_file: cert, key_file: key })}`);
    return undefined;
  }
  const files = { certFile: resolve(baseDir, cert), keyFile: resolve(baseDir, key), clientCaFile: ca === '' ? '' : resolve(baseDir, ca) };
  for (const [name, file] of [['cert_file', files.certFile], ['key_file', files.keyFile], ['client_ca_file', files.clientCaFile]] as const) {
    if (file !== '') readPem(fail, file, `${path}.${name}`, baseDir);
  }
  return files;
}

function readPem(fail: Fail, path: string, key: string, baseDir: string): string {
  if (path === '') return '';
  try {
    return readFileSync(resolve(baseDir, path), 'utf8');
  } catch (err) {
    fail(key, `${key} cannot be read, got ${show(path)}: ${(err as Error).message}`);
    return '';
  }
}

function kafkaConfig(fail: Fail, k: Raw, baseDir: string): KafkaConfig {
  const tls = k.tls as Raw;
  const sasl = k.sasl as Raw;
  const mechanism = sasl.mechanism as KafkaConfig['sasl']['mechanism'];
  if (mechanism !== 'none' && (sasl.username === '' || sasl.password === '')) {
    fail(`transport.kafka.sasl.${sasl.username === '' ? 'username' : 'password'}`, `transport.kafka.sasl.username and password must be set for mechanism ${show(mechanism)}`);
  }
  return {
    brokers: k.brokers as string[],
    clientId: k.client_id as string,
    spansTopic: k.spans_topic as string,
    rulesTopic: k.rules_topic as string,
    violationsTopic: k.violations_topic as string,
    indexTopic: k.index_topic as string,
    workerGroup: k.worker_group as string,
    forwarderGroup: k.forwarder_group as string,
    createTopics: k.create_topics as boolean,
    replicationFactor: k.replication_factor as number,
    retentionMs: positiveDuration(fail, 'transport.kafka.retention', k.retention as string, true),
    maxRecordBytes: k.max_record_bytes as number,
    lingerMs: positiveDuration(fail, 'transport.kafka.linger', k.linger as string, true),
    requestTimeoutMs: positiveDuration(fail, 'transport.kafka.request_timeout', k.request_timeout as string, false),
    ackTimeoutMs: positiveDuration(fail, 'transport.kafka.ack_timeout', k.ack_timeout as string, false),
    groupProtocol: k.group_protocol as 'consumer' | 'classic',
    sessionTimeoutMs: positiveDuration(fail, 'transport.kafka.session_timeout', k.session_timeout as string, false),
    tls: {
      enabled: tls.enabled as boolean,
      ca: readPem(fail, tls.ca_file as string, 'transport.kafka.tls.ca_file', baseDir),
      cert: readPem(fail, tls.cert_file as string, 'transport.kafka.tls.cert_file', baseDir),
      key: readPem(fail, tls.key_file as string, 'transport.kafka.tls.key_file', baseDir),
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
 * Throws ConfigError listing every problem, one line each.
 */
export function parseConfig(
  text: string,
  options: { source?: string; baseDir?: string; env?: NodeJS.ProcessEnv } = {},
): Config {
  const source = options.source ?? 'config';
  const lc = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter: lc });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const at = e.linePos?.[0];
    throw new ConfigError(`${source}${at ? `:${at.line}:${at.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS() ?? {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${source}: the configuration must be a YAML mapping`);
  }
  const raw = structuredClone(value) as Raw;
  const origins = applyEnv(raw, options.env ?? process.env);
  const problems: ConfigProblem[] = [];
  const place = (path: string, message: string, atKey = false): ConfigProblem => {
    for (const [key, env] of origins) if (path === key || path.startsWith(`${key}.`)) return { path, message, env };
    return { path, message, ...positionOf(doc, path, lc, atKey) };
  };
  if (!validate(raw)) {
    const found = schemaProblems((validate.errors ?? []).filter((e) => e.keyword !== 'if'));
    for (const p of found) {
      problems.push(place(p.path, p.message, p.atKey));
      // The key's default stands in for it, so the checks below still see every other key.
      deletePath(raw, p.drop);
    }
    if (!validate(raw)) {
      // Every problem of the schema has a message above; ajv's own text in case one has none.
      if (problems.length === 0) problems.push({ path: '', message: ajv.errorsText(validate.errors, { dataVar: 'the configuration' }) });
      throw configError(source, problems);
    }
  }
  const config = normalize(
    raw,
    options.baseDir ?? process.cwd(),
    (path, message) => {
      // A key already reported by the schema is judged on its default here: not a problem of its own.
      if (!problems.some((p) => path === p.path || path.startsWith(`${p.path}.`))) problems.push(place(path, message));
    },
    options.env ?? process.env,
  );
  if (problems.length > 0) throw configError(source, problems);
  return deepFreeze(config);
}

/** The problems in file order (those from the environment last). */
function configError(source: string, problems: readonly ConfigProblem[]): ConfigError {
  const sorted = [...problems].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0));
  return new ConfigError(sorted.map((p) => render(source, p)).join('\n'), sorted);
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
