/**
 * Admin calls are tried again with a fresh client while Kafka answers with a
 * retriable error (kafkajs's admin bails on most of them): a topic created a
 * moment ago answers NOT_LEADER_FOR_PARTITION until its leader is in place.
 * Unit test of withAdmin over a fake client; the real broker path is covered by
 * every Kafka test that starts a pipeline on new topics.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type * as KafkaJs from 'kafkajs';
import type { Admin, Kafka } from 'kafkajs';
import { isRetriableKafkaError, withAdmin } from '../../src/transport/kafka.ts';

const require = createRequire(import.meta.url);
const { KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded } = require('kafkajs') as typeof KafkaJs;
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode: (code: number) => Error };
const notLeader = () => createErrorFromCode(6);
const topicAuthorizationFailed = () => createErrorFromCode(29);

/** A Kafka whose admins fail with `failures` in turn, then answer `ok`. */
function fakeKafka(failures: Error[]) {
  const events: string[] = [];
  let admins = 0;
  const kafka = {
    admin: () => {
      const n = ++admins;
      return {
        connect: () => (events.push(`connect ${n}`), Promise.resolve()),
        disconnect: () => (events.push(`disconnect ${n}`), Promise.resolve()),
        listTopics: () => {
          const failure = failures.shift();
          return failure === undefined ? Promise.resolve(['ok']) : Promise.reject(failure);
        },
      } as unknown as Admin;
    },
  } as unknown as Kafka;
  return { kafka, events };
}

describe('Kafka admin calls', () => {
  it('count a protocol error retriable as Kafka says, and see through kafkajs giving up', () => {
    assert.equal(isRetriableKafkaError(notLeader()), true);
    assert.equal(isRetriableKafkaError(topicAuthorizationFailed()), false);
    assert.equal(isRetriableKafkaError(new KafkaJSNumberOfRetriesExceeded(notLeader(), { retryCount: 5, retryTime: 1 })), true);
    assert.equal(isRetriableKafkaError(new KafkaJSNumberOfRetriesExceeded(topicAuthorizationFailed(), { retryCount: 5, retryTime: 1 })), false);
    assert.equal(isRetriableKafkaError(new KafkaJSNonRetriableError('no')), false);
    assert.equal(isRetriableKafkaError(new Error('plain')), false);
    assert.equal(isRetriableKafkaError(undefined), false);
    // kafkajs calls connection errors retriable, an untrusted broker certificate among them.
    const { KafkaJSConnectionError } = require('kafkajs') as typeof KafkaJs;
    const tlsError = (code: string) => new KafkaJSConnectionError(`Connection error: ${code}`, { broker: '127.0.0.1:9093', code });
    assert.equal(isRetriableKafkaError(tlsError('ECONNREFUSED')), true);
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']) {
      assert.equal(isRetriableKafkaError(tlsError(code)), false, code);
      assert.equal(isRetriableKafkaError(new KafkaJSNumberOfRetriesExceeded(tlsError(code), { retryCount: 5, retryTime: 1 })), false, code);
    }
  });

  it('are tried again on a fresh client while the error is retriable, each client disconnected', async () => {
    const { kafka, events } = fakeKafka([notLeader(), notLeader()]);
    assert.deepEqual(await withAdmin(kafka, (admin) => admin.listTopics()), ['ok']);
    assert.deepEqual(events, ['connect 1', 'disconnect 1', 'connect 2', 'disconnect 2', 'connect 3', 'disconnect 3']);
  });

  it('throw a non-retriable error at once', async () => {
    const { kafka, events } = fakeKafka([topicAuthorizationFailed()]);
    await assert.rejects(withAdmin(kafka, (admin) => admin.listTopics()), /authorized|TOPIC_AUTHORIZATION_FAILED/i);
    assert.deepEqual(events, ['connect 1', 'disconnect 1']);
  });

  it('throw the last retriable error once the deadline has passed', async () => {
    const { kafka, events } = fakeKafka(Array.from({ length: 100 }, notLeader));
    await assert.rejects(withAdmin(kafka, (admin) => admin.listTopics(), 500), (err: Error) => isRetriableKafkaError(err));
    const attempts = events.filter((e) => e.startsWith('connect')).length;
    assert.ok(attempts >= 2 && attempts < 10, `a few attempts within 500 ms, got ${attempts}`);
  });
});
