/**
 * Wire schemas of the OTLP trace messages, for checkMessage (field numbers and
 * names from opentelemetry-proto). Every proto3 `string` field is WIRE_STRING:
 * a conformant decoder refuses one that is not UTF-8.
 */
import { WIRE_FIXED32, WIRE_FIXED64, WIRE_ID16, WIRE_ID8, WIRE_LEN, WIRE_STRING, WIRE_VARINT, type MessageSchema } from './wire.ts';

const anyValueFields: Record<number, number | MessageSchema> = {};
const keyValueFields: Record<number, number | MessageSchema> = {};

export const AnyValueSchema: MessageSchema = {
  name: 'AnyValue',
  fields: anyValueFields,
  names: {
    1: 'string_value',
    2: 'bool_value',
    3: 'int_value',
    4: 'double_value',
    5: 'array_value',
    6: 'kvlist_value',
    7: 'bytes_value',
    8: 'string_value_strindex',
  },
};
export const KeyValueSchema: MessageSchema = { name: 'KeyValue', fields: keyValueFields, names: { 1: 'key', 2: 'value', 3: 'key_strindex' } };
const ArrayValueSchema: MessageSchema = { name: 'ArrayValue', fields: { 1: AnyValueSchema }, names: { 1: 'values[]' } };
const KeyValueListSchema: MessageSchema = { name: 'KeyValueList', fields: { 1: KeyValueSchema }, names: { 1: 'values[]' } };
Object.assign(anyValueFields, {
  1: WIRE_STRING,
  2: WIRE_VARINT,
  3: WIRE_VARINT,
  4: WIRE_FIXED64,
  5: ArrayValueSchema,
  6: KeyValueListSchema,
  7: WIRE_LEN,
  // Newer opentelemetry-proto (profiles' string tables); a decoder that knows them refuses another wire type.
  8: WIRE_VARINT,
});
Object.assign(keyValueFields, { 1: WIRE_STRING, 2: AnyValueSchema, 3: WIRE_VARINT });

const EntityRefSchema: MessageSchema = {
  name: 'EntityRef',
  fields: { 1: WIRE_STRING, 2: WIRE_STRING, 3: WIRE_STRING, 4: WIRE_STRING },
  names: { 1: 'schema_url', 2: 'type', 3: 'id_keys[]', 4: 'description_keys[]' },
};
export const ResourceSchema: MessageSchema = {
  name: 'Resource',
  fields: { 1: KeyValueSchema, 2: WIRE_VARINT, 3: EntityRefSchema },
  names: { 1: 'attributes[]', 2: 'dropped_attributes_count', 3: 'entity_refs[]' },
};
export const ScopeSchema: MessageSchema = {
  name: 'InstrumentationScope',
  fields: { 1: WIRE_STRING, 2: WIRE_STRING, 3: KeyValueSchema, 4: WIRE_VARINT },
  names: { 1: 'name', 2: 'version', 3: 'attributes[]', 4: 'dropped_attributes_count' },
};
const EventSchema: MessageSchema = {
  name: 'Span.Event',
  fields: { 1: WIRE_FIXED64, 2: WIRE_STRING, 3: KeyValueSchema, 4: WIRE_VARINT },
  names: { 1: 'time_unix_nano', 2: 'name', 3: 'attributes[]', 4: 'dropped_attributes_count' },
};
const LinkSchema: MessageSchema = {
  name: 'Span.Link',
  fields: { 1: WIRE_ID16, 2: WIRE_ID8, 3: WIRE_STRING, 4: KeyValueSchema, 5: WIRE_VARINT, 6: WIRE_FIXED32 },
  names: { 1: 'trace_id', 2: 'span_id', 3: 'trace_state', 4: 'attributes[]', 5: 'dropped_attributes_count', 6: 'flags' },
};
const StatusSchema: MessageSchema = { name: 'Status', fields: { 2: WIRE_STRING, 3: WIRE_VARINT }, names: { 2: 'message', 3: 'code' } };
export const SpanSchema: MessageSchema = {
  name: 'Span',
  fields: {
    1: WIRE_LEN,
    2: WIRE_LEN,
    3: WIRE_STRING,
    4: WIRE_ID8,
    5: WIRE_STRING,
    6: WIRE_VARINT,
    7: WIRE_FIXED64,
    8: WIRE_FIXED64,
    9: KeyValueSchema,
    10: WIRE_VARINT,
    11: EventSchema,
    12: WIRE_VARINT,
    13: LinkSchema,
    14: WIRE_VARINT,
    15: StatusSchema,
    16: WIRE_FIXED32,
  },
  names: {
    1: 'trace_id',
    2: 'span_id',
    3: 'trace_state',
    4: 'parent_span_id',
    5: 'name',
    6: 'kind',
    7: 'start_time_unix_nano',
    8: 'end_time_unix_nano',
    9: 'attributes[]',
    10: 'dropped_attributes_count',
    11: 'events[]',
    12: 'dropped_events_count',
    13: 'links[]',
    14: 'dropped_links_count',
    15: 'status',
    16: 'flags',
  },
};

