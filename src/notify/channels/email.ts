/**
 * Email over SMTP with nodemailer: one mail per message, to the route's address, the
 * idempotency key as the Message-ID (`<KEY@betrace>`) and in `X-Betrace-Idempotency-Key`.
 * SMTP 4xx replies and connection errors are retryable, 5xx replies permanent.
 */
import { createTransport, type Transporter } from 'nodemailer';
import { plainText, summary, type Notification } from '../message.ts';
import type { Channel, SendResult } from './channel.ts';

export interface SmtpOptions {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly username: string;
  readonly password: string;
  readonly from: string;
}

const RETRYABLE_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPROTOCOL']);

export function emailChannel(smtp: SmtpOptions, to: string, transporter?: Transporter): Channel {
  const transport =
    transporter ??
    createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      ...(smtp.username === '' ? {} : { auth: { user: smtp.username, pass: smtp.password } }),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
  return {
    kind: 'email',
    send: async (n: Notification): Promise<SendResult> => {
      try {
        await transport.sendMail({
          from: smtp.from,
          to,
          subject: summary(n),
          text: plainText(n),
          messageId: `<${n.key}@betrace>`,
          headers: { 'X-Betrace-Idempotency-Key': n.key, 'X-Betrace-Rule-Id': n.ruleId },
        });
        return { ok: true };
      } catch (err) {
        const e = err as Error & { code?: string; responseCode?: number };
        const status = e.responseCode;
        const retryable = status === undefined ? RETRYABLE_CODES.has(e.code ?? '') || e.code === undefined : status < 500;
        return { ok: false, retryable, error: `email ${smtp.host}:${smtp.port}: ${status ?? e.code ?? e.name}` };
      }
    },
  };
}
