/**
 * Acceptance: the seed's alert block routes a rule's violations to PagerDuty, Slack and email
 * (and a signed webhook). Local servers stand in for Slack's incoming webhook and PagerDuty's
 * Events API v2, checking each payload against the documented constraints; a real SMTP server
 * (smtp-server) receives the mail. Each violation reaches each channel exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startTestPipeline, metricValue, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { injectFailingTraces, ruleFile, startReceiver, type Receiver } from '../helpers/notify.ts';

const SLACK_BLOCK_TYPES = new Set(['actions', 'context', 'divider', 'file', 'header', 'image', 'input', 'rich_text', 'section', 'video']);
const ROUTING_KEY = 'R0UT1NGKEY0123456789abcdefABCDEF';
const HMAC_SECRET = 'hook-secret';

/** Slack's documented limits for a Block Kit message sent to an incoming webhook; the problems found. */
function slackProblems(body: any): string[] {
  const p: string[] = [];
  if (typeof body?.text !== 'string' || body.text.length === 0 || body.text.length > 3000) p.push('text missing or over 3000');
  if (!Array.isArray(body?.blocks) || body.blocks.length === 0 || body.blocks.length > 50) p.push('blocks missing or over 50');
  for (const b of body?.blocks ?? []) {
    if (!SLACK_BLOCK_TYPES.has(b.type)) p.push(`block type ${b.type}`);
    if (b.type === 'header' && (b.text?.type !== 'plain_text' || b.text.text.length > 150)) p.push('header text');
    const texts = [b.text, ...(b.fields ?? []), ...(b.elements ?? [])].filter((t) => t !== undefined);
    for (const t of texts) {
      if (!['plain_text', 'mrkdwn'].includes(t.type) || typeof t.text !== 'string' || t.text.length === 0 || t.text.length > 3000) p.push(`text object in ${b.type}`);
    }
    if ((b.fields ?? []).length > 10) p.push('more than 10 fields');
  }
  return p;
}

/** PagerDuty Events API v2's required fields and limits for a trigger event. */
function pagerdutyProblems(body: any): string[] {
  const p: string[] = [];
  if (body?.routing_key !== ROUTING_KEY) p.push('routing_key');
  if (body?.event_action !== 'trigger') p.push('event_action');
  if (typeof body?.dedup_key !== 'string' || body.dedup_key === '' || body.dedup_key.length > 255) p.push('dedup_key');
  const pl = body?.payload;
  if (typeof pl?.summary !== 'string' || pl.summary === '' || pl.summary.length > 1024) p.push('payload.summary');
  if (!['critical', 'error', 'warning', 'info'].includes(pl?.severity)) p.push('payload.severity');
  if (typeof pl?.source !== 'string' || pl.source === '') p.push('payload.source');
  if (pl?.timestamp !== undefined && Number.isNaN(Date.parse(pl.timestamp))) p.push('payload.timestamp');
  return p;
}

