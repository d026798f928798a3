/**
 * The configuration schema: every key, its type, its default and its meaning.
 * The configuration reference (src/config/README.md) is generated from this file
 * (`betrace config reference`), and a test keeps the two in step.
 * Durations are strings with units ("5s", "250ms"); sizes are bytes or strings with units ("16MiB").
 */
import { DEFAULT_BUDGET_MS } from '../rules/diagnostics.ts';

export interface SchemaNode {
  type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array';
  description?: string;
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  enum?: readonly unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  required?: readonly string[];
  format?: 'duration' | 'size' | 'endpoint';
  oneOf?: SchemaNode[];
  /** Documentation only: the environment variable that overrides this key. */
  'x-env'?: string;
}

function obj(description: string, properties: Record<string, SchemaNode>): SchemaNode {
  return { type: 'object', description, properties, additionalProperties: false, default: {} };
}
function duration(description: string, def: string): SchemaNode {
  return { type: 'string', format: 'duration', description, default: def };
}
function size(description: string, def: string): SchemaNode {
  return { oneOf: [{ type: 'string' }, { type: 'integer', minimum: 0 }], format: 'size', description, default: def };
}
function int(description: string, def: number, minimum = 1, maximum?: number): SchemaNode {
  return { type: 'integer', description, default: def, minimum, ...(maximum === undefined ? {} : { maximum }) };
}
function bool(description: string, def: boolean): SchemaNode {
  return { type: 'boolean', description, default: def };
}
function endpoint(description: string, def: string, env?: string): SchemaNode {
  return { type: 'string', format: 'endpoint', description, default: def, ...(env ? { 'x-env': env } : {}) };
}

function tls(description: string): SchemaNode {
  return obj(description, {
    cert_file: { type: 'string', default: '', description: 'PEM certificate (chain); with key_file, turns TLS on. Reloaded when the file changes.' },
    key_file: { type: 'string', default: '', description: 'PEM private key.' },
    client_ca_file: {
      type: 'string',
      default: '',
      description: 'PEM CA bundle: when set, clients must present a certificate signed by it (mTLS).',
    },
  });
}

function secretProperties(name: string): Record<string, SchemaNode> {
  return { [name]: { type: 'string', minLength: 1 }, [`${name}_file`]: { type: 'string', minLength: 1 }, [`${name}_env`]: { type: 'string', minLength: 1 } };
}
/** A secret given inline, in a file, or in an environment variable: exactly one of NAME, NAME_file, NAME_env. */
function secretObject(name: string): SchemaNode {
  return { type: 'object', additionalProperties: false, properties: secretProperties(name) };
}

