// The console's one way to the admin API: same origin, JSON, the session's token as
// the bearer header on every call (no cookies: credentials 'omit', so no CSRF).
// The token lives in sessionStorage (this tab, until it closes) and is never shown.
const KEY = 'betrace.api_token';

export const session = {
  hasToken: () => (sessionStorage.getItem(KEY) ?? '') !== '',
  setToken: (token) => sessionStorage.setItem(KEY, token),
  forget: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code ?? '';
    this.detail = error ?? {};
  }
}

/** Calls the API; resolves with the parsed JSON (or text), rejects with an ApiError. */
export async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(KEY) ?? '';
  if (token !== '') headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'omit',
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let data = text;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json') && text !== '') data = JSON.parse(text);
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data.error : { message: text });
  return data;
}

/** What to tell the user of a failed call: a missing or wrong token named as such. */
export function describeError(err) {
  if (err instanceof ApiError && err.code === 'UNAUTHENTICATED') return 'This needs the API token: enter it above.';
  if (err instanceof ApiError && err.code === 'FORBIDDEN') return 'The API token is not valid: enter the right one above.';
  return err instanceof Error ? err.message : String(err);
}

/**
 * Follows replay job `id` (GET /v1/replay/{id} every second while it runs), handing each
 * read to `onUpdate`; resolves with the job once done or failed, or undefined when
 * `stopped()` says the page went away.
 */
export async function followReplay(id, onUpdate, stopped = () => false) {
  for (;;) {
    const job = await call('GET', `/v1/replay/${encodeURIComponent(id)}`);
    if (stopped()) return undefined;
    onUpdate(job);
    if (job.status !== 'running') return job;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