describe('notification channels: Slack, PagerDuty, email, webhook', () => {
  let slack: Receiver;
  let pagerduty: Receiver;
  let hook: Receiver;
  let smtp: SMTPServer;
  const mails: string[] = [];
  let betrace: TestPipeline;

  before(async () => {
    slack = await startReceiver((r, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(slackProblems(r.body).length === 0 ? 'ok' : 'invalid_blocks'));
    pagerduty = await startReceiver((r, res) => {
      const problems = pagerdutyProblems(r.body);
      if (problems.length > 0) res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'invalid event', errors: problems }));
      else res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', dedup_key: r.body.dedup_key }));
    });
    hook = await startReceiver();
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, _session, callback) {
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => (text += c));
        stream.on('end', () => {
          // quoted-printable, as nodemailer writes long lines
          mails.push(text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))));
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    const smtpPort = (smtp.server.address() as AddressInfo).port;

    const dir = mkdtempSync(join(tmpdir(), 'betrace-notify-channels-'));
    writeFileSync(join(dir, 'slack-url'), `${slack.url}/services/T000/B000/XXXX\n`);
    // The seed's block, with the one change YAML imposes: "#incidents" quoted.
    writeFileSync(
      join(dir, 'rules.yaml'),
      ruleFile([{ id: 'payment-inventory', span: 'inventory.reserve', alert: ['severity: critical', 'notification: pagerduty', 'channels:', '  - slack: "#incidents"', '  - email: oncall@company.com', '  - webhook: audit'] }]),
    );
    betrace = await startTestPipeline({
      worker: { trace_idle_timeout: '200ms' },
      rules: { paths: [join(dir, 'rules.yaml')] },
      notifications: {
        trace_url: 'http://jaeger.example:16686/trace/{trace_id}',
        group_window: '1s',
        slack: { webhooks: { '#incidents': { url_file: join(dir, 'slack-url') } } },
        pagerduty: { url: `${pagerduty.url}/v2/enqueue`, routing_keys: { default: { key_env: 'TEST_PD_KEY' } } },
        webhooks: { audit: { url: `${hook.url}/hook`, secret: HMAC_SECRET } },
        email: { host: '127.0.0.1', port: smtpPort, from: 'betrace@example.com' },
      },
    }, { env: { TEST_PD_KEY: ROUTING_KEY } });
  });

  after(async () => {
    await betrace?.stop();
    await Promise.all([slack?.close(), pagerduty?.close(), hook?.close(), new Promise<void>((r) => (smtp === undefined ? r() : smtp.close(() => r())))]);
  });

  it('delivers each violation once to every channel of the route, within each channel\'s documented limits', async () => {
    await injectFailingTraces(betrace.grpcUrl, 3, 'inventory.reserve');
    await waitUntil(() => (betrace.pipeline.violations?.size ?? 0) === 3, 30_000, '3 violations stored');
    const stored = betrace.pipeline.violations!.query({ limit: 10 }).violations;
    const traces = stored.map((v) => v.trace_id).sort();
    const ids = stored.map((v) => v.violation_id).sort();

    const slackTraces = () => slack.received.flatMap((r) => [...JSON.stringify(r.body.blocks).matchAll(/\|([0-9a-f]{32})>/g)].map((m) => m[1]!));
    const pdTraces = () => pagerduty.received.flatMap((r) => r.body.payload.custom_details.traces as string[]);
    const hookIds = () => hook.received.flatMap((r) => (r.body.violations as any[]).map((v) => v.violation_id as string));
    const mailTraces = () => mails.flatMap((m) => [...m.matchAll(/^- trace ([0-9a-f]{32}) /gm)].map((x) => x[1]!));
    await waitUntil(() => slackTraces().length >= 3 && pdTraces().length >= 3 && hookIds().length >= 3 && mailTraces().length >= 3, 30_000, 'every channel told of 3 violations').catch((err: Error) => {
      throw new Error(`${err.message}: slack ${slackTraces().length}, pagerduty ${pdTraces().length}, webhook ${hookIds().length}, email ${mailTraces().length}\n${betrace.logs.filter((l) => l.includes('notif')).join('').slice(-3000)}\n${mails[0] ?? ''}`);
    });
    // Settled: nothing more is queued for any channel.
    await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_notifications_queued')) === 0, 10_000, 'outbox drained');

    assert.deepEqual(slackTraces().sort(), traces, 'Slack: each trace once');
    assert.deepEqual(pdTraces().sort(), traces, 'PagerDuty: each trace once');
    assert.deepEqual(hookIds().sort(), ids, 'webhook: each violation once');
    assert.deepEqual(mailTraces().sort(), traces, 'email: each trace once');

    for (const r of slack.received) {
      assert.deepEqual(slackProblems(r.body), [], JSON.stringify(r.body));
      const fields = r.body.blocks.flatMap((b: any) => b.fields ?? []).map((f: any) => f.text);
      assert.ok(fields.includes('*Services*\nnotify-test') && fields.includes('*Witness spans*\ninventory.reserve'), JSON.stringify(fields));
    }
    assert.equal(slack.received[0]!.path, '/services/T000/B000/XXXX', 'the webhook URL from url_file');
    for (const r of pagerduty.received) {
      assert.deepEqual(pagerdutyProblems(r.body), []);
      assert.equal(r.body.payload.severity, 'critical');
      assert.equal(r.body.payload.source, 'notify-test', "the violation's service");
      assert.ok(ids.includes(r.body.dedup_key), 'dedup_key is a violation id');
      assert.ok(r.body.links.every((l: any) => /^http:\/\/jaeger\.example:16686\/trace\/[0-9a-f]{32}$/.test(l.href)), 'trace links from notifications.trace_url');
    }
    for (const r of hook.received) {
      assert.equal(r.headers['x-betrace-signature'], `sha256=${createHmac('sha256', HMAC_SECRET).update(r.raw).digest('hex')}`, 'HMAC-SHA256 of the body');
      assert.equal(r.headers['idempotency-key'], r.body.violations[0].violation_id);
    }
    for (const m of mails) {
      assert.match(m, /^To: oncall@company\.com/m);
      assert.match(m, /^Message-ID: <[0-9a-f]+@betrace>/im);
      assert.match(m, /^Subject: \[critical\] /m);
      assert.match(m, /^Services: notify-test$/m);
      assert.match(m, /^Witness spans: inventory\.reserve$/m);
    }
    const api = (await (await fetch(`${betrace.apiUrl}/v1/violations`)).json()) as { violations: Array<{ trace_id: string; trace_url: string }> };
    for (const v of api.violations) assert.equal(v.trace_url, `http://jaeger.example:16686/trace/${v.trace_id}`, 'the violations API links each trace');
    assert.equal(await metricValue(betrace.apiUrl, 'betrace_notifications_failed_total'), 0);
    assert.equal(
      await metricValue(betrace.apiUrl, 'betrace_notifications_sent_total'),
      slack.received.length + pagerduty.received.length + hook.received.length + mails.length,
    );
    assert.ok(!betrace.logs.join('').includes(ROUTING_KEY) && !betrace.logs.join('').includes('/services/T000'), 'secrets are never logged');
  });
});
