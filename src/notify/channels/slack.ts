/**
 * Slack incoming webhook (one per Slack channel), a Block Kit message: a header, the rule,
 * severity, count, services and witness span names, the traces with their links, the idempotency key in a context block.
 * Within Slack's limits: at most 50 blocks, header text at most 150 characters, section and
 * context texts at most 3,000, top-level `text` (the notification fallback) at most 3,000.
 * The webhook URL is the secret: errors name the Slack channel only.
 */
import { cut, listedTraces, servicesOf, summary, witnessNamesOf, type Notification } from '../message.ts';
import { postJson, type Channel, type SendResult } from './channel.ts';

/** Slack's escaping of mrkdwn text (&, <, >). */
function esc(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function slackMessage(n: Notification): { text: string; blocks: unknown[] } {
  const first = n.violations[0]!;
  // Whole lines only (a cut link would break the mrkdwn), within the section's 3,000 characters.
  let tracesText = '*Traces*';
  let listed = 0;
  for (const t of listedTraces(n)) {
    const line = `\n• ${t.link === undefined ? `\`${t.traceId}\`` : `<${t.link}|${t.traceId}>`} at ${t.at}`;
    if (tracesText.length + line.length > 2950) break;
    tracesText += line;
    listed++;
  }
  if (n.violations.length > listed) tracesText += `\n• and ${n.violations.length - listed} more`;
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(summary(n), 150) } },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: cut(`*Rule*\n${esc(n.ruleName)} (\`${esc(n.ruleId)}\`)`, 2000) },
        { type: 'mrkdwn', text: `*Severity*\n${n.severity}` },
        { type: 'mrkdwn', text: `*Violations*\n${n.violations.length}` },
        { type: 'mrkdwn', text: cut(`*Services*\n${esc(servicesOf(n).join(', ')) || '–'}`, 2000) },
        { type: 'mrkdwn', text: cut(`*Witness spans*\n${esc(witnessNamesOf(n).join(', ')) || '–'}`, 2000) },
      ],
    },
    { type: 'section', text: { type: 'mrkdwn', text: cut(esc(first.message) || ' ', 3000) } },
    { type: 'section', text: { type: 'mrkdwn', text: tracesText } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: cut(`betrace${n.test === true ? ' test' : ''} · key \`${n.key}\``, 3000) }] },
  ];
  return { text: cut(summary(n), 3000), blocks };
}

export function slackChannel(options: { channel: string; url: string }): Channel {
  return {
    kind: 'slack',
    send: (n: Notification): Promise<SendResult> => postJson(options.url, JSON.stringify(slackMessage(n)), {}, `slack ${options.channel}`),
  };
}
