/**
 * `betrace rules check` on rule files that share a rule id: a warning at the
 * ignored definition naming the one in force, which is the file whose path
 * sorts first, whatever the order of the arguments (the pipeline's winner:
 * test/worker/duplicate-rule-ids.test.ts); `--explain` marks the ignored one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBetrace } from '../helpers/cli.ts';

describe('rules check: duplicate ids across files', () => {
  it('names both places and the same winner in either argument order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-check-dup-'));
    try {
      writeFileSync(join(dir, 'payments.yaml'), 'rules:\n  - id: other\n    severity: info\n    condition: not trace.has(x)\n  - id: dup\n    severity: high\n    condition: not trace.has(a)\n');
      writeFileSync(join(dir, 'shipping.yaml'), 'rules:\n  - id: dup\n    severity: low\n    condition: not trace.has(b)\n');
      const expected =
        'shipping.yaml:2:9: warning: duplicate rule id "dup": the definition at payments.yaml:5:9 is in force, the one at shipping.yaml:2:9 is ignored (the file whose path sorts first wins) [duplicate-id]\n';
      const inOrder = await runBetrace(['rules', 'check', 'payments.yaml', 'shipping.yaml'], { cwd: dir });
      const reversed = await runBetrace(['rules', 'check', '--explain', 'shipping.yaml', 'payments.yaml'], { cwd: dir });
      for (const r of [inOrder, reversed]) {
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stderr, expected);
        assert.match(r.stdout, /3 rules in 2 files: 0 errors, 1 warning\n$/);
      }
      assert.ok(reversed.stdout.startsWith('dup: not trace.has(b)\n  # ignored: the definition at payments.yaml:5:9 is in force\n'), reversed.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
