/** Wire schemas of the OTLP trace messages, for checkMessage (field numbers from opentelemetry-proto). */
import { WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, type MessageSchema } from './wire.ts';

const anyValueFields: Record<number, number | MessageSchema> = {};
const keyValueFields: Record<number, number | MessageSchema> = {};

export const AnyValueSchema: MessageSchema = { name: 'AnyValue', fields: anyValueFields };
export const KeyValueSchema: MessageSchema = { name: 'KeyValue', fields: keyValueFields };
const ArrayValueSchema: MessageSchema = { name: 'ArrayValue', fields: { 1: AnyValueSchema } };
const KeyValueListSchema: MessageSchema = { name: 'KeyValueList', fields: { 1: KeyValueSchema } };
Object.assign(anyValueFields, {
  1: WIRE_LEN,
  2: WIRE_VARINT,
  3: WIRE_VARINT,
  4: WIRE_FIXED64,
  5: ArrayValueSchema,
  6: KeyValueListSchema,
  7: WIRE_LEN,
});
Object.assign(keyValueFields, { 1: WIRE_LEN, 2: AnyValueSchema });

const EntityRefSchema: MessageSchema = { name: 'EntityRef', fields: { 1: WIRE_LEN, 2: WIRE_LEN, 3: WIRE_LEN, 4: WIRE_LEN } };
export const ResourceSchema: MessageSchema = {
  name: 'Resource',
  fields: { 1: KeyValueSchema, 2: WIRE_VARINT, 3: EntityRefSchema },
};
export const ScopeSchema: MessageSchema = {
  name: 'InstrumentationScope',
  fields: { 1: WIRE_LEN, 2: WIRE_LEN, 3: KeyValueSchema, 4: WIRE_VARINT },
};
const EventSchema: MessageSchema = {
  name: 'Span.Event',
  fields: { 1: WIRE_FIXED64, 2: WIRE_LEN, 3: KeyValueSchema, 4: WIRE_VARINT },
};
const LinkSchema: MessageSchema = {
  name: 'Span.Link',
  fields: { 1: WIRE_LEN, 2: WIRE_LEN, 3: WIRE_LEN, 4: KeyValueSchema, 5: WIRE_VARINT, 6: WIRE_FIXED32 },
};
const StatusSchema: MessageSchema = { name: 'Status', fields: { 2: WIRE_LEN, 3: WIRE_VARINT } };
export const SpanSchema: MessageSchema = {
  name: 'Span',
  fields: {
    1: WIRE_LEN,
    2: WIRE_LEN,
    3: WIRE_LEN,
    4: WIRE_LEN,
    5: WIRE_LEN,
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
};
