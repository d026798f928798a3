/** Rule files: YAML positions, every error at once, schema checks. */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from './node-test.ts';
import { compileRule, formatFileDiagnostic, loadRuleFile, parseRuleFile, type RuleDefinition } from '../../src/rules/index.ts';

const at = (d: { line: number; column: number; code: string }) => `${d.line}:${d.column} ${d.code}`;

describe('rule files', () => {
  it('load a rule with every field, the seed leading-has read as an implication', () => {
    const r = parseRuleFile(`rules:
  - id: shipment-requires-payment        # required, unique
    name: Shipment requires payment confirmation
    description: Order shipment should always be preceded by payment confirmation
    severity: critical
    enabled: true
    tags: [revenue, "SOC2:CC7.2"]
    message: Shipment without payment
    condition: |
      trace.has(shipment.initiate) and trace.has(payment.confirm)
`, 'rules.yaml');
    assert.deepEqual(r.errors, []);
    assert.equal(r.rules.length, 1);
    const d = r.rules[0]?.definition;
    assert.deepEqual(d?.tags, ['revenue', 'SOC2:CC7.2']);
    assert.equal(d?.message, 'Shipment without payment');
    assert.equal(r.rules[0]?.canonical, 'trace.has(shipment.initiate) implies trace.has(payment.confirm)');
    assert.deepEqual(r.warnings.map(at), ['10:7 ordering-not-checked']);
  });

  it('default name to the id, enabled to true, tags to none', () => {
    const r = parseRuleFile('rules:\n  - id: a\n    severity: info\n    condition: not trace.has(x)\n');
    assert.deepEqual(r.errors, []);
    const d = r.rules[0]?.definition;
    assert.equal(d?.name, 'a');
    assert.equal(d?.enabled, true);
    assert.deepEqual(d?.tags, []);
    assert.equal(d?.description, '');
  });

  it('report every error at once at its YAML line and column', () => {
    const text = `rules:
  - id: a
    severity: high
    condition: |
      trace.has(x)
        and trace.has(y
    bogus: 1
  - id: B
    severity: nope
    condition: "trace.has(\\"x\\") and 5min"
  - id: c
    severity: low
    condition: >-
      trace.has(x)
      and y
  - id: d
    severity: low
    enabled: maybe
    condition: trace.every(a).satisfies(x =~ "a(?=b)")
  - name: no id
    condition: trace.has(x) implies trace.has(y)
  - just a string
`;
    const r = parseRuleFile(text, 'f.yaml');
    assert.deepEqual(r.errors.map(at), [
      '7:5 unknown-key',
      '6:24 syntax',
      '8:9 bad-id',
      '9:15 bad-severity',
      '10:38 syntax',
      '15:11 shorthand-outside-when',
      '18:14 bad-rule',
      '19:48 bad-regex',
      '20:5 bad-rule',
      '20:5 bad-rule',
      '22:5 bad-rule',
    ]);
    assert.equal(r.rules.length, 0);
    assert.equal(formatFileDiagnostic(r.errors[2]!, 'error'), 'f.yaml:8:9: rule id "B" must match [a-z0-9][a-z0-9._-]* [bad-id]');
  });

  it('refuse text that violation spans cannot carry (a lone surrogate) at its position, naming the field', () => {
    // YAML's double-quoted \u escapes are the way a lone surrogate gets into a rule file.
    const text = [
      'rules:',
      '  - id: a',
      '    name: "ok \\ud800 x"',
      '    severity: low',
      '    tags: [fine, "t\\udc00"]',
      '    description: "pair \\ud83d\\ude00 is fine"',
      '    message: |',
      '      a block scalar has no escapes: \\ud800',
      '    condition: not trace.has(x)',
      '  - id: b',
      '    severity: low',
      '    condition: "trace.has(\\"\\udfff\\")"',
      '  - id: c',
      '    severity: low',
      '    message: "\\ud83d"',
      '    condition: not trace.has(y)',
      '',
    ].join('\n');
    const r = parseRuleFile(text, 'f.yaml');
    assert.deepEqual(r.errors.map(at), ['3:15 bad-text', '5:20 bad-text', '12:29 bad-text', '15:15 bad-text']);
    assert.equal(
      formatFileDiagnostic(r.errors[0]!, 'error'),
      'f.yaml:3:15: `name` is not valid Unicode text: a lone surrogate U+D800 (half of a UTF-16 pair); violation spans carry rule text as UTF-8, which cannot hold it [bad-text]',
    );
    assert.match(r.errors[1]!.message, /^`tags\[1\]` /);
    assert.match(r.errors[2]!.message, /^`condition` /);
    assert.match(r.errors[3]!.message, /^`message` /);
    assert.deepEqual(r.rules, []);
  });

  it('refuse such text in compileRule too, whatever the rule came from', () => {
    const base: RuleDefinition = { id: 'x', name: 'x', description: '', severity: 'low', enabled: true, tags: [], condition: 'not trace.has(x)' };
    const cases: [RuleDefinition, string][] = [
      [{ ...base, name: 'n\ud800' }, 'name'],
      [{ ...base, message: '\udc00' }, 'message'],
      [{ ...base, tags: ['ok', '\ud800'] }, 'tags[1]'],
      [{ ...base, condition: 'not trace.has(x)\nor trace.has("\ud800")' }, 'condition'],
    ];
    for (const [def, field] of cases) {
      const r = compileRule(def);
      assert.equal(r.ok, false, field);
      if (r.ok) continue;
      assert.equal(r.errors[0]?.code, 'bad-text');
      assert.ok(r.errors[0]?.message.startsWith(`\`${field}\` is not valid Unicode text`), r.errors[0]?.message);
      if (field === 'condition') assert.deepEqual([r.errors[0]?.line, r.errors[0]?.column], [2, 15]);
    }
    assert.equal(compileRule({ ...base, name: 'emoji 😀 and ü' }).ok, true);
  });

  it('map positions through a plain multi-line scalar', () => {
    const r = parseRuleFile('rules:\n  - id: a\n    severity: low\n    condition: trace.has(x) and\n      trace.has(y) )\n');
    assert.deepEqual(r.errors.map(at), ['5:20 syntax']);
  });

  it('warn on duplicate ids and keep the first', () => {
    const r = parseRuleFile('rules:\n  - id: a\n    severity: low\n    condition: not trace.has(x)\n  - id: a\n    severity: low\n    condition: not trace.has(y)\n');
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings.map(at), ['5:9 duplicate-id']);
    assert.equal(r.rules.length, 1);
    assert.equal(r.rules[0]?.canonical, 'not trace.has(x)');
  });

  it('reject unknown top-level keys and malformed YAML', () => {
    assert.deepEqual(parseRuleFile('rule:\n  - id: a\n').errors.map(at), ['1:1 unknown-key']);
    const bad = parseRuleFile('rules:\n  - id: a\n   severity: [\n');
    assert.ok(bad.errors.length > 0);
    assert.ok(bad.errors.every((e) => e.code === 'yaml'));
  });

  it('accept an empty file', () => {
    assert.deepEqual(parseRuleFile(''), { rules: [], positions: new Map(), errors: [], warnings: [] });
  });

  it('load from disk and report an unreadable file as a value', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'betrace-rules-'));
    const file = join(dir, 'r.yaml');
    await writeFile(file, 'rules:\n  - id: a\n    severity: low\n    condition: not trace.has(x)\n');
    const ok = await loadRuleFile(file);
    assert.equal(ok.rules.length, 1);
    const missing = await loadRuleFile(join(dir, 'nope.yaml'));
    assert.deepEqual(missing.errors.map((e) => e.code), ['io']);
  });
});
