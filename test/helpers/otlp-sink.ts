/**
 * A real OTLP/gRPC server standing in for the tracing backend downstream of
 * betrace: records every span it acknowledges, and can refuse calls on demand.
 */
import * as grpc from '@grpc/grpc-js';
import { ExportTraceServiceRequest, TRACE_SERVICE_DEFINITION } from '../../src/otlp/index.ts';

export interface FlatSpan {
  /** traceId hex + '/' + spanId hex */
  readonly key: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly name: string;
  /** The whole span, resource and scope, as a plain object (protobuf JSON-like, ids hex). */
  readonly full: Record<string, unknown>;
  readonly span: Record<string, unknown>;
  readonly attributes: Record<string, unknown>;
}

/** Flattens an ExportTraceServiceRequest into spans, each carrying its resource and scope. */
export function flattenRequest(payload: Uint8Array): FlatSpan[] {
  const msg = ExportTraceServiceRequest.decode(payload);
  const obj = ExportTraceServiceRequest.toObject(msg, { longs: String, bytes: String, enums: Number, defaults: false }) as {
    resourceSpans?: Array<{ resource?: unknown; schemaUrl?: string; scopeSpans?: Array<{ scope?: unknown; schemaUrl?: string; spans?: Array<Record<string, unknown>> }> }>;
  };
  const out: FlatSpan[] = [];
  for (const rs of obj.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        const traceId = Buffer.from(span.traceId as string, 'base64').toString('hex');
        const spanId = Buffer.from(span.spanId as string, 'base64').toString('hex');
        const attributes: Record<string, unknown> = {};
        for (const kv of (span.attributes as Array<{ key: string; value: Record<string, unknown> }> | undefined) ?? []) {
          attributes[kv.key] = Object.values(kv.value)[0];
        }
        out.push({
          key: `${traceId}/${spanId}`,
          traceId,
          spanId,
          name: span.name as string,
          span,
          attributes,
          full: { resource: rs.resource, resourceSchemaUrl: rs.schemaUrl, scope: ss.scope, scopeSchemaUrl: ss.schemaUrl, span },
        });
      }
    }
  }
  return out;
}

export interface OtlpSink {
  readonly url: string;
  readonly port: number;
  readonly spans: FlatSpan[];
  readonly calls: number;
  /** Each call is refused with UNAVAILABLE with this probability (0..1). */
  refuseRatio: number;
  /** Each call is answered (and its spans kept) this many ms after it arrives. */
  delayMs: number;
  /** Waits until `predicate(spans)` holds, or throws after `timeoutMs`. */
  waitFor(predicate: (spans: readonly FlatSpan[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** Stops listening (clients see UNAVAILABLE); start() listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startOtlpSink(options: { port?: number } = {}): Promise<OtlpSink> {
  let server: grpc.Server | undefined;
  let port = options.port ?? 0;
  let calls = 0;
  const spans: FlatSpan[] = [];
  const sink: OtlpSink = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    spans,
    get calls() {
      return calls;
    },
    refuseRatio: 0,
    delayMs: 0,
    async waitFor(predicate, timeoutMs = 30_000, what = 'condition') {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(spans)) {
        if (Date.now() > deadline) throw new Error(`sink: timed out waiting for ${what} (have ${spans.length} spans)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async start() {
      if (server !== undefined) return;
      const s = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
      s.addService(
        TRACE_SERVICE_DEFINITION,
        {
          Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
            calls++;
            if (sink.refuseRatio > 0 && Math.random() < sink.refuseRatio) {
              cb({ code: grpc.status.UNAVAILABLE, details: 'sink refusing on purpose' }, null);
              return;
            }
            const take = () => {
              spans.push(...flattenRequest(call.request));
              cb(null, Buffer.alloc(0));
            };
            if (sink.delayMs > 0) setTimeout(take, sink.delayMs);
            else take();
          },
        },
      );
      port = await new Promise<number>((resolve, reject) =>
        s.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      server = s;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s === undefined) return;
      s.forceShutdown();
      await new Promise((r) => setTimeout(r, 50));
    },
    close() {
      return sink.stop();
    },
  };
  await sink.start();
  return sink;
}
