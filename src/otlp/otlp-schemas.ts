/**
 * Wire schemas of the OTLP trace messages, for checkMessage: built from the .proto
 * files (schema.ts loads them), so field numbers, wire types and names are written
 * once, there. Every proto3 `string` is checked as UTF-8 (a conformant decoder
 * refuses one that is not); the ids a span refers to by are checked as the
 * Collector decodes them (empty or 8 / 16 bytes). A span's own trace and span id
 * are not: the splitter rejects a span with a missing or malformed one by name.
 */
import type protobuf from 'protobufjs';
import { otlpType } from './schema.ts';
import { CONTENT_ID16, CONTENT_ID8, CONTENT_UTF8, MessageSchema, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, hasKeyValueShape } from './wire.ts';

const TRACE = 'opentelemetry.proto.trace.v1';

/** Byte fields holding ids: their content rule. */
const IDS: Readonly<Record<string, number>> = {
  [`${TRACE}.Span.parent_span_id`]: CONTENT_ID8,
  [`${TRACE}.Span.Link.trace_id`]: CONTENT_ID16,
  [`${TRACE}.Span.Link.span_id`]: CONTENT_ID8,
};

/** The wire type of a scalar field of this .proto type (enums are varints). */
function scalarWireType(field: protobuf.Field): number {
  if (field.resolvedType !== null && !('fields' in field.resolvedType)) return WIRE_VARINT; // an enum
  switch (field.type) {
    case 'fixed64':
    case 'sfixed64':
    case 'double':
      return WIRE_FIXED64;
    case 'fixed32':
    case 'sfixed32':
    case 'float':
      return WIRE_FIXED32;
    case 'string':
    case 'bytes':
      return WIRE_LEN;
    default:
      return WIRE_VARINT;
  }
}

/** A field's name as the .proto writes it (protobufjs gives it in camelCase). */
function protoName(field: protobuf.Field): string {
  return field.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The name a path shows for a type: its name within the package (`Span.Event`). */
function shortName(type: protobuf.Type): string {
  const parent = type.parent;
  return parent !== null && 'fields' in parent ? `${shortName(parent as protobuf.Type)}.${type.name}` : type.name;
}

/** The schema of a message type, its nested types built with it into `built` (types refer to each other in cycles). */
function schemaOf(type: protobuf.Type, built: Map<string, MessageSchema>): MessageSchema {
  const known = built.get(type.fullName);
  if (known !== undefined) return known;
  const schema = new MessageSchema(shortName(type));
  built.set(type.fullName, schema);
  for (const field of type.fieldsArray) {
    const name = field.repeated ? `${protoName(field)}[]` : protoName(field);
    const resolved = field.resolvedType;
    if (resolved !== null && 'fields' in resolved) {
      schema.define(field.id, name, schemaOf(resolved, built));
      continue;
    }
    const id = IDS[`${type.fullName.replace(/^\./, '')}.${protoName(field)}`];
    const content = id ?? (field.type === 'string' ? CONTENT_UTF8 : undefined);
    schema.define(field.id, name, scalarWireType(field), content);
  }
  return schema;
}

/** The schemas of every message a span holds, from the Span and the headers the splitter checks. */
function buildSchemas(): Record<'request' | 'resourceSpans' | 'scopeSpans' | 'span' | 'resource' | 'scope', MessageSchema> {
  const built = new Map<string, MessageSchema>();
  const out = {
    request: schemaOf(otlpType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'), built),
    resourceSpans: schemaOf(otlpType(`${TRACE}.ResourceSpans`), built),
    scopeSpans: schemaOf(otlpType(`${TRACE}.ScopeSpans`), built),
    span: schemaOf(otlpType(`${TRACE}.Span`), built),
    resource: schemaOf(otlpType('opentelemetry.proto.resource.v1.Resource'), built),
    scope: schemaOf(otlpType('opentelemetry.proto.common.v1.InstrumentationScope'), built),
  };
  for (const schema of built.values()) schema.keyValue = hasKeyValueShape(schema);
  return out;
}

const schemas = buildSchemas();
export const SpanSchema = schemas.span;
export const ResourceSchema = schemas.resource;
export const ScopeSchema = schemas.scope;
/** Tags (field number << 3 | wire type) of the request's framing down to its spans. */
export const REQUEST_TAGS = {
  resourceSpans: schemas.request.tag('resource_spans'),
  resource: schemas.resourceSpans.tag('resource'),
  scopeSpans: schemas.resourceSpans.tag('scope_spans'),
  resourceSchemaUrl: schemas.resourceSpans.tag('schema_url'),
  scope: schemas.scopeSpans.tag('scope'),
  spans: schemas.scopeSpans.tag('spans'),
  scopeSchemaUrl: schemas.scopeSpans.tag('schema_url'),
} as const;

/** Nested schemas, by field: the span's attributes are KeyValues, their values AnyValues. */
export const KeyValueSchema = SpanSchema.nested[9] as MessageSchema;
export const AnyValueSchema = KeyValueSchema.nested[2] as MessageSchema;
