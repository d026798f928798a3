/**
 * Replay source: a Jaeger's stored traces, read through its query API v3 over gRPC
 * (`jaeger://HOST:PORT`, the query service's gRPC port, 16685 by default).
 *
 * Jaeger's trace search needs a service and caps its results (search_depth; the memory
 * storage refuses a depth above its max_traces), so the candidates are found by search,
 * then each is fetched whole:
 *
 * - the services are listed; when every rule has triggers and passes on a trace without
 *   them (as the engine skips by triggers), each service's operations are listed and
 *   each (service, trigger span name) pair the backend knows is searched over
 *   [from, to + trace_max_duration] (a trigger span starts at most that long after its
 *   trace's earliest span); otherwise every service is searched without an operation over
 *   [from, to] (every trace of the range has a span starting in it), and the report says
 *   it was a full scan and how long it took;
 * - a search walks its range in time slices: a slice that returns search_depth traces
 *   may have been cut, so it is halved and searched again; a slice that returns few
 *   doubles the next one. A single millisecond with search_depth traces is an error
 *   (raise search_depth), never a silently short answer;
 * - each distinct trace id found is fetched with GetTrace (raw, without Jaeger's clock
 *   skew adjustment, so the span times are the stored ones) and given to the engine as
 *   one record on a lane of its own: a trace fetched whole is complete, whatever order
 *   the traces come in. The engine keeps those whose earliest span start is in range.
 *
 * Plaintext gRPC only. A trace removed between its search and its fetch (retention) is
 * counted in the description.
 */
import { Client, credentials, Metadata, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { scanPart, splitByTrace } from '../otlp/index.ts';
import type { ReplayEngine } from './engine.ts';
import type { SourceProgress, SourceResult } from './source.ts';

/** Search depth when the URL gives none: within the default max_traces of Jaeger's memory storage and Elasticsearch's 10,000. */
export const DEFAULT_JAEGER_SEARCH_DEPTH = 1000;

const root = protobuf.loadSync(join(dirname(fileURLToPath(import.meta.url)), 'jaeger-query.proto'));
const types = {
  GetTraceRequest: root.lookupType('jaeger.api_v3.GetTraceRequest'),
  FindTracesRequest: root.lookupType('jaeger.api_v3.FindTracesRequest'),
  GetServicesRequest: root.lookupType('jaeger.api_v3.GetServicesRequest'),
  GetServicesResponse: root.lookupType('jaeger.api_v3.GetServicesResponse'),
  GetOperationsRequest: root.lookupType('jaeger.api_v3.GetOperationsRequest'),
  GetOperationsResponse: root.lookupType('jaeger.api_v3.GetOperationsResponse'),
};
const SERVICE = '/jaeger.api_v3.QueryService';

export interface JaegerEndpoint {
  /** host:port of the query service's gRPC listener. */
  readonly address: string;
  readonly searchDepth: number;
  /** `jaegers://`: TLS, verified against the system's roots or `caFile`. */
  readonly tls: boolean;
  /** PEM file of the CA that issued the query service's certificate (`?ca=FILE`, command line only). */
  readonly caFile?: string;
}

/**
 * Parses `jaeger://HOST:PORT[?search_depth=N]` (plaintext) or `jaegers://HOST:PORT[?search_depth=N][&ca=FILE]`
 * (TLS); an error string when it is malformed. `files: false` (API replay jobs) refuses `ca`: a
 * request does not name files on the server.
 */
export function parseJaegerSource(source: string, options: { readonly files?: boolean } = {}): JaegerEndpoint | string {
  const form = 'jaeger://HOST:PORT, or jaegers://HOST:PORT for TLS';
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    return `--source ${source}: not a URL (${form})`;
  }
  if (url.protocol !== 'jaeger:' && url.protocol !== 'jaegers:') {
    return `--source ${source}: not a jaeger URL (${form})`;
  }
  const tls = url.protocol === 'jaegers:';
  if (url.hostname === '' || url.port === '') return `--source ${source}: give the host and port of Jaeger's query gRPC API (${form}; 16685 by default)`;
  if (url.pathname !== '' && url.pathname !== '/') return `--source ${source}: a jaeger URL has no path`;
  let searchDepth = DEFAULT_JAEGER_SEARCH_DEPTH;
  let caFile: string | undefined;
  for (const [key, value] of url.searchParams) {
    if (key === 'search_depth') {
      if (!/^[1-9][0-9]{0,8}$/.test(value)) return `--source ${source}: search_depth must be a positive integer`;
      searchDepth = Number(value);
    } else if (key === 'ca') {
      if (!tls) return `--source ${source}: ca is for TLS (jaegers://HOST:PORT?ca=FILE)`;
      if (options.files === false) return `--source ${source}: ca names a file on the server, which a replay job may not; jaegers:// verifies against the system's CAs`;
      if (value === '') return `--source ${source}: ca=FILE names the PEM file of the CA`;
      caFile = value;
    } else return `--source ${source}: unknown parameter ${key} (search_depth${tls ? ' and ca are the parameters' : ' is the one parameter'})`;
  }
  return { address: url.host, searchDepth, tls, ...(caFile === undefined ? {} : { caFile }) };
}

