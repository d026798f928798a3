/**
 * The admin API's component schemas, written once: the routes reference them
 * (`$ref` by name, registered with fastify's addSchema), @fastify/swagger puts them
 * in the OpenAPI document (`#/components/schemas/<name>`), and request bodies are
 * validated against them here, with problems worded as the configuration's are
 * (src/expected.ts): each field named, with what it must be.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { schemaErrorMessages } from '../expected.ts';

/** A reference to another component, by name (the names are COMPONENTS' keys). */
const ref = (name: string) => ({ $ref: name });

const ErrorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        line: { type: 'integer' },
        column: { type: 'integer' },
        errors: { type: 'array', items: { type: 'object' } },
      },
    },
  },
};

const Severity = { type: 'string', enum: ['critical', 'high', 'medium', 'low', 'info'] };

const Destination = {
  description: 'A channel kind alone ("alertmanager", "pagerduty", "webhook": its default target) or one {kind: target} pair: {"slack": "#incidents"}, {"email": "oncall@example.com"}, {"pagerduty": "KEY_NAME"}, {"webhook": "NAME"}',
  oneOf: [
    { type: 'string', enum: ['alertmanager', 'pagerduty', 'slack', 'email', 'webhook'] },
    { type: 'object', minProperties: 1, maxProperties: 1, additionalProperties: { type: 'string', minLength: 1, maxLength: 256 } },
  ],
};

const AlertRoute = {
  type: 'object',
  description: "Who is notified when the rule fires (a rule file's alerts: entry); without it, notifications.defaults for the rule's severity",
  additionalProperties: false,
  properties: {
    severity: ref('Severity'),
    notification: ref('Destination'),
    channels: { type: 'array', maxItems: 32, items: ref('Destination') },
  },
};

const RuleInput = {
  type: 'object',
  additionalProperties: false,
  required: ['condition', 'severity'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$', maxLength: 128 },
    name: { type: 'string', maxLength: 256 },
    description: { type: 'string', maxLength: 4096 },
    severity: ref('Severity'),
    enabled: { type: 'boolean' },
    tags: { type: 'array', items: { type: 'string', maxLength: 128 }, maxItems: 64 },
    message: { type: 'string', maxLength: 4096 },
    condition: { type: 'string', minLength: 1 },
    alerts: ref('AlertRoute'),
  },
};

const Rule = {
  type: 'object',
  required: ['id', 'name', 'description', 'severity', 'enabled', 'tags', 'condition', 'source', 'version', 'state'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    description: { type: 'string' },
    severity: ref('Severity'),
    enabled: { type: 'boolean' },
    tags: { type: 'array', items: { type: 'string' } },
    message: { type: 'string' },
    condition: { type: 'string' },
    alerts: ref('AlertRoute'),
    canonical: { type: 'string', description: 'How betrace reads the condition' },
    source: { type: 'string', enum: ['file', 'api'] },
    file: { type: 'string' },
    version: { type: 'integer' },
    state: {
      type: 'string',
      enum: ['enabled', 'disabled', 'quarantined'],
      description:
        'Whether the rule is evaluated. quarantined: enabled, but over the evaluation budget repeatedly (worker.quarantine_after within worker.quarantine_window), so not evaluated until it is changed or re-enabled (POST /v1/rules/{id}/enable)',
    },
    quarantine: {
      type: 'object',
      description: 'While quarantined: why, and since when',
      required: ['reason', 'since'],
      properties: { reason: { type: 'string' }, since: { type: 'string', format: 'date-time' } },
    },
  },
};

/** A rule being written (POST /v1/rules/validate): only the condition is needed. */
const RuleDraft = {
  type: 'object',
  additionalProperties: false,
  required: ['condition'],
  properties: { ...RuleInput.properties, severity: ref('Severity') },
};

const Diagnostic = {
  type: 'object',
  required: ['line', 'column', 'message'],
  properties: { line: { type: 'integer' }, column: { type: 'integer' }, message: { type: 'string' }, code: { type: 'string' } },
};

const RuleCheck = {
  type: 'object',
  required: ['ok'],
  properties: {
    ok: { type: 'boolean' },
    errors: { type: 'array', items: Diagnostic, description: 'When not ok: where the condition (1-based line and column) is wrong' },
    warnings: { type: 'array', items: Diagnostic },
    canonical: { type: 'string', description: 'How betrace reads the condition (betrace rules check --explain)' },
    notes: { type: 'array', items: { type: 'string' }, description: 'The notes of that reading: the implication idiom, the traces it runs on' },
  },
};

/** A draft rule and an OTLP/JSON trace to evaluate it on (POST /v1/rules/try). */
const RuleTry = {
  type: 'object',
  additionalProperties: false,
  required: ['condition', 'trace'],
  properties: {
    ...RuleInput.properties,
    trace: { type: 'string', minLength: 1, description: 'OTLP/JSON text: an ExportTraceServiceRequest (or one per line), ids in hex or base64' },
  },
};

const RuleTryResult = {
  type: 'object',
  required: ['spans', 'traces'],
  properties: {
    spans: { type: 'integer' },
    traces: {
      type: 'array',
      items: {
        type: 'object',
        required: ['trace_id', 'spans', 'violated'],
        properties: {
          trace_id: { type: 'string' },
          spans: { type: 'integer' },
          violated: { type: 'boolean' },
          message: { type: 'string' },
          witness_count: { type: 'integer' },
          witnesses: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                span_id: { type: 'string' },
                name: { type: 'string' },
                service: { type: 'string' },
                start_time_unix_nano: { type: 'string' },
                end_time_unix_nano: { type: 'string' },
              },
            },
          },
          budget_exceeded: { type: 'boolean' },
        },
      },
    },
  },
};

