/**
 * A downstream that is betrace's own receiver: every forwarded span would come back in, be
 * forwarded again, and so on without end. Refused at start (`betrace run`), whatever the roles of
 * the process: in Kafka mode a forwarder exporting to the receiver of the same configuration is the
 * same loop, one process removed.
 */
import { hostname, networkInterfaces } from 'node:os';
import type { Config, ListenConfig } from './config.ts';
import { isLoopbackHost } from './units.ts';

/** The variables that set downstream.endpoint, the one that wins first (each overrides the config file). */
export const DOWNSTREAM_ENDPOINT_VARIABLES = ['BETRACE_DOWNSTREAM_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'] as const;

/** Where downstream.endpoint came from: the variable that set it, or undefined for the config file. */
export function downstreamEndpointVariable(env: NodeJS.ProcessEnv): (typeof DOWNSTREAM_ENDPOINT_VARIABLES)[number] | undefined {
  return DOWNSTREAM_ENDPOINT_VARIABLES.find((name) => env[name] !== undefined && env[name] !== '');
}

/** Lower case, without brackets, IPv6 in its canonical form. */
function normalHost(host: string): string {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (!h.includes(':')) return h;
  try {
    return new URL(`http://[${h}]/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return h;
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** Addresses (and the name) by which this host reaches itself, besides loopback. */
function localAddresses(): Set<string> {
  const out = new Set<string>([normalHost(hostname())]);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(normalHost(a.address.replace(/%.*$/, '')));
  }
  return out;
}

/** Whether a connection to `target` reaches a socket listening on `bound` (host parts only). */
function sameHost(target: string, bound: string, local: () => Set<string>): boolean {
  const t = normalHost(target);
  const b = normalHost(bound);
  if (t === b) return true;
  const tLocal = isLoopbackHost(t) || isWildcard(t);
  if (isLoopbackHost(b)) return tLocal;
  if (isWildcard(b)) return tLocal || local().has(t);
  return isWildcard(t) && local().has(b);
}

/** host and port of a downstream URL (http://host:port, https://…, or host:port). */
function downstreamHostPort(endpoint: string): { host: string; port: number } | undefined {
  const m = /^(?:https?:\/\/)?(\[[^\]]+\]|[^\s/:]+):(\d{1,5})\/?$/i.exec(endpoint.trim());
  return m === null ? undefined : { host: m[1]!, port: Number(m[2]) };
}

/**
 * The reason downstream.endpoint is refused, or undefined when it is not one of the configured
 * receiver's endpoints (same port, and a host reaching the bound address: loopback names as one,
 * a receiver bound to 0.0.0.0 or :: as every local address).
 */
export function downstreamLoopProblem(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const target = downstreamHostPort(config.downstream.endpoint);
  if (target === undefined) return undefined;
  let addresses: Set<string> | undefined;
  const local = () => (addresses ??= localAddresses());
  const receivers: Array<[string, string, ListenConfig]> = [
    ['receiver.grpc.endpoint', 'OTLP/gRPC receiver', config.receiver.grpc],
    ['receiver.http.endpoint', 'OTLP/HTTP receiver', config.receiver.http],
  ];
  const hit = receivers.find(([, , l]) => l.enabled && l.port !== 0 && l.port === target.port && sameHost(target.host, l.host, local));
  if (hit === undefined) return undefined;
  const [key, what, l] = hit;
  const bound = `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
  const why = `is betrace's own ${what} (${key} ${bound}): betrace would send every span back to itself`;
  const variable = downstreamEndpointVariable(env);
  if (variable === undefined) {
    return `downstream.endpoint ${config.downstream.endpoint} ${why}. Set downstream.endpoint (or BETRACE_DOWNSTREAM_ENDPOINT) to your tracing backend's OTLP/gRPC endpoint, or leave it empty to export nothing`;
  }
  if (variable === 'BETRACE_DOWNSTREAM_ENDPOINT') {
    return `BETRACE_DOWNSTREAM_ENDPOINT=${config.downstream.endpoint} ${why}. Set it to your tracing backend's OTLP/gRPC endpoint`;
  }
  return (
    `${variable}=${config.downstream.endpoint} ${why}. ` +
    `Unset it in betrace's environment (it is meant for the applications that send to betrace) or set downstream.endpoint / BETRACE_DOWNSTREAM_ENDPOINT to your backend ` +
    `(BETRACE_DOWNSTREAM_ENDPOINT overrides ${variable}; downstream.endpoint applies once ${variable} is unset)`
  );
}