export interface JaegerSourceOptions {
  readonly endpoint: JaegerEndpoint;
  /** worker.trace_max_duration: how long after a trace's first span a trigger span may start. */
  readonly marginMs: number;
  /** Traces fetched at once (default 8). */
  readonly concurrency?: number;
  readonly onProgress?: (p: SourceProgress) => void;
  readonly signal?: AbortSignal;
}

/** An expected failure, reported as the replay's error; `code` is the gRPC status when Jaeger answered with one. */
class SourceError extends Error {
  readonly code: status | undefined;
  constructor(message: string, code?: status) {
    super(message);
    this.code = code;
  }
}

const bytes = (b: Buffer): Buffer => b;
const timestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

/** The query API's calls, each message encoded and decoded here. */
class QueryClient {
  readonly #client: Client;
  readonly #address: string;

  constructor(address: string, channel: ChannelCredentials, tls: boolean) {
    this.#address = `${tls ? 'jaegers' : 'jaeger'}://${address}`;
    this.#client = new Client(address, channel, { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  }

  close(): void {
    this.#client.close();
  }

  #error(call: string, err: ServiceError): SourceError {
    const reason = err.code === status.UNAVAILABLE ? `cannot reach Jaeger's query API at ${this.#address}` : `Jaeger ${call} failed`;
    return new SourceError(`${reason}: ${status[err.code] ?? err.code} ${err.details || err.message}`, err.code);
  }

  #unary<T>(method: string, request: Uint8Array, decode: (b: Buffer) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(`${SERVICE}/${method}`, bytes, bytes, Buffer.from(request), new Metadata(), { deadline: Date.now() + 30_000 }, (err, value) => {
        if (err) return reject(this.#error(method, err));
        try {
          resolve(decode(value ?? Buffer.alloc(0)));
        } catch (e) {
          reject(new SourceError(`Jaeger ${method} answered with something that is not its response message: ${(e as Error).message}`));
        }
      });
    });
  }

  /** The stream's messages (TracesData bytes), in order. */
  #stream(method: string, request: Uint8Array, signal: AbortSignal | undefined): Promise<Buffer[]> {
    return new Promise((resolve, reject) => {
      const call = this.#client.makeServerStreamRequest(`${SERVICE}/${method}`, bytes, bytes, Buffer.from(request), new Metadata(), { deadline: Date.now() + 120_000 });
      const chunks: Buffer[] = [];
      const abort = () => call.cancel();
      signal?.addEventListener('abort', abort, { once: true });
      call.on('data', (chunk: Buffer) => chunks.push(chunk));
      call.on('error', (err: ServiceError) => {
        signal?.removeEventListener('abort', abort);
        reject(this.#error(method, err));
      });
      call.on('end', () => {
        signal?.removeEventListener('abort', abort);
        resolve(chunks);
      });
    });
  }

  async services(): Promise<string[]> {
    return this.#unary('GetServices', types.GetServicesRequest.encode({}).finish(), (b) => (types.GetServicesResponse.decode(b) as unknown as { services: string[] }).services);
  }

  async operations(service: string): Promise<string[]> {
    const request = types.GetOperationsRequest.encode(types.GetOperationsRequest.fromObject({ service })).finish();
    const response = await this.#unary('GetOperations', request, (b) => types.GetOperationsResponse.decode(b) as unknown as { operations: Array<{ name: string }> });
    return response.operations.map((o) => o.name);
  }

  /** Trace ids of one search (at most `depth`). */
  async find(service: string, operation: string, fromMs: number, toMs: number, depth: number, signal: AbortSignal | undefined): Promise<string[]> {
    const query = { serviceName: service, operationName: operation, startTimeMin: timestamp(fromMs), startTimeMax: timestamp(toMs), searchDepth: depth, rawTraces: true };
    const request = types.FindTracesRequest.encode(types.FindTracesRequest.fromObject({ query })).finish();
    const ids = new Set<string>();
    for (const chunk of await this.#stream('FindTraces', request, signal)) for (const id of traceIdsOf(chunk)) ids.add(id);
    return [...ids];
  }

  /** The trace's stored spans as one TracesData (the stream's messages concatenated: their resource_spans add up); undefined when Jaeger no longer has it. */
  async trace(traceId: string, signal: AbortSignal | undefined): Promise<Buffer | undefined> {
    const request = types.GetTraceRequest.encode(types.GetTraceRequest.fromObject({ traceId, rawTraces: true })).finish();
    try {
      const chunks = await this.#stream('GetTrace', request, signal);
      return chunks.length === 0 ? undefined : Buffer.concat(chunks);
    } catch (err) {
      if (err instanceof SourceError && err.code === status.NOT_FOUND) return undefined;
      throw err;
    }
  }
}

