/** A raw OTLP/gRPC client for tests: sends ready-made request bytes, reports the status. */
import * as grpc from '@grpc/grpc-js';
import { TRACE_SERVICE_DEFINITION } from '../../src/otlp/index.ts';

export interface RawTraceClient {
  /** Resolves with the call's error (null on success) and the response bytes. */
  export(body: Buffer, options?: { token?: string; deadlineMs?: number }): Promise<{ err: grpc.ServiceError | null; res: Buffer | undefined }>;
  close(): void;
}

export function rawTraceClient(address: string, credentials = grpc.credentials.createInsecure()): RawTraceClient {
  const Client = grpc.makeGenericClientConstructor(TRACE_SERVICE_DEFINITION, 'TraceService');
  const client = new Client(address.replace(/^https?:\/\//, ''), credentials, { 'grpc.max_send_message_length': 64 * 1024 * 1024 }) as unknown as {
    Export: (b: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;
    close(): void;
  };
  return {
    export: (body, options = {}) =>
      new Promise((resolve) => {
        const md = new grpc.Metadata();
        if (options.token) md.set('authorization', `Bearer ${options.token}`);
        client.Export(body, md, { deadline: Date.now() + (options.deadlineMs ?? 20_000) }, (err, res) => resolve({ err, res }));
      }),
    close: () => client.close(),
  };
}
