/**
 * Which Kafka client errors are worth trying again (admin calls, violation
 * writes), and the one-line description of an error that aggregates others.
 * Pure unit test over the client's own error classes; the real broker path is
 * covered by every Kafka test that starts a pipeline on new topics.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError, TimeoutError } from '@platformatic/kafka';
import { describeKafkaError, isRetriableKafkaError } from '../../src/kafka/client.ts';

const notLeader = () => new ProtocolError('NOT_LEADER_OR_FOLLOWER');
const topicAuthorizationFailed = () => new ProtocolError('TOPIC_AUTHORIZATION_FAILED');

describe('Kafka client errors', () => {
  it('count a protocol error retriable as Kafka says, and see through errors that aggregate others', () => {
    assert.equal(isRetriableKafkaError(notLeader()), true);
    assert.equal(isRetriableKafkaError(topicAuthorizationFailed()), false);
    assert.equal(isRetriableKafkaError(new MultipleErrors('Produce failed after 3 attempts', [notLeader(), notLeader()])), true);
    assert.equal(isRetriableKafkaError(new MultipleErrors('Produce failed after 3 attempts', [notLeader(), topicAuthorizationFailed()])), false);
    assert.equal(isRetriableKafkaError(new TimeoutError('Request timed out')), true);
    assert.equal(isRetriableKafkaError(new AuthenticationError('SASL authentication failed')), false);
    assert.equal(isRetriableKafkaError(undefined), false);
  });

  it('never retry a broker certificate that fails verification', () => {
    const tlsError = (code: string) => new NetworkError(`Connection failed: ${code}`, { cause: Object.assign(new Error(code), { code }) });
    assert.equal(isRetriableKafkaError(tlsError('ECONNREFUSED')), true);
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']) {
      assert.equal(isRetriableKafkaError(tlsError(code)), false, code);
      assert.equal(isRetriableKafkaError(new MultipleErrors('Multiple errors', [tlsError(code)])), false, code);
    }
  });

  it('are described by what failed, then the root causes they wrap', () => {
    const tls = new NetworkError('Connection to 127.0.0.1:9 failed', { cause: Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }) });
    const described = describeKafkaError(new MultipleErrors('Listing topics failed.', [new MultipleErrors('metadata failed 4 times.', [tls, tls]), notLeader()]));
    assert.match(described, /^Listing topics failed: /);
    assert.match(described, /unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    assert.match(described, /leader/i);
    assert.equal(described.match(/unable to verify/g)?.length, 1, 'each cause once');
    assert.doesNotMatch(described, /metadata failed 4 times/);
    assert.equal(describeKafkaError(new Error('plain')), 'plain');
  });
});
