/**
 * TIME arguments of `betrace replay --from/--to` and of replay jobs: RFC 3339
 * (`2026-11-03T12:00:00Z`, or a date `2026-11-03` = its UTC midnight), unix
 * seconds (`1793750400`, fractions allowed), a duration ago (`30d`, `2h`, `15m`,
 * `45s`, `1w`), or `now`.
 */

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const UNIX = /^\d+(\.\d+)?$/;
const AGO = /^(\d+(?:\.\d+)?)(w|d|h|m|s)$/;
const UNIT_MS: Record<string, number> = { w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

export const TIME_FORMS = 'RFC 3339, unix seconds, 30d/2h/15m ago, or now';

/** Unix ms of `text`, relative forms counted back from `nowMs`; undefined when it is not a TIME. */
export function parseTime(text: string, nowMs: number): number | undefined {
  const t = text.trim();
  if (t === 'now') return nowMs;
  if (UNIX.test(t)) return Math.round(Number(t) * 1000);
  const ago = AGO.exec(t);
  if (ago !== null) return nowMs - Math.round(Number(ago[1]) * UNIT_MS[ago[2]!]!);
  const date = DATE.exec(t);
  if (date !== null) {
    const ms = Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]));
    return new Date(ms).toISOString().startsWith(t) ? ms : undefined;
  }
  if (RFC3339.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'));
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** [from, to) from two TIME texts, or the one-line reason they are not usable. */
export function parseRange(from: string, to: string, nowMs: number): { ok: true; fromMs: number; toMs: number } | { ok: false; error: string } {
  const fromMs = parseTime(from, nowMs);
  if (fromMs === undefined) return { ok: false, error: `--from: cannot read ${JSON.stringify(from)} as a time (${TIME_FORMS})` };
  const toMs = parseTime(to, nowMs);
  if (toMs === undefined) return { ok: false, error: `--to: cannot read ${JSON.stringify(to)} as a time (${TIME_FORMS})` };
  if (fromMs >= toMs) {
    return { ok: false, error: `--from (${new Date(fromMs).toISOString()}) must be before --to (${new Date(toMs).toISOString()})` };
  }
  return { ok: true, fromMs, toMs };
}
