/**
 * The docs document every config key (src/config/README.md: the generated reference, kept in
 * step) and every metric (src/telemetry/README.md); the README stays a guide of at most 30,000
 * characters linking every reference; every relative link of every Markdown file resolves.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { configReference, configKeys } from '../../src/cli/config-reference.ts';
import { createMetrics } from '../../src/telemetry/metrics.ts';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const configuration = readFileSync(join(root, 'src', 'config', 'README.md'), 'utf8');
const metricsDoc = readFileSync(join(root, 'src', 'telemetry', 'README.md'), 'utf8');

describe('the docs', () => {
  it('src/config/README.md holds the configuration reference generated from the schema (run `betrace config reference`)', () => {
    const m = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(configuration);
    assert.ok(m, 'config reference markers');
    assert.equal(m[1], configReference());
    assert.ok(configKeys().length > 30);
  });

  it('src/telemetry/README.md documents every metric betrace exports', () => {
    const metrics = createMetrics();
    for (const value of Object.values(metrics)) {
      const name = (value as { name?: unknown }).name;
      if (typeof name === 'string' && name.startsWith('betrace_')) assert.ok(metricsDoc.includes(`\`${name}\``), `${name} in src/telemetry/README.md`);
    }
  });

  it('keeps the two-command quick start that CI runs', () => {
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /^npm ci && npm test /m);
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    assert.match(ci, /^npm test$/m);
  });

  it('keeps the README a guide: at most 30,000 characters, every reference linked from it', () => {
    assert.ok(readme.length <= 30_000, `README.md has ${readme.length} characters`);
    const references = ['src/cli/README.md', 'src/config/README.md', 'src/rules/README.md', 'src/api/README.md', 'src/telemetry/README.md', 'src/receiver/README.md', 'src/worker/README.md', 'src/exporter/README.md', 'src/replay/README.md', 'docs/contract.md', 'docs/kafka.md', 'docs/security.md', 'deploy/helm/betrace/README.md', 'deploy/runbooks/README.md', 'test/bench/README.md'];
    for (const page of references) assert.ok(readme.includes(`](${page})`), `${page} linked from the README`);
  });

  it('every folder or file of the tree the README names (`src/…`, `deploy/…`, `config/…`) exists', () => {
    const named = [...new Set([...readme.matchAll(/`((?:src|deploy|config|test|docs)\/[A-Za-z0-9_./-]+)`/g)].map((m) => m[1]!))];
    assert.ok(named.length >= 10, `${named.length} paths named`);
    assert.deepEqual(named.filter((p) => !p.includes('*') && !existsSync(join(root, p))), []);
  });

  it('every relative link in the Markdown files points at a file that exists', () => {
    const files = execFileSync('git', ['ls-files', '*.md'], { cwd: root, encoding: 'utf8' }).split('\n').filter((f) => f !== '' && !f.startsWith('node_modules/'));
    assert.ok(files.length > 10);
    const broken: string[] = [];
    for (const file of files) {
      const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!;
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(root, dirname(file), target))) broken.push(`${file}: ${m[1]}`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