const RuleList = { type: 'object', required: ['rules'], properties: { rules: { type: 'array', items: ref('Rule') } } };

const Violation = {
  type: 'object',
  properties: {
    violation_id: { type: 'string' },
    rule_id: { type: 'string' },
    rule_name: { type: 'string' },
    severity: ref('Severity'),
    tags: { type: 'array', items: { type: 'string' } },
    message: { type: 'string' },
    trace_id: { type: 'string' },
    root_span_id: { type: 'string' },
    span_ids: { type: 'array', items: { type: 'string' } },
    witness_count: { type: 'integer' },
    span_count: { type: 'integer' },
    partial: { type: 'boolean' },
    root_missing: { type: 'boolean' },
    start_time_unix_nano: { type: 'string' },
    end_time_unix_nano: { type: 'string' },
    evaluated_at_ms: { type: 'integer' },
    services: { type: 'array', items: { type: 'string' }, description: "The witnesses' services (resource service.name), else the root's; at most 8" },
    witness_names: { type: 'array', items: { type: 'string' }, description: "The witnesses' distinct span names; at most 8" },
    trace_url: { type: 'string', description: 'The trace in your tracing UI (notifications.trace_url); absent without one' },
  },
};

const ViolationList = {
  type: 'object',
  required: ['violations', 'next_cursor'],
  properties: { violations: { type: 'array', items: ref('Violation') }, next_cursor: { type: ['string', 'null'] } },
};

const ReplayRequest = {
  type: 'object',
  description:
    "A replay job: the rules (rule_ids from the configuration's rule files, or rules_yaml, a rule file's text: exactly one of them), the range and the source.",
  additionalProperties: false,
  required: ['from', 'to'],
  properties: {
    rule_ids: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Rule ids from the rule files of the configuration (rules.paths).' },
    rules_yaml: { type: 'string', minLength: 1, description: "A rule file's text (YAML)." },
    from: { type: 'string', minLength: 1, description: 'Start, inclusive: RFC 3339, unix seconds, 30d/2h/15m ago, or now.' },
    to: { type: 'string', minLength: 1, description: 'End, exclusive (same forms).' },
    source: {
      type: 'string',
      enum: ['kafka', 'history', 'files', 'jaeger'],
      description:
        'kafka: the spans topic; history: the embedded transport\'s local history (transport.history); files: the trace files of files, under api.replay_dir; jaeger: the Jaeger whose query gRPC API is at jaeger. Default: the running transport\'s history (kafka with transport.kind kafka, else history); kafka when partitions are given, files when files are, jaeger when jaeger is.',
    },
    files: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'With source files: paths or globs under api.replay_dir.' },
    partitions: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 0 }, description: 'With source kafka: the partitions to read.' },
    jaeger: { type: 'string', pattern: '^jaegers?://', description: 'With source jaeger: jaeger://HOST:PORT[?search_depth=N], the query service\'s gRPC API (16685 by default); jaegers:// for TLS, verified against the system\'s CAs.' },
  },
};

/** Every component schema, by the name routes reference it with. */
export const COMPONENTS = { Error: ErrorBody, Severity, Destination, AlertRoute, RuleInput, RuleDraft, RuleCheck, RuleTry, RuleTryResult, Rule, RuleList, Violation, ViolationList, ReplayRequest } as const;

export type ComponentName = keyof typeof COMPONENTS;

/** The components as fastify's addSchema takes them: each with its name as `$id`. */
export function componentSchemas(): Array<Record<string, unknown>> {
  return Object.entries(COMPONENTS).map(([name, schema]) => ({ $id: name, ...schema }));
}

// verbose: the errors carry the value and its schema, which the messages name.
const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false });
for (const schema of componentSchemas()) ajv.addSchema(schema);

interface JsonSchema {
  $ref?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}

/** A schema with its $ref (a component's name) followed. */
function resolved(node: JsonSchema | undefined): JsonSchema | undefined {
  if (node?.$ref === undefined) return node;
  return resolved(COMPONENTS[node.$ref as ComponentName] as JsonSchema | undefined);
}

export interface BodyProblem {
  /** JSON pointer of the field ("/" for the body). */
  readonly path: string;
  readonly message: string;
}

/** A validator of component `name`: undefined when the body is valid, else one problem per field. */
export function bodyValidator(name: ComponentName, what: string): (body: unknown) => BodyProblem[] | undefined {
  const validate = ajv.getSchema(name)!;
  const schemaAt = (parts: readonly string[]): JsonSchema | undefined => {
    let node = resolved(COMPONENTS[name] as JsonSchema);
    for (const key of parts) node = resolved(/^\d+$/.test(key) ? node?.items : node?.properties?.[key]);
    return node;
  };
  return (body) => {
    if (validate(body)) return undefined;
    return schemaErrorMessages(validate.errors ?? [], schemaAt).map((m) => ({
      path: m.parts.length === 0 ? '/' : `/${m.parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`,
      message: m.path === '' ? m.message.replace(/^the value/, what) : m.message,
    }));
  };
}
