/**
 * `betrace rules check` names a function or step the language does not have, at the name's
 * line:column inside the rule file, with the closest name (the condition-level cases are in
 * examples.yaml, parse_error); a misspelt rule key or severity gets the closest one too.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rulesCheck } from '../../src/cli/rules-check.ts';
import { describe, it } from './node-test.ts';

const TYPOS = `rules:
  - id: admin-audited
    severity: high
    condition: trace.has(admin.action) implies trace.hsa(audit.log)
  - id: refund-after-charge
    severity: critical
    condition: |
      trace.every(payment.refund)
        .preceeded_by(payment.charge)
  - id: fast-requests
    severity: low
    condition: trace.every(http.server).satisfies(span:duraton < 500ms)
  - id: typo-keys
    severity: hihg
    conditon: trace.has(a)
`;

describe('rules check on names the language does not have', () => {
  it('reports each at the name in the file, with the closest name', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'betrace-names-')), 'rules.yaml');
    await writeFile(file, TYPOS);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const status = await rulesCheck([file], { explain: false }, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) });
    assert.equal(status, 1);
    assert.deepEqual(stderr, [
      `${file}:4:48: unknown function trace.hsa (did you mean trace.has?) [unknown-name]`,
      `${file}:9:9: unknown step .preceeded_by (did you mean .preceded_by?) [unknown-name]`,
      `${file}:12:51: unknown intrinsic span:duraton (did you mean span:duration?) [unknown-intrinsic]`,
      `${file}:15:5: unknown rule key "conditon" (did you mean condition?) [unknown-key]`,
      `${file}:14:15: severity "hihg" must be one of critical, high, medium, low, info (did you mean high?) [bad-severity]`,
      `${file}:13:5: rule is missing \`condition\` [bad-rule]`,
      '0 rules in 1 file: 6 errors, 0 warnings',
    ]);
  });
});
