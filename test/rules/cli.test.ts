/** `betrace rules check` and `betrace rules test`, called as the CLI entry calls them. */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rulesCheck } from '../../src/cli/rules-check.ts';
import { rulesTest } from '../../src/cli/rules-test.ts';
import { describe, it } from './node-test.ts';

function capture() {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: { stdout: (s: string) => stdout.push(s), stderr: (s: string) => stderr.push(s) } };
}

const GOOD = `rules:
  - id: shipment-requires-payment
    name: Shipment requires payment confirmation
    description: Order shipment should always be preceded by payment confirmation
    severity: critical
    condition: |
      trace.has(shipment.initiate)
        and trace.has(payment.confirm)
`;

const BAD = `rules:
  - id: a
    severity: high
    condition: trace.every(x)
  - id: b
    severity: urgent
    condition: trace.has(x
`;

async function tmp(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'betrace-cli-'));
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

describe('rules check', () => {
  it('exits 0 on a good file and prints warnings with their position', async () => {
    const file = await tmp('good.yaml', GOOD);
    const c = capture();
    assert.equal(await rulesCheck([file], { explain: false }, c.out), 0);
    assert.deepEqual(c.stderr, [`${file}:7:7: warning: the rule speaks of order ("preceded by") but its condition (read as trace.has(shipment.initiate) implies trace.has(payment.confirm)) does not check it; write trace.every(shipment.initiate).preceded_by(payment.confirm) [ordering-not-checked]`]);
    assert.match(c.stdout.at(-1) ?? '', /^1 rule in 1 file: 0 errors, 1 warning$/);
  });

  it('--explain prints each rule id and its canonical reading', async () => {
    const file = await tmp('good.yaml', GOOD);
    const c = capture();
    assert.equal(await rulesCheck([file], { explain: true }, c.out), 0);
    assert.equal(c.stdout[0], 'shipment-requires-payment: trace.has(shipment.initiate) implies trace.has(payment.confirm)');
    assert.ok(c.stdout.includes('  # the leading trace.has(…) and … is read as an implication'));
  });

  it('exits 1 and reports every error as FILE:LINE:COL', async () => {
    const file = await tmp('bad.yaml', BAD);
    const c = capture();
    assert.equal(await rulesCheck([file], { explain: false }, c.out), 1);
    assert.deepEqual(c.stderr.slice(0, 3).map((l) => l.replace(file, 'F').replace(/: .*\[/, ' [')), [
      'F:4:16 [every-without-assertion]',
      'F:6:15 [bad-severity]',
      'F:7:27 [syntax]',
    ]);
  });

  it('warns about an id defined in two files', async () => {
    const a = await tmp('a.yaml', GOOD);
    const b = await tmp('b.yaml', GOOD);
    const c = capture();
    assert.equal(await rulesCheck([a, b], { explain: false }, c.out), 0);
    assert.ok(c.stderr.some((l) => l.includes('[duplicate-id]')));
  });

  it('exits 1 for a missing file', async () => {
    const c = capture();
    assert.equal(await rulesCheck([join(tmpdir(), 'does-not-exist.yaml')], { explain: false }, c.out), 1);
    assert.match(c.stderr[0] ?? '', /:1:1: cannot read rule file/);
  });
});

function otlpJson(spans: { traceId: string; spanId: string; name: string; parentSpanId?: string }[]): string {
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'shop' } }] },
      scopeSpans: [{
        scope: { name: 't' },
        spans: spans.map((s) => ({ ...s, kind: 1, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000001000000', attributes: [] })),
      }],
    }],
  });
}

describe('rules test', () => {
  const t1 = '0af7651916cd43dd8448eb211c80319c';
  const t2 = '4bf92f3577b34da6a3ce929d0e0e4736';
  const traces = otlpJson([
    { traceId: t1, spanId: 'b7ad6b7169203331', name: 'shipment.initiate' },
    { traceId: t2, spanId: 'c7ad6b7169203331', name: 'shipment.initiate' },
    { traceId: t2, spanId: 'd7ad6b7169203331', name: 'payment.confirm', parentSpanId: 'c7ad6b7169203331' },
  ]);

  it('prints one line per violation and exits 2 with --fail-on-violation', async () => {
    const rules = await tmp('r.yaml', GOOD);
    const file = await tmp('t.json', traces);
    const c = capture();
    assert.equal(await rulesTest({ rules, traces: [file], failOnViolation: true }, c.out), 2);
    assert.equal(c.stdout.length, 2);
    assert.match(c.stdout[0] ?? '', new RegExp(`^${t1} shipment-requires-payment critical "Order shipment should always be preceded by payment confirmation" witnesses=1 \\[b7ad6b7169203331\\] id=[0-9a-f]{32}$`));
    assert.equal(c.stdout[1], '1 violation in 2 traces (1 rule)');
  });

  it('exits 0 without --fail-on-violation', async () => {
    const c = capture();
    assert.equal(await rulesTest({ rules: await tmp('r.yaml', GOOD), traces: [await tmp('t.json', traces)], failOnViolation: false }, c.out), 0);
  });

  it('exits 1 on a bad rule file or a bad trace file', async () => {
    const c = capture();
    assert.equal(await rulesTest({ rules: await tmp('r.yaml', BAD), traces: [await tmp('t.json', traces)], failOnViolation: false }, c.out), 1);
    const d = capture();
    assert.equal(await rulesTest({ rules: await tmp('r.yaml', GOOD), traces: [await tmp('t.json', '{not json')], failOnViolation: false }, d.out), 1);
    assert.match(d.stderr.at(-1) ?? '', /^betrace rules test: .*t\.json/);
  });
});
