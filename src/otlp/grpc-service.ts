/**
 * The OTLP TraceService as a grpc-js service definition whose messages are raw
 * protobuf bytes: betrace splits and forwards requests at the byte level, so
 * neither side of a call decodes through grpc-js.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { TRACE_EXPORT_PATH } from './schema.ts';

const bytes = (b: Buffer): Buffer => b;

export const TRACE_SERVICE_DEFINITION = {
  Export: {
    path: TRACE_EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
} satisfies ServiceDefinition;
