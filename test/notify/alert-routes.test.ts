/**
 * Routes per rule: a rule file's `alerts:` (the seed method's block), an API rule's `alerts`
 * field and the configuration's defaults by severity, each checked with its errors placed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRuleFile, formatFileDiagnostic } from '../../src/rules/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import { startTestPipeline } from '../helpers/pipeline.ts';

const RULE = 'rules:\n  - id: payment-inventory\n    severity: critical\n    condition: trace.has(inventory.reserve) and trace.has(payment.charge)\n';
const SEED = `${RULE}alerts:
  - rule_id: payment-inventory
    severity: critical
    notification: pagerduty
    channels:
      - slack: #incidents
      - email: oncall@company.com
`;

describe('alert routes', () => {
  it('refuses the seed block unquoted at the #, naming the quoted form; loads it quoted', () => {
    const bad = parseRuleFile(SEED, 'rules.yaml');
    assert.deepEqual(bad.errors.map((e) => formatFileDiagnostic(e, 'error')), [
      'rules.yaml:10:16: `slack: #incidents` is a YAML comment, so the slack target is empty: quote it, `slack: "#incidents"` [bad-alert]',
    ]);
    const good = parseRuleFile(SEED.replace('#incidents', '"#incidents"'), 'rules.yaml');
    assert.deepEqual(good.errors, []);
    assert.deepEqual(good.rules[0]!.definition.alerts, {
      severity: 'critical',
      destinations: [{ channel: 'pagerduty', to: '' }, { channel: 'slack', to: '#incidents' }, { channel: 'email', to: 'oncall@company.com' }],
    });
  });

  it('places every other problem of an alerts: list', () => {
    const text = `${RULE}alerts:
  - rule_id: no-such-rule
    notification: pagerduty
  - rule_id: payment-inventory
    channels:
      - sms: "+100"
      - email: not-an-address
    colour: red
`;
    const r = parseRuleFile(text, 'r.yaml');
    assert.deepEqual(r.errors.map((e) => `${e.line}:${e.column} ${e.message}`), [
      '10:9 unknown channel "sms": one of alertmanager, pagerduty, slack, email, webhook',
      '11:16 email target must be an address like oncall@example.com, got "not-an-address"',
      '12:5 unknown alert key "colour" (allowed: rule_id, severity, notification, channels)',
      '6:14 alert for rule "no-such-rule": no rule of that id in this file (an alert sits in the file of its rule)',
    ]);
  });

  it('reads defaults by severity from the configuration, with errors at their position', () => {
    const c = parseConfig('notifications:\n  defaults:\n    critical: [alertmanager, {slack: "#oncall"}]\n', { env: {} });
    assert.deepEqual(c.notifications.defaults.critical, [{ channel: 'alertmanager', to: '' }, { channel: 'slack', to: '#oncall' }]);
    assert.deepEqual(c.notifications.defaults.high, []);
    assert.throws(
      () => parseConfig('notifications:\n  defaults:\n    high:\n      - slack: #oncall\n  trace_url: http://x/trace\n', { source: 'b.yaml', env: {} }),
      (err: Error) => {
        assert.match(err.message, /^b\.yaml:4:9: notifications\.defaults\.high\.0: the slack target must be a non-empty string \(in YAML, quote a target starting with #: slack: "#incidents"\)$/m);
        assert.match(err.message, /^b\.yaml:5:14: notifications\.trace_url must hold \{trace_id\}/m);
        return true;
      },
    );
  });

  it('takes the same route on an API rule, and refuses a malformed one', async () => {
    const b = await startTestPipeline();
    try {
      const post = (body: unknown) => fetch(`${b.apiUrl}/v1/rules`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const ok = await post({ id: 'api-rule', severity: 'high', condition: 'trace.has(a)', alerts: { notification: 'pagerduty', channels: [{ slack: '#incidents' }] } });
      assert.equal(ok.status, 201, await ok.clone().text());
      const rule = (await (await fetch(`${b.apiUrl}/v1/rules/api-rule`)).json()) as { alerts: unknown };
      assert.deepEqual(rule.alerts, { channels: ['pagerduty', { slack: '#incidents' }] });
      assert.deepEqual(b.pipeline.rules.get('api-rule')!.definition.alerts!.destinations, [{ channel: 'pagerduty', to: '' }, { channel: 'slack', to: '#incidents' }]);
      for (const [alerts, message] of [
        [{ channels: [{ slack: null }] }, /alerts\.channels\[0\]\.slack must be a non-empty string/],
        [{ channels: [{ email: 'oncall' }] }, /email target must be an address like oncall@example\.com, got "oncall"/],
        [{ severity: 'high' }, /alerts has no destination/],
      ] as const) {
        const bad = await post({ id: 'api-bad', severity: 'high', condition: 'trace.has(a)', alerts });
        assert.equal(bad.status, 400);
        const body = (await bad.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'INVALID_RULE');
        assert.match(body.error.message, message);
      }
      assert.equal(b.pipeline.rules.get('api-bad'), undefined);
    } finally {
      await b.stop();
    }
  });
});
