/**
 * Bearer-token check for mutating calls: constant-time comparison (of SHA-256
 * digests, so lengths leak nothing either); the token is never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export type AuthResult = 'ok' | 'missing' | 'wrong';

export function createTokenCheck(token: string): (headers: IncomingHttpHeaders) => AuthResult {
  if (token === '') return () => 'ok';
  const expected = createHash('sha256').update(token).digest();
  return (headers) => {
    const header = headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (m === null) return 'missing';
    const given = createHash('sha256').update(m[1]!).digest();
    return timingSafeEqual(given, expected) ? 'ok' : 'wrong';
  };
}
