/**
 * The Kafka client betrace uses (@platformatic/kafka), through its public API only:
 * connection options from the configuration, an admin call with retries, and the
 * description of its errors. The only module of src that imports the library (lint
 * enforces it); the adapters (transport, ledger, rule store, replay source) take the
 * client classes from here.
 */
import { Admin, Consumer, TimeoutError, type BaseOptions, type ConsumeBaseOptions, type SASLMechanismValue } from '@platformatic/kafka';

// The client classes and types the adapters use, unchanged.
export { Admin, Consumer, Producer, type Message, type MessagesStream } from '@platformatic/kafka';
import type { KafkaConfig } from '../config/index.ts';

export class KafkaTransportError extends Error {
  override name = 'KafkaTransportError';
}

const SASL_MECHANISMS: Record<Exclude<KafkaConfig['sasl']['mechanism'], 'none'>, SASLMechanismValue> = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
};

/**
 * Every produce call passes `acks: -1` itself: the client applies acks only
 * per send (a producer's own `acks` option is not used for sends that are not
 * idempotent), and acks=all is what every betrace acknowledgement rests on.
 *
 * Connection options of every client: bootstrap brokers, TLS (the broker's
 * certificate always verified), SASL, timeouts. The client's own retries are
 * few and short: betrace's callers decide what a failure means (the receiver
 * answers UNAVAILABLE, a worker retries a violation write), so a call must not
 * sit in the client's retry loop past the caller's deadline.
 */
export function kafkaClientOptions(config: KafkaConfig, clientSuffix = ''): BaseOptions {
  const options: BaseOptions = {
    clientId: `${config.clientId}${clientSuffix}`,
    bootstrapBrokers: [...config.brokers],
    connectTimeout: Math.min(config.requestTimeoutMs, 5_000),
    requestTimeout: config.requestTimeoutMs,
    retries: 3,
    retryDelay: 250,
    // Partition leaders move (a broker restarting, a new leader elected): metadata older than this is refreshed.
    metadataMaxAge: 5_000,
    autocreateTopics: false,
  };
  if (config.tls.enabled) {
    options.tls = {
      rejectUnauthorized: true,
      ...(config.tls.ca ? { ca: [config.tls.ca] } : {}),
      ...(config.tls.cert ? { cert: config.tls.cert } : {}),
      ...(config.tls.key ? { key: config.tls.key } : {}),
    };
  }
  if (config.sasl.mechanism !== 'none') {
    options.sasl = { mechanism: SASL_MECHANISMS[config.sasl.mechanism], username: config.sasl.username, password: config.sasl.password };
  }
  return options;
}

/**
 * A consumer of `groupId` on the configured group protocol: `consumer` (KIP-848; the
 * broker sets session and heartbeat), or `classic` with `sessionTimeoutMs`.
 */
export function groupConsumer(
  config: KafkaConfig,
  groupId: string,
  clientSuffix: string,
  sessionTimeoutMs: number,
  consume: ConsumeBaseOptions<Buffer, Buffer, Buffer, Buffer> = {},
): Consumer {
  const base = { ...kafkaClientOptions(config, clientSuffix), ...consume, groupId };
  return config.groupProtocol === 'consumer'
    ? new Consumer({ ...base, groupProtocol: 'consumer' })
    : new Consumer({
        ...base,
        groupProtocol: 'classic',
        sessionTimeout: sessionTimeoutMs,
        heartbeatInterval: Math.max(500, Math.floor(sessionTimeoutMs / 10)),
        rebalanceTimeout: Math.max(sessionTimeoutMs, 10_000),
      });
}

/** `promise`, or a rejection saying `what` did not come within `ms` (the client's own timeouts do not cover every wait). */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Node's codes for a TLS peer certificate that fails verification (untrusted, expired, for another host). */
const CERTIFICATE_ERROR_CODES = /^(UNABLE_TO_(GET_ISSUER_CERT|GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE)|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_(HAS_EXPIRED|NOT_YET_VALID|SIGNATURE_FAILURE|REVOKED|UNTRUSTED|REJECTED)|ERR_TLS_CERT_ALTNAME_INVALID)$/;

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  canRetry?: unknown;
  cause?: unknown;
  errors?: unknown;
}

function nested(err: ErrorLike): ErrorLike[] {
  const out: ErrorLike[] = [];
  if (Array.isArray(err.errors)) for (const e of err.errors as unknown[]) if (e !== null && typeof e === 'object') out.push(e);
  if (err.cause !== null && typeof err.cause === 'object') out.push(err.cause);
  return out;
}

