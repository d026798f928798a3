/**
 * The bearer-token check of the receivers and the admin API: `Authorization: Bearer <token>`,
 * compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type AuthResult = 'ok' | 'missing' | 'wrong';

/** Checks `Authorization: Bearer <token>`; always 'ok' when no token is configured. */
export function createTokenCheck(token: string): (authorization: string | string[] | undefined) => AuthResult {
  if (token === '') return () => 'ok';
  // Digests of equal length, compared in constant time: neither content nor length leaks.
  const expected = createHash('sha256').update(token).digest();
  return (authorization) => {
    const header = Array.isArray(authorization) ? authorization[0] : authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (m === null) return 'missing';
    const given = createHash('sha256').update(m[1]!).digest();
    return timingSafeEqual(given, expected) ? 'ok' : 'wrong';
  };
}

/** The same check, for HTTP request headers. */
export function checkHeaders(check: ReturnType<typeof createTokenCheck>): (headers: IncomingHttpHeaders) => AuthResult {
  return (headers) => check(headers.authorization);
}
