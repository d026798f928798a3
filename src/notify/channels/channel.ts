/**
 * The one interface every channel implements: send a message, get the outcome as a value.
 * A failure says whether it is worth retrying (the sender backs off and tries again) or
 * permanent (the message is dead-lettered). Error texts never hold a secret (webhook URLs,
 * routing keys, passwords): they name the channel and the status or error code only.
 */
import type { ChannelKind } from '../../rules/index.ts';
import type { Notification } from '../message.ts';

export type SendResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly retryable: boolean; readonly error: string; readonly retryAfterMs?: number };

export interface Channel {
  readonly kind: ChannelKind;
  send(n: Notification): Promise<SendResult>;
}

const TIMEOUT_MS = 10_000;

/** Retry-After in seconds or as an HTTP date, in ms; undefined when absent or unreadable. */
function retryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * POSTs JSON. Connection errors, timeouts, 408, 429 and 5xx are retryable (with the
 * server's Retry-After); any other status outside 2xx is permanent. `label` names the
 * destination in errors in place of the URL, which may be a secret (Slack).
 */
export async function postJson(url: string, body: string, headers: Record<string, string>, label: string): Promise<SendResult> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ok: false, retryable: true, error: `${label}: ${e.cause?.code ?? e.name}` };
  }
  const text = await res.text().catch(() => '');
  if (res.ok) return { ok: true };
  const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
  const after = retryAfter(res.headers.get('retry-after'));
  return { ok: false, retryable, error: `${label}: HTTP ${res.status} ${text.slice(0, 200)}`.trimEnd(), ...(after === undefined ? {} : { retryAfterMs: after }) };
}