/**
 * Whether a client error is, or wraps, one of these Kafka protocol errors, by the error
 * code the broker answered with (the client's ProtocolError `apiId`, e.g.
 * 'TOPIC_ALREADY_EXISTS'), never by its message text.
 */
export function hasKafkaErrorCode(err: unknown, ...apiIds: readonly string[]): boolean {
  const walk = (e: unknown, depth: number): boolean => {
    if (e === null || typeof e !== 'object' || depth > 8) return false;
    const apiId = (e as { apiId?: unknown }).apiId;
    if (typeof apiId === 'string' && apiIds.includes(apiId)) return true;
    return nested(e).some((x) => walk(x, depth + 1));
  };
  return walk(err, 0);
}

/**
 * Waits until `promise` settled (either way) or `ms` passed; whether it settled. Used before
 * closing a client under a call still in flight.
 */
export async function settleWithin(promise: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  if (promise === undefined) return true;
  return withDeadline(
    promise.then(
      () => true,
      () => true,
    ),
    ms,
    'settlement',
  ).catch(() => false);
}

/**
 * How long a consume() may take to give up on its own: its first try and the client's
 * retries (kafkaClientOptions), each bounded by the request timeout.
 */
export function consumeSettleMs(config: KafkaConfig): number {
  return 4 * config.requestTimeoutMs + 1_000;
}

/** Whether a client error is worth trying again (a leader not elected yet, a broker restarting, a timeout). */
export function isRetriableKafkaError(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as ErrorLike;
  // A broker certificate that is not trusted, or credentials refused, are not mended by trying again.
  if (typeof e.code === 'string' && CERTIFICATE_ERROR_CODES.test(e.code)) return false;
  if (e.code === 'PLT_KFK_AUTHENTICATION') return false;
  // The client marks its own request timeouts final; to betrace a broker slow to answer may answer the next time.
  if (err instanceof TimeoutError) return true;
  const inner = nested(e);
  if (inner.length > 0) return inner.every((x) => isRetriableKafkaError(x));
  return e.canRetry !== false;
}

/**
 * One line for a client error: what failed, then the distinct root causes
 * (the client wraps per-attempt and per-broker errors in aggregates: "Listing
 * topics failed" around "metadata failed 4 times" around "Cannot connect to
 * any broker" around the TLS or SASL error that says why).
 */
export function describeKafkaError(err: unknown): string {
  if (err === null || typeof err !== 'object') return String(err);
  const message = (err as ErrorLike).message;
  const top = typeof message === 'string' ? message.replace(/\.$/, '') : Object.prototype.toString.call(err);
  const leaves = new Set<string>();
  const walk = (e: ErrorLike, depth: number): void => {
    const inner = nested(e);
    if (inner.length === 0 || depth > 6) {
      const message = typeof e.message === 'string' ? e.message.replace(/\.$/, '') : '';
      const code = typeof e.code === 'string' && !e.code.startsWith('PLT_KFK_') && !message.includes(e.code) ? ` (${e.code})` : '';
      if (message !== '') leaves.add(`${message}${code}`);
      return;
    }
    for (const i of inner) walk(i, depth + 1);
  };
  walk(err, 0);
  leaves.delete(top);
  return leaves.size === 0 ? top : `${top}: ${[...leaves].slice(0, 3).join('; ')}`;
}

/**
 * Runs `call` with an admin client of its own, again with a fresh one (fresh
 * metadata) while it fails with a retriable error, for up to `deadlineMs`.
 * Other errors, and the last one, are thrown.
 */
export async function withAdmin<T>(config: KafkaConfig, call: (admin: Admin) => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (let attempt = 0; ; attempt++) {
    const admin = new Admin(kafkaClientOptions(config, '-admin'));
    try {
      return await call(admin);
    } catch (err) {
      const waitMs = Math.min(100 * 2 ** attempt, 2000);
      if (!isRetriableKafkaError(err) || Date.now() + waitMs > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    } finally {
      await admin.close().catch(() => undefined);
    }
  }
}

/** Splits `items` into runs of at most `maxBytes` (by `size`; an item larger than that is a run of its own), in order. */
export function chunkBySize<T>(items: readonly T[], size: (item: T) => number, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const n = size(item);
    if (chunk.length > 0 && bytes + n > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += n;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}
