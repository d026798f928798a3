/**
 * A replay request (POST /v1/replay, ReplayJobs.start) is validated from the OpenAPI
 * document's ReplayRequest schema, the one the API serves: each bad field named with what it
 * must be; then what a schema does not say (exactly one of rule_ids and rules_yaml, the
 * range, files and partitions each with its source).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import openapi from '../../src/api/openapi.json' with { type: 'json' };
import { validateReplayRequest } from '../../src/replay/index.ts';

const NOW = Date.parse('2026-10-30T00:00:00Z');
const error = (body: unknown) => {
  const r = validateReplayRequest(body, NOW);
  return r.ok ? undefined : r.error;
};

describe('replay requests', () => {
  it('are checked against the OpenAPI document\'s ReplayRequest, field by field', () => {
    const schema = openapi.components.schemas.ReplayRequest as { properties: Record<string, unknown>; additionalProperties: boolean };
    assert.equal(schema.additionalProperties, false);
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', extra: 1 }), `unknown key extra (allowed: ${Object.keys(schema.properties).join(', ')})`);
    assert.equal(error({}), 'from is required: a non-empty string; to is required: a non-empty string');
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', source: 's3' }), 'source must be one of kafka, history, files, jaeger, got "s3"');
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', partitions: [-1] }), 'partitions[0] must be an integer >= 0, got -1');
    assert.equal(error({ rule_ids: 'a', from: '2d', to: 'now' }), 'rule_ids must be a list of non-empty strings, got "a"');
  });

  it('then what the schema does not say', () => {
    assert.equal(error({ rule_ids: ['a'], rules_yaml: 'rules: []', from: '2d', to: 'now' }), 'give exactly one of rule_ids and rules_yaml');
    assert.match(error({ rule_ids: ['a'], from: 'last tuesday', to: 'now' }) ?? '', /^from: cannot read "last tuesday" as a time/);
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', source: 'kafka', files: ['x.json'] }), 'files is for source "files"');
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', source: 'history', partitions: [0] }), 'partitions is for source "kafka"');
    const source = (body: Record<string, unknown>) => {
      const v = validateReplayRequest({ rule_ids: ['a'], from: '2d', to: 'now', ...body }, NOW);
      assert.ok(v.ok);
      return v.source;
    };
    assert.deepEqual(source({}), { kind: 'default' }, "without a source: the running transport's history");
    assert.deepEqual(source({ source: 'history' }), { kind: 'history' });
    assert.deepEqual(source({ files: ['x.json'] }), { kind: 'files', patterns: ['x.json'] });
    assert.deepEqual(source({ partitions: [1] }), { kind: 'kafka', partitions: [1] });
    assert.deepEqual(source({ jaeger: 'jaeger://127.0.0.1:16685' }), { kind: 'jaeger', endpoint: { address: '127.0.0.1:16685', searchDepth: 1000, tls: false } });
    assert.deepEqual(source({ source: 'jaeger', jaeger: 'jaeger://127.0.0.1:16685?search_depth=50' }), { kind: 'jaeger', endpoint: { address: '127.0.0.1:16685', searchDepth: 50, tls: false } });
    assert.deepEqual(source({ jaeger: 'jaegers://127.0.0.1:16685' }), { kind: 'jaeger', endpoint: { address: '127.0.0.1:16685', searchDepth: 1000, tls: true } });
    assert.match(error({ rule_ids: ['a'], from: '2d', to: 'now', jaeger: 'jaegers://127.0.0.1:16685?ca=/etc/passwd' }) ?? '', /ca names a file on the server, which a replay job may not/);
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', source: 'jaeger' }), 'source "jaeger" needs jaeger: the URL of its query gRPC API (jaeger://HOST:PORT)');
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', source: 'kafka', jaeger: 'jaeger://127.0.0.1:16685' }), 'jaeger is for source "jaeger"');
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', jaeger: 'http://127.0.0.1:16685' }), 'jaeger must be a string matching ^jaegers?://, got "http://127.0.0.1:16685"');
    assert.match(error({ rule_ids: ['a'], from: '2d', to: 'now', jaeger: 'jaeger://127.0.0.1' }) ?? '', /^jaeger jaeger:\/\/127\.0\.0\.1: give the host and port/);
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', source: 'files' }), 'source "files" needs files: a non-empty array of paths or globs');
    assert.equal(error({ rule_ids: ['a'], from: '2d', to: 'now', source: 'files', files: ['x.json'], partitions: [0] }), 'partitions is for source "kafka"');
    const ok = validateReplayRequest({ rule_ids: ['a'], from: '2d', to: 'now', source: 'kafka', partitions: [0, 2] }, NOW);
    assert.ok(ok.ok);
    assert.deepEqual(ok.source, { kind: 'kafka', partitions: [0, 2] });
    assert.equal(ok.toMs - ok.fromMs, 2 * 86_400_000);
  });
});
