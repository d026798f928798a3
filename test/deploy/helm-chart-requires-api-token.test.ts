/**
 * Every betrace pod serves the admin API on all interfaces, so the chart refuses to
 * render without a bearer token (auth.token or auth.existingSecret), and refuses split
 * roles without Kafka brokers or a SASL password Secret, and an all-in-one history larger
 * than the volume that holds it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { helmTemplate, ofKind, renderChart } from './helm.ts';

describe('helm chart refuses unsafe or incomplete values', () => {
  it('fails without an API token (defaults)', async () => {
    const result = await helmTemplate({});
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /auth\.token or auth\.existingSecret/);
  });

  it('fails without an API token with split roles', async () => {
    const result = await helmTemplate({ set: { 'allInOne.enabled': 'false', 'kafka.brokers[0]': 'kafka:9092' } });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /auth\.token or auth\.existingSecret/);
  });

  it('keeps a given token in a Secret mounted as api.token_file', async () => {
    const objects = await renderChart({ set: { 'auth.token': 's3cret' } });
    const secret = ofKind(objects, 'Secret')[0];
    assert.equal(Buffer.from(secret?.data.token as string, 'base64').toString(), 's3cret');
    const cm = ofKind(objects, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'))!;
    assert.doesNotMatch(cm.data['betrace.yaml'] as string, /s3cret/);
  });

  it('accepts an existing Secret instead', async () => {
    const objects = await renderChart({ set: { 'auth.existingSecret': 'mine' } });
    assert.equal(ofKind(objects, 'Secret').length, 0);
  });

  it('fails with split roles and no kafka.brokers', async () => {
    const result = await helmTemplate({ set: { 'auth.token': 't', 'allInOne.enabled': 'false' } });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /kafka\.brokers/);
  });

  it('fails with a SASL mechanism and no password Secret', async () => {
    const result = await helmTemplate({
      set: { 'auth.token': 't', 'allInOne.enabled': 'false', 'kafka.brokers[0]': 'kafka:9092', 'kafka.sasl.mechanism': 'plain', 'kafka.sasl.username': 'u' },
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /kafka\.sasl\.passwordSecret/);
  });

  it('fails when the all-in-one history does not fit its volume, and accepts one that does', async () => {
    const result = await helmTemplate({ set: { 'auth.token': 't', 'allInOne.history.maxBytes': '12GiB', 'allInOne.persistence.size': '10Gi' } });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /allInOne\.history\.maxBytes \(12GiB\) does not fit allInOne\.persistence\.size \(10Gi\)/);
    const bad = await helmTemplate({ set: { 'auth.token': 't', 'allInOne.persistence.size': 'lots' } });
    assert.match(bad.stderr, /"lots" is not a size/);
    await renderChart({ set: { 'auth.token': 't', 'allInOne.history.maxBytes': '40GiB', 'allInOne.persistence.size': '50G' } });
  });
});