export const configSchema: SchemaNode = obj('The betrace configuration file.', {
  receiver: obj('OTLP receiver: where applications (or a Collector) send spans.', {
    grpc: obj('OTLP/gRPC (TraceService/Export).', {
      enabled: bool('Serve OTLP/gRPC.', true),
      endpoint: endpoint('Address to listen on, host:port (port 0: any free port).', '127.0.0.1:4317', 'BETRACE_RECEIVER_GRPC_ENDPOINT'),
      flow_control_window: size(
        "Deprecated, not applied: the HTTP/2 flow-control window the receiver offers each client is HTTP/2's 64KiB, per request stream and per connection (grpc-js has no server option for it; grpc/grpc-node#3058). Accepted so existing configuration files load; a value above 64KiB is logged at start as not in effect.",
        '64KiB',
      ),
      max_concurrent_streams: int(
        'Calls at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); more are refused by HTTP/2 (REFUSED_STREAM, which clients retry).',
        16,
        1,
        1000,
      ),
    }),
    http: obj('OTLP/HTTP (POST /v1/traces, protobuf or JSON, gzip accepted).', {
      enabled: bool('Serve OTLP/HTTP.', true),
      endpoint: endpoint('Address to listen on, host:port.', '127.0.0.1:4318', 'BETRACE_RECEIVER_HTTP_ENDPOINT'),
    }),
    max_request_bytes: size(
      'Largest request accepted, measured after decompression; larger ones get RESOURCE_EXHAUSTED / 413.',
      '16MiB',
    ),
    max_in_flight_bytes: size(
      'Bytes of requests being handed to the transport at once; past it requests get UNAVAILABLE / 503 with a retry delay.',
      '64MiB',
    ),
    max_receiving_bytes: size(
      'Bytes of requests still being received, both receivers together. When spent, new requests get UNAVAILABLE / 503 with a retry delay; an OTLP/HTTP body that needs more gets 503 and its connection closed; a gRPC connection that needs more makes the gRPC connection holding most (perhaps itself) be closed. See "Memory bound" in src/receiver/README.md.',
      '64MiB',
    ),
    max_connections: int('Client connections open at once, per receiver (gRPC and HTTP each); more are closed as they arrive.', 256, 1),
    read_timeout: duration(
      'A request still being received that gets no byte for this long is cut (HTTP: 408 and the connection closed; gRPC: its connection closed), and what it held freed. HTTP request headers must arrive within it.',
      '30s',
    ),
    retry_after: duration('Retry delay suggested to clients with UNAVAILABLE / 503.', '1s'),
    max_spans_per_request: int('Most spans in one export request; more: RESOURCE_EXHAUSTED / 413.', 100_000),
    auth_token: {
      type: 'string',
      default: '',
      description: 'When set, exports need `Authorization: Bearer <token>` (gRPC metadata or HTTP header): UNAUTHENTICATED / 401 otherwise.',
      'x-env': 'BETRACE_RECEIVER_TOKEN',
    },
    tls: tls('TLS (and mTLS) on both OTLP receivers.'),
    spool: obj(
      'A bounded spool on local disk in front of Kafka (transport.kind: kafka only). With it on, an export is acknowledged once its spans are fsynced to the spool ("durable on this node\'s disk", not yet in Kafka); every export goes through it and is handed to Kafka in arrival order, so a Kafka outage shorter than what the spool holds adds latency instead of loss. Delivery to Kafka is at least once: after a crash, up to about a second of spooled spans is sent again (spans are de-duplicated by span id downstream). See "Spool" in src/receiver/README.md.',
      {
        enabled: bool('Spool exports on local disk before Kafka. Refused with transport.kind embedded.', false),
        dir: {
          type: 'string',
          default: '',
          description: 'Directory of the spool files, relative to the config file; one receiver process per directory. Empty: <data_dir>/spool.',
        },
        max_bytes: size(
          'Bound of the spool files on disk. Past it, exports get UNAVAILABLE / 503 with a retry delay until Kafka takes what is spooled.',
          '1GiB',
        ),
        segment_bytes: size('Size at which a spool file is closed and a new one begun; delivered files are deleted. At most max_bytes / 4.', '16MiB'),
        shutdown_timeout: duration(
          'At shutdown, how long the spool goes on handing what it holds to Kafka; the rest stays on disk for the next start. At most the top-level shutdown_timeout (the smaller applies).',
          '10s',
        ),
        degraded_after: duration(
          'While the oldest spooled record waits for Kafka longer than this, /ready reports the spool degraded (200, with the reason).',
          '10s',
        ),
      },
    ),
  }),
  transport: obj('How spans travel from the receiver to the workers and the forwarder.', {
    kind: {
      type: 'string',
      enum: ['embedded', 'kafka'],
      default: 'embedded',
      description: 'embedded: in-process queues, one process runs every role. kafka: Apache Kafka between roles.',
      'x-env': 'BETRACE_TRANSPORT',
    },
    partitions: int(
      'Partitions of the embedded transport, and of the spans topic when betrace creates it (traces are spread over them by trace id).',
      4,
      1,
      1024,
    ),
    partitioner: {
      type: 'string',
      enum: ['sarama', 'murmur2'],
      default: 'sarama',
      description:
        'Partition function of the trace id key: sarama (FNV-1a, as the OpenTelemetry Collector Kafka exporter) or murmur2 (Java clients).',
    },
    max_queued_bytes: size(
      'Embedded transport: bytes of records waiting per partition before producers are refused (backpressure).',
      '64MiB',
    ),
    history: obj(
      'Embedded transport: the local history, every record received appended to files on local disk (the same records as the Kafka spans topic), so `betrace replay` and API replay jobs have the days before a rule existed without Kafka. Written in batches every half second (a crash loses at most that, and a torn tail is cut at start); a failed write (a full disk) is counted and logged and never slows live traffic. Ignored with transport.kind kafka: the spans topic is the history there. See "Local history" in src/transport/README.md.',
      {
        enabled: bool('Keep the local history (embedded transport).', true),
        dir: {
          type: 'string',
          default: '',
          description: 'Directory of the history files, relative to the config file. Empty: <data_dir>/history.',
        },
        max_age: duration('Files whose newest record is older than this are deleted ("0s": no age limit). 30 days: the BeTrace Method replays days 1-29.', '30d'),
        max_bytes: size(
          'Bound of the history files on disk: past it the oldest files are deleted. About 400 bytes per span (the OTLP payload with its resource and scope, and the framing; measured on the benchmark workload): 10GiB keeps 30 days of about 10 spans/s.',
          '10GiB',
        ),
        segment_bytes: size('Size at which a history file is closed and a new one begun (retention deletes whole files). At most max_bytes / 4.', '64MiB'),
      },
    ),
    kafka: obj('Kafka transport (transport.kind: kafka).', {
      brokers: {
        type: 'array',
        items: { type: 'string', format: 'endpoint' },
        default: ['127.0.0.1:9092'],
        description: 'Bootstrap brokers, host:port. BETRACE_KAFKA_BROKERS (comma-separated) overrides it.',
        'x-env': 'BETRACE_KAFKA_BROKERS',
      },
      client_id: { type: 'string', minLength: 1, default: 'betrace', description: 'Kafka client id.' },
      spans_topic: { type: 'string', minLength: 1, default: 'betrace.spans', description: 'Topic of span records (key: trace id).' },
      rules_topic: { type: 'string', minLength: 1, default: 'betrace.rules', description: 'Compacted topic of API rules (key: rule id).' },
      violations_topic: {
        type: 'string',
        minLength: 1,
        default: 'betrace.violations',
        description: 'Topic of violations (key: violation id), read by the API.',
      },
      index_topic: {
        type: 'string',
        minLength: 1,
        default: 'betrace.index',
        description:
          "The trace index: one record per trace a worker evaluated (which spans records hold it, their times and span names; key: trace id, timestamp: the trace's earliest span start). Created with the spans topic's partitions and retention; a worker acknowledges a trace's records once its index record is written. Replay reads it to read only the traces some rule can fail on.",
      },
      worker_group: { type: 'string', minLength: 1, default: 'betrace-workers', description: 'Consumer group of the workers.' },
      forwarder_group: { type: 'string', minLength: 1, default: 'betrace-forwarder', description: 'Consumer group of the forwarders.' },
      create_topics: bool('Create missing topics at start (else a missing topic is an error).', true),
      replication_factor: int('Replication factor of topics betrace creates.', 1, 1, 16),
      retention: duration(
        'retention.ms of the spans topic when betrace creates it ("0s": unlimited). Replay reads history from it: 30 days lets a rule written on day 30 be replayed over days 1-29. About 400 bytes per span (uncompressed records), so each million spans a day keeps about 12 GB per replica at 30d.',
        '30d',
      ),
      max_record_bytes: int(
        "Largest record produced; a trace's spans that would make a larger one are split over several records. Checked against the topic's max.message.bytes at start.",
        1_000_000,
        1024,
      ),
      linger: duration('How long the producer waits to batch records of concurrent requests: longer batches cost less CPU per span and add this much to acknowledgement latency.', '10ms'),
      request_timeout: duration('Deadline of one request of the Kafka client (connections are given at most 5 s of it).', '10s'),
      ack_timeout: duration(
        "How long an export waits for Kafka's acknowledgement before the receiver answers UNAVAILABLE with a retry delay; it answers sooner when the client's own gRPC deadline is nearer (at half the time it leaves), and at once while the cluster cannot be reached.",
        '3s',
      ),
      group_protocol: {
        type: 'string',
        enum: ['consumer', 'classic'],
        default: 'consumer',
        description:
          "Consumer group protocol of workers and forwarders: `consumer` (KIP-848, Kafka 4.0+ brokers): a member joining or leaving moves only the partitions that change owner, and the others keep reading; a member that dies is noticed after the broker's group.consumer.session.timeout.ms (45 s by default). `classic`: eager rebalances that stop every member while partitions move; a dead member is noticed after session_timeout.",
      },
      session_timeout: duration('Consumer group session timeout of the classic protocol (with `consumer`, the broker sets it: group.consumer.session.timeout.ms).', '30s'),
      tls: obj('TLS to the brokers.', {
        enabled: bool('Connect with TLS.', false),
        ca_file: { type: 'string', default: '', description: 'PEM file of the CA to trust (default: system CAs).' },
        cert_file: { type: 'string', default: '', description: 'Client certificate (PEM) for mTLS.' },
        key_file: { type: 'string', default: '', description: 'Client key (PEM) for mTLS.' },
      }),
      sasl: obj('SASL authentication.', {
        mechanism: {
          type: 'string',
          enum: ['none', 'plain', 'scram-sha-256', 'scram-sha-512'],
          default: 'none',
          description: 'SASL mechanism.',
        },
        username: { type: 'string', default: '', description: 'SASL user name.' },
        password: {
          type: 'string',
          default: '',
          description: 'SASL password; prefer BETRACE_KAFKA_SASL_PASSWORD.',
          'x-env': 'BETRACE_KAFKA_SASL_PASSWORD',
        },
      }),
    }),
  }),
  downstream: obj('The OTLP/gRPC endpoint of the tracing backend (Tempo, Jaeger, a Collector): forwarded spans and violation spans go there.', {
    endpoint: {
      type: 'string',
      default: '',
      description:
        'URL of the OTLP/gRPC endpoint (http://host:4317, or https:// for TLS). Empty: nothing is exported and the forwarder is off. BETRACE_DOWNSTREAM_ENDPOINT, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT, overrides it. betrace\'s own receiver endpoints are refused at start (every span would come back).',
      'x-env': 'BETRACE_DOWNSTREAM_ENDPOINT',
    },
    headers: {
      type: 'object',
      additionalProperties: { type: 'string' },
      default: {},
      description: 'gRPC metadata sent with each export (e.g. an authorization header). OTEL_EXPORTER_OTLP_HEADERS adds to it.',
      'x-env': 'OTEL_EXPORTER_OTLP_HEADERS',
    },
    timeout: duration('Deadline of one export call.', '10s'),
    compression: { type: 'string', enum: ['none', 'gzip'], default: 'none', description: 'Compression of export calls.' },
    max_queue_spans: int(
      'Spans waiting for export (per exporter: forwarder and violations each). When full, the forwarder waits for room (with Kafka always; with the embedded transport while downstream takes exports, so the transport fills and the receiver answers UNAVAILABLE); otherwise new batches are dropped and counted.',
      200_000,
    ),
    max_batch_spans: int('Most spans in one export call.', 4096),
    batch_timeout: duration('Longest a span waits for its batch to fill.', '200ms'),
    max_retry_time: duration(
      'How long one batch is retried on retryable errors (UNAVAILABLE and the like) before it is dropped and counted.',
      '5m',
    ),
  }),
  forwarder: obj('Passes every accepted span, unchanged, downstream.', {
    enabled: bool('Forward spans (only when downstream.endpoint is set).', true),
  }),
  worker: obj('Assembles traces and evaluates rules.', {
    trace_idle_timeout: duration('A trace is complete when none of its spans arrived for this long.', '5s'),
    trace_max_duration: duration('A trace is cut (evaluated, marked partial) this long after its first span arrived.', '60s'),
    root_idle_timeout: duration(
      'When not 0: a trace is complete this long after its root span ended, even if other spans still trickle in.',
      '0s',
    ),
    max_live_traces: int('Traces assembled at once per worker; at the bound the transport is paused.', 100_000),
    max_spans_per_trace: int('Spans kept per trace; a trace over it is cut (evaluated, marked partial).', 10_000),
    late_span_grace: duration(
      'After evaluation, a trace is remembered this long: a late span re-evaluates it with the spans seen before.',
      '30s',
    ),
    evaluation_threads: int('Threads evaluating rules (worker_threads), off the I/O thread.', 1, 1, 64),
    evaluation_budget: duration(
      'Longest evaluation of one trace, all its rules together: once spent, the rule running and the rules after it are abandoned for that trace and counted.',
      `${DEFAULT_BUDGET_MS}ms`,
    ),
    evaluation_stall_margin: duration(
      'An evaluation thread still busy on one trace this long past evaluation_budget is stopped and replaced; the trace counts as over budget for the rule it was in, the thread\'s other traces are evaluated again.',
      '2s',
    ),
    quarantine_after: int(
      'A rule responsible for a trace going over budget (the budget ran out in it after it spent half of it itself, or the watchdog stopped a thread in it) this many times within quarantine_window is quarantined: not evaluated until it is changed or re-enabled; 0: never.',
      3,
      0,
    ),
    quarantine_window: duration('The window in which quarantine_after overruns of one rule quarantine it.', '10m'),
    max_trace_bytes: size('Bytes kept per trace; a trace over it is cut (evaluated, marked partial).', '64MiB'),
    max_attributes_per_span: int(
      'Attributes per span that rules see (the rest are dropped from the evaluated copy and counted; forwarded spans are unchanged).',
      128,
    ),
    max_attribute_value_length: int(
      'Characters of a string attribute that rules see (longer values are truncated in the evaluated copy and counted).',
      4096,
    ),
  }),
  rules: obj('Where rules come from.', {
    paths: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'Rule files (YAML, globs allowed), relative to the config file; reloaded when they change.',
    },
  }),
  api: obj('Admin HTTP API: health, readiness, metrics, rules, violations.', {
    enabled: bool('Serve the admin API.', true),
    endpoint: endpoint('Address to listen on, host:port.', '127.0.0.1:12011', 'BETRACE_API_ENDPOINT'),
    token: {
      type: 'string',
      default: '',
      description: 'Bearer token required on mutating calls; empty: none. Prefer token_file or BETRACE_API_TOKEN.',
      'x-env': 'BETRACE_API_TOKEN',
    },
    token_file: { type: 'string', default: '', description: 'File holding the bearer token (e.g. a mounted Secret).' },
    max_connections: int('Connections open at once; more are closed as they arrive.', 64, 1),
    read_timeout: duration('A request whose headers or body get no byte for this long is cut (the connection closed).', '30s'),
    allow_unauthenticated: {
      type: 'boolean',
      default: false,
      description:
        'Start with the API bound to a non-loopback address and no token (refused otherwise): only behind your own authentication (a proxy). true/false in BETRACE_API_ALLOW_UNAUTHENTICATED.',
      'x-env': 'BETRACE_API_ALLOW_UNAUTHENTICATED',
    },
    replay_dir: {
      type: 'string',
      default: '',
      description:
        'Directory that replays started through the API (POST /v1/replay, source "files") may read, relative to the config file; files are named relative to it. Empty: file replays through the API are refused.',
    },
    replay_jaeger: {
      type: 'array',
      items: { type: 'string', format: 'endpoint' },
      default: [],
      description:
        'The Jaegers (host:port of the query gRPC API) that replays started through the API (POST /v1/replay, source "jaeger") may read. Empty: Jaeger replays through the API are refused (the CLI reads any Jaeger its user names).',
    },
    console: bool(
      'Serve the web console at /ui on the admin port (with the api role): rules, violations, replay and health in a browser, calling this API with the token entered in the browser session (src/console/README.md).',
      true,
    ),
    tls: tls('TLS (and mTLS) on the admin API.'),
  }),
  violations: obj('Embedded mode: the violation file data_dir/violations.jsonl, read back at start and served by GET /v1/violations (in Kafka mode the violations topic keeps them, by its retention).', {
    max_age: duration('Violations evaluated longer ago than this are removed from the file ("0s": no age limit).', '90d'),
    max_bytes: size(
      'Bound of the file: past it the oldest violations are removed, down to three quarters of it (about 1 KiB per violation: 256MiB holds about 250,000).',
      '256MiB',
    ),
  }),
  notifications: obj('Notifications of violations to the people who own the rule (src/notify/README.md): routes per rule (a rule file\'s `alerts:`), the defaults below by severity, and the channels. Embedded transport only: with Kafka nothing is sent (logged at start).', {
    trace_url: {
      type: 'string',
      default: '',
      description: 'Link to a trace in your tracing UI, `{trace_id}` replaced by the trace id (e.g. `http://jaeger:16686/trace/{trace_id}`); in every notification and in GET /v1/violations (`trace_url`). Empty: no link.',
    },
    defaults: obj('Destinations of the rules without an `alerts:` entry, by the rule\'s severity: lists of `alertmanager`, `pagerduty`, `{slack: "#incidents"}`, `{email: oncall@example.com}`, `{webhook: NAME}`.', Object.fromEntries(
      ['critical', 'high', 'medium', 'low', 'info'].map((sev) => [sev, { type: 'array', items: {}, default: [], description: `Destinations of ${sev} rules without an alert entry (empty: not notified).` } satisfies SchemaNode]),
    )),
    group_window: duration('Violations of one rule to one destination within this long of the first are sent as one message ("23 violations of X in 5m", with the first traces).', '30s'),
    max_messages: int('Most messages per rule and destination within rate_window; past it violations wait and join the next message.', 10),
    rate_window: duration('The window of max_messages.', '1h'),
    max_traces_per_message: int('Traces listed in one grouped message (the count covers all of them).', 5, 1, 50),
    max_retry_time: duration('How long a message is retried on retryable failures (connection errors, 408, 429, 5xx) before it is dead-lettered (counted, logged).', '1h'),
    alertmanager: obj('Prometheus Alertmanager (API v2): every violation is an alert; grouping, silences and inhibition are Alertmanager\'s.', {
      url: { type: 'string', default: '', description: 'Base URL of Alertmanager (alerts go to URL/api/v2/alerts), e.g. http://alertmanager:9093.' },
      resolve_timeout: duration('endsAt of each alert: how long after it Alertmanager resolves it.', '5m'),
    }),
    slack: obj('Slack incoming webhooks, one per Slack channel (each webhook posts to one channel).', {
      webhooks: {
        type: 'object',
        default: {},
        additionalProperties: secretObject('url'),
        description: 'By Slack channel name as rules write it ("#incidents"): {url} or {url_file} (a mounted Secret) or {url_env} (the name of an environment variable).',
      },
    }),
    pagerduty: obj('PagerDuty Events API v2.', {
      url: { type: 'string', default: 'https://events.pagerduty.com/v2/enqueue', description: 'The Events API v2 enqueue URL.' },
      routing_keys: {
        type: 'object',
        default: {},
        additionalProperties: secretObject('key'),
        description: 'Integration (routing) keys by name; `pagerduty` alone in a route uses `default`. Each {key} or {key_file} or {key_env}.',
      },
    }),
    webhooks: {
      type: 'object',
      default: {},
      additionalProperties: { type: 'object', additionalProperties: false, required: ['url'], properties: { url: { type: 'string', minLength: 1 }, ...secretProperties('secret') } },
      description: 'Generic webhooks by name (`webhook` alone in a route uses `default`): {url, secret | secret_file | secret_env}. JSON POSTs signed with HMAC-SHA256 of the body under the secret (header X-Betrace-Signature: sha256=HEX).',
    },
    email: obj('Email over SMTP (nodemailer).', {
      host: { type: 'string', default: '', description: 'SMTP server host; empty: email is off.' },
      port: int('SMTP port.', 587, 1, 65535),
      secure: bool('TLS from the start (port 465); false: STARTTLS when the server offers it.', false),
      username: { type: 'string', default: '', description: 'SMTP user; empty: no authentication.' },
      password: { type: 'string', default: '', description: 'SMTP password; prefer password_file or BETRACE_SMTP_PASSWORD.', 'x-env': 'BETRACE_SMTP_PASSWORD' },
      password_file: { type: 'string', default: '', description: 'File holding the SMTP password.' },
      from: { type: 'string', default: '', description: 'Sender address (From:).' },
    }),
  }),
  data_dir: {
    type: 'string',
    default: './data',
    description: 'Directory for state kept across restarts (violations, API rules), relative to the config file.',
    'x-env': 'BETRACE_DATA_DIR',
  },
  shutdown_timeout: duration(
    'On SIGTERM/SIGINT, how long betrace goes on delivering what it holds before it stops regardless (and exits): exports still queued or being retried then are, with transport.kind embedded, dropped and counted (betrace_exporter_spans_dropped_total, reason shutdown), with Kafka left unacknowledged for the next reader of their partitions; one log line gives the counts. Bounds receiver.spool.shutdown_timeout too. A process still stopping 5s after it exits regardless (status 1). Keep it under the grace period of your process manager (Kubernetes: terminationGracePeriodSeconds).',
    '10s',
  ),
  log: obj('Logging (JSON lines on stdout, pino).', {
    level: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      description: 'Lowest level logged.',
      'x-env': 'BETRACE_LOG_LEVEL',
    },
  }),
});

/** Every leaf key of the schema (a map, such as downstream.headers, is a leaf) with its dotted path, in schema order. */
export function schemaKeys(node: SchemaNode = configSchema, prefix = ''): Array<[string, SchemaNode]> {
  const out: Array<[string, SchemaNode]> = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (child.type === 'object' && child.properties !== undefined) out.push(...schemaKeys(child, path));
    else out.push([path, child]);
  }
  return out;
}
