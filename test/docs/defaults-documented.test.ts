/**
 * The docs state the code's defaults: the evaluation budget has one default, the rule
 * library's and the pipeline's (src/rules/README.md "Limits", src/config/README.md), and
 * every Markdown page that gives a config key's default duration or size in passing
 * ("`api.read_timeout` (30 s)", "`receiver.max_request_bytes`, default 16 MiB") gives the
 * schema's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configKeys } from '../../src/cli/config-reference.ts';
import { DEFAULT_BUDGET_MS } from '../../src/rules/index.ts';
import { parseDurationMs, parseSizeBytes } from '../../src/config/units.ts';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const keys = new Map(configKeys());
const schemaDefault = (key: string) => keys.get(key)?.default;

describe('documented defaults', () => {
  it('the evaluation budget has one default: the rule library\'s is the pipeline\'s, and both docs say it', () => {
    const configured = parseDurationMs(String(schemaDefault('worker.evaluation_budget')));
    assert.equal(configured, DEFAULT_BUDGET_MS, 'worker.evaluation_budget defaults to the library\'s DEFAULT_BUDGET_MS');
    const limits = /^\| evaluation time per trace[^|]*\| (\d+(?:\.\d+)?) ?(ms|s) by default/m.exec(read('src/rules/README.md'));
    assert.ok(limits, 'src/rules/README.md "Limits" states the evaluation budget');
    assert.equal(parseDurationMs(`${limits[1]}${limits[2]}`), configured, 'src/rules/README.md');
    const row = /^\| `worker\.evaluation_budget` \| duration \| `([^`]+)` \|/m.exec(read('src/config/README.md'));
    assert.ok(row, 'src/config/README.md has worker.evaluation_budget');
    assert.equal(parseDurationMs(row[1]!), configured, 'src/config/README.md');
  });

  it('every Markdown page giving a config key\'s default duration or size gives the schema\'s', () => {
    // A leaf name stands for its key when only one key has it (`ack_timeout`).
    const leaves = new Map<string, string | null>();
    for (const key of keys.keys()) {
      const leaf = key.slice(key.lastIndexOf('.') + 1);
      leaves.set(leaf, leaves.has(leaf) ? null : key);
    }
    const mention = /`([a-z_]+(?:\.[a-z_]+)*)`(?: \(|,? \(?(?:default:? |by default ))(?:default:? )?(\d+(?:\.\d+)?) ?(ns|us|ms|s|min|m|h|d|B|KiB|MiB|GiB|KB|MB|GB)\b/g;
    const pages = globSync('**/*.md', { cwd: root, exclude: (p) => /^(node_modules|dist|\.git|\.scratch|data)$/.test(p) });
    let checked = 0;
    for (const page of pages) {
      if (page === join('src', 'config', 'README.md')) continue;
      for (const m of read(page).matchAll(mention)) {
        const key = keys.has(m[1]!) ? m[1]! : leaves.get(m[1]!);
        if (key === undefined || key === null) continue;
        const node = keys.get(key)!;
        const text = `${m[2]}${m[3] === 'min' ? 'm' : m[3]}`;
        const line = `${page}: ${m[0]}`;
        if (node.format === 'duration') {
          assert.equal(parseDurationMs(text), parseDurationMs(String(node.default)), `${line}: the default of ${key} is ${String(node.default)}`);
          checked++;
        } else if (node.format === 'size') {
          assert.equal(parseSizeBytes(text), parseSizeBytes(node.default as string | number), `${line}: the default of ${key} is ${String(node.default)}`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 5, `${checked} documented defaults checked`);
  });
});
