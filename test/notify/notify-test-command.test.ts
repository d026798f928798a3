/** `betrace notify test --rule ID`: one sample notification through each destination of the rule's route. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBetrace } from '../helpers/cli.ts';
import { ruleFile, startReceiver } from '../helpers/notify.ts';

describe('betrace notify test', () => {
  it("sends a test message through each destination of the rule's route and says which failed", async () => {
    const hook = await startReceiver();
    const pagerduty = await startReceiver((_r, res) => void res.writeHead(202).end('{"status":"success"}'));
    try {
      const dir = mkdtempSync(join(tmpdir(), 'betrace-notify-cli-'));
      writeFileSync(join(dir, 'rules.yaml'), ruleFile([{ id: 'admin-audit-log', span: 'admin.action', alert: ['notification: pagerduty', 'channels:', '  - webhook: audit', '  - slack: "#nowhere"'] }]));
      writeFileSync(
        join(dir, 'betrace.yaml'),
        `rules: { paths: [rules.yaml] }\nnotifications:\n  pagerduty: { url: "${pagerduty.url}/v2/enqueue", routing_keys: { default: { key: k } } }\n  webhooks: { audit: { url: "${hook.url}/audit" } }\n`,
      );
      const r = await runBetrace(['notify', 'test', '--rule', 'admin-audit-log', '--config', join(dir, 'betrace.yaml')]);
      assert.equal(r.status, 1, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.match(lines[0]!, /^pagerduty: sent \(key [0-9a-f]{32}\)$/);
      assert.match(lines[1]!, /^webhook:audit: sent/);
      assert.equal(lines[2], 'slack:#nowhere: failed: no Slack webhook for "#nowhere" in notifications.slack.webhooks');
      assert.equal(hook.received.length, 1);
      assert.equal(hook.received[0]!.body.type, 'betrace.notification.test');
      assert.equal(hook.received[0]!.body.rule.id, 'admin-audit-log');
      assert.equal(pagerduty.received.length, 1);
      assert.match(pagerduty.received[0]!.body.payload.summary, /^\[test\] \[critical\] admin-audit-log: admin\.action failed/);

      const unknown = await runBetrace(['notify', 'test', '--rule', 'nope', '--config', join(dir, 'betrace.yaml')]);
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /unknown rule nope/);
    } finally {
      await hook.close();
      await pagerduty.close();
    }
  });
});
