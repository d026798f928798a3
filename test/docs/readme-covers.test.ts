/**
 * The docs document every config key (docs/configuration.md: the generated reference, kept in
 * step) and every metric (docs/metrics.md); the README stays a guide of at most 30,000 characters.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReference, configKeys } from '../../src/cli/config-reference.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const configuration = readFileSync(join(root, 'docs', 'configuration.md'), 'utf8');
const metricsDoc = readFileSync(join(root, 'docs', 'metrics.md'), 'utf8');

describe('the docs', () => {
  it('docs/configuration.md holds the configuration reference generated from the schema (run `betrace config reference`)', () => {
    const m = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(configuration);
    assert.ok(m, 'config reference markers');
    assert.equal(m[1], configReference());
    assert.ok(configKeys().length > 30);
  });

  it('docs/metrics.md documents every metric betrace exports', () => {
    const metrics = createMetrics();
    for (const value of Object.values(metrics)) {
      const name = (value as { name?: unknown }).name;
      if (typeof name === 'string' && name.startsWith('betrace_')) assert.ok(metricsDoc.includes(`\`${name}\``), `${name} in docs/metrics.md`);
    }
  });

  it('keeps the two-command quick start that CI runs', () => {
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /^npm ci && npm test /m);
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    assert.match(ci, /^npm test$/m);
  });

  it('keeps the README a guide: at most 30,000 characters, every docs/ page linked from it', () => {
    assert.ok(readme.length <= 30_000, `README.md has ${readme.length} characters`);
    for (const page of ['receiver', 'configuration', 'metrics', 'api', 'security', 'contract', 'kafka']) {
      assert.ok(readme.includes(`](docs/${page}.md)`), `docs/${page}.md linked from the README`);
    }
  });
});
