/** The README documents every config key (generated reference, kept in step) and every metric. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReference, configKeys } from '../../src/cli/config-reference.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

describe('README', () => {
  it('holds the configuration reference generated from the schema (run `betrace config reference`)', () => {
    const m = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(readme);
    assert.ok(m, 'config reference markers');
    assert.equal(m[1], configReference());
    assert.ok(configKeys().length > 30);
  });

  it('documents every metric betrace exports', () => {
    const metrics = createMetrics();
    for (const value of Object.values(metrics)) {
      const name = (value as { name?: unknown }).name;
      if (typeof name === 'string' && name.startsWith('betrace_')) assert.ok(readme.includes(`\`${name}\``), `${name} in README`);
    }
  });

  it('keeps the two-command quick start that CI runs', () => {
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /^npm ci && npm test /m);
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    assert.match(ci, /^npm test$/m);
  });
});