/** The trace ids of a TracesData message (one trace per message from Jaeger, but not assumed). */
function traceIdsOf(chunk: Buffer): string[] {
  const scan = scanPart(chunk, null);
  if (scan.spanCount === 0) return [];
  if (!scan.multipleTraces) return scan.traceId === '' ? [] : [scan.traceId];
  const split = splitByTrace(chunk);
  if (!split.ok) throw new SourceError('Jaeger returned a search result that is not an OTLP TracesData message');
  return split.traces.map((t) => t.traceId).filter((id) => id !== '');
}

interface Search {
  readonly service: string;
  /** '' for every operation. */
  readonly operation: string;
}

/** Reads the candidates of the rules from Jaeger into `engine`. */
export async function readJaegerSource(engine: ReplayEngine, options: JaegerSourceOptions): Promise<SourceResult> {
  const { endpoint, signal } = options;
  let channel = credentials.createInsecure();
  if (endpoint.tls) {
    let ca: Buffer | undefined;
    if (endpoint.caFile !== undefined) {
      try {
        ca = await readFile(endpoint.caFile);
      } catch (err) {
        return { ok: false, error: `cannot read the CA of jaegers://${endpoint.address} (ca=${endpoint.caFile}): ${(err as Error).message}` };
      }
    }
    try {
      channel = credentials.createSsl(ca);
    } catch (err) {
      return { ok: false, error: `the CA of jaegers://${endpoint.address} (ca=${endpoint.caFile}) is not PEM certificates: ${(err as Error).message}` };
    }
  }
  const client = new QueryClient(endpoint.address, channel, endpoint.tls);
  const started = performance.now();
  const cancelled = () => {
    if (signal?.aborted === true) throw new SourceError('replay cancelled');
  };
  try {
    const services = await client.services();
    const triggers = engine.triggerNames;
    const searches: Search[] = [];
    const fromMs = engine.fromMs;
    let toMs = engine.toMs;
    if (triggers !== null) {
      for (const service of services) {
        for (const operation of await client.operations(service)) if (triggers.has(operation)) searches.push({ service, operation });
      }
      toMs += options.marginMs;
    } else {
      for (const service of services) searches.push({ service, operation: '' });
    }

    const ids = new Set<string>();
    let queries = 0;
    for (const [i, search] of searches.entries()) {
      queries += await searchRange(client, search, fromMs, toMs, endpoint.searchDepth, ids, signal);
      cancelled();
      options.onProgress?.({ fraction: ((i + 1) / searches.length) * 0.5 });
    }

    const queue = [...ids];
    let fetched = 0;
    let missing = 0;
    const fetchOne = async (): Promise<void> => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
        cancelled();
        const trace = await client.trace(id, signal);
        if (trace === undefined) missing++;
        else {
          const lane = engine.lane();
          lane.addRecord(trace);
          lane.end();
        }
        fetched++;
        if ((fetched & 63) === 0) options.onProgress?.({ fraction: 0.5 + (fetched / ids.size) * 0.5 });
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 8, Math.max(1, ids.size)) }, fetchOne));
    cancelled();

    const historyStartMs = await historyStartAfter(client, services, fromMs, engine.toMs, signal);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const how = triggers !== null
      ? `the rules' trigger spans searched in ${searches.length} service/operation pair${searches.length === 1 ? '' : 's'}`
      : `a full scan (some rule has no triggers): every trace of ${services.length} service${services.length === 1 ? '' : 's'} read, in ${seconds} s`;
    const gone = missing === 0 ? '' : `, ${missing} gone before they were fetched`;
    return {
      ok: true,
      description: `Jaeger at ${endpoint.address}: ${how}, ${queries} searches of depth ${endpoint.searchDepth}, ${ids.size} traces fetched${gone}`,
      ...(historyStartMs === undefined ? { fromHistoryStart: false } : { fromHistoryStart: true, historyStartMs }),
    };
  } catch (err) {
    if (err instanceof SourceError) return { ok: false, error: err.message };
    // An answer that does not decode as the API's messages.
    return { ok: false, error: `reading from Jaeger at ${endpoint.address} failed: ${(err as Error).message}` };
  } finally {
    client.close();
  }
}

/**
 * Searches [fromMs, toMs] in slices that stay under the cap: a slice answered with
 * `depth` traces is halved and searched again; a slice answered with under a quarter of
 * it doubles the next slice. Adds the ids found to `ids`; returns the searches made.
 */
/** Before it no time is plausible (src/otlp isPlausibleTimeMs): where a search for anything earlier starts. */
const EARLIEST_MS = Date.UTC(2000, 0, 1);

/**
 * Where Jaeger's history starts when that is after `fromMs` (a memory storage past its
 * max_traces, a retention): undefined when some service holds a span that started before
 * `fromMs`; else the earliest span start it holds in [fromMs, toMs), to the millisecond,
 * found by searches of depth 1 halving the range (Infinity when it holds none there).
 */
async function historyStartAfter(client: QueryClient, services: readonly string[], fromMs: number, toMs: number, signal: AbortSignal | undefined): Promise<number | undefined> {
  const holds = async (lo: number, hi: number): Promise<boolean> => {
    for (const service of services) if ((await client.find(service, '', lo, hi, 1, signal)).length > 0) return true;
    return false;
  };
  if (fromMs <= EARLIEST_MS || (await holds(EARLIEST_MS, fromMs))) return undefined;
  if (!(await holds(fromMs, toMs))) return Infinity;
  // Jaeger's start_time_max is inclusive: no span starts in [fromMs, lo], one does in [fromMs, hi].
  let lo = fromMs;
  let hi = toMs;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await holds(fromMs, mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

async function searchRange(client: QueryClient, search: Search, fromMs: number, toMs: number, depth: number, ids: Set<string>, signal: AbortSignal | undefined): Promise<number> {
  let queries = 0;
  let width = Math.max(1, toMs - fromMs);
  for (let lo = fromMs; lo < toMs; ) {
    const hi = Math.min(toMs, lo + width);
    const found = await client.find(search.service, search.operation, lo, hi, depth, signal);
    queries++;
    if (found.length >= depth) {
      if (hi - lo <= 1) {
        throw new SourceError(
          `Jaeger holds ${depth} or more traces of service ${search.service}${search.operation === '' ? '' : ` with span ${search.operation}`} in the millisecond at ${new Date(lo).toISOString()}: raise search_depth (jaeger://HOST:PORT?search_depth=N)`,
        );
      }
      width = Math.max(1, Math.floor((hi - lo) / 2));
      continue;
    }
    for (const id of found) ids.add(id);
    lo = hi;
    if (found.length < depth / 4) width *= 2;
  }
  return queries;
}

