// The violations page: filters (rule, severity, time, trace id, service), newest first, paged
// by the API's cursor; each violation with its services, witness span names and ids and, when the API gives one
// (`trace_url`), a link to the trace in the user's tracing backend.
import { useEffect, useState } from 'preact/hooks';
import { call, describeError } from './api.js';
import { html, nanosToIso } from './html.js';

const PAGE = 25;
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];

/** A datetime-local value (the browser's local time) as unix seconds, or undefined when empty. */
const seconds = (local) => (local === '' ? undefined : Math.floor(new Date(local).getTime() / 1000));

function query(filters, cursor) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (filters.rule !== '') q.set('rule_id', filters.rule);
  if (filters.severity !== '') q.set('severity', filters.severity);
  if (filters.traceId.trim() !== '') q.set('trace_id', filters.traceId.trim());
  if (filters.service.trim() !== '') q.set('service', filters.service.trim());
  const from = seconds(filters.from);
  const to = seconds(filters.to);
  if (from !== undefined) q.set('start_time', String(from));
  if (to !== undefined) q.set('end_time', String(to));
  if (cursor !== undefined) q.set('cursor', cursor);
  return `/v1/violations?${q}`;
}

/** The link to the trace, when the violation carries one (`trace_url`, filled from the trace link template). */
function TraceLink({ v }) {
  const url = v.trace_url ?? v.links?.trace;
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) return null;
  return html`<a href=${url} rel="noopener noreferrer" target="_blank">Open trace<span class="visually-hidden"> ${v.trace_id} (new tab)</span></a>`;
}

const EMPTY = { rule: '', severity: '', from: '', to: '', traceId: '', service: '' };

export function ViolationsPage() {
  const [rules, setRules] = useState([]);
  const [form, setForm] = useState(EMPTY);
  const [filters, setFilters] = useState(EMPTY);
  // The cursors of the pages before this one, to go back; `cursor`: this page's.
  const [cursors, setCursors] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [page, setPage] = useState(undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    call('GET', '/v1/rules').then((r) => setRules(r.rules.map((x) => x.id)), () => undefined);
  }, []);
  useEffect(() => {
    call('GET', query(filters, cursor)).then(
      (p) => (setPage(p), setError('')),
      (err) => setError(describeError(err)),
    );
  }, [filters, cursor]);
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const apply = (e) => {
    e.preventDefault();
    setCursors([]);
    setCursor(undefined);
    setFilters({ ...form });
  };
  const older = () => (setCursors([...cursors, cursor]), setCursor(page.next_cursor));
  const newer = () => (setCursor(cursors.at(-1)), setCursors(cursors.slice(0, -1)));
  return html`
    <form class="filters" onSubmit=${apply} aria-label="Filters">
      <div><label for="f-rule">Rule</label>
        <select id="f-rule" value=${form.rule} onChange=${set('rule')}><option value="">Any rule</option>${rules.map((r) => html`<option value=${r}>${r}</option>`)}</select></div>
      <div><label for="f-severity">Severity</label>
        <select id="f-severity" value=${form.severity} onChange=${set('severity')}><option value="">Any severity</option>${SEVERITIES.map((s) => html`<option value=${s}>${s}</option>`)}</select></div>
      <div><label for="f-from">From (local time)</label><input id="f-from" type="datetime-local" value=${form.from} onInput=${set('from')} /></div>
      <div><label for="f-to">To (local time)</label><input id="f-to" type="datetime-local" value=${form.to} onInput=${set('to')} /></div>
      <div><label for="f-trace">Trace id</label><input id="f-trace" value=${form.traceId} onInput=${set('traceId')} pattern="[0-9a-fA-F]{32}" size="34" /></div>
      <div><label for="f-service">Service</label><input id="f-service" value=${form.service} onInput=${set('service')} size="16" /></div>
      <div class="buttons"><button type="submit" class="primary">Apply filters</button>
        <button type="button" onClick=${() => (setForm(EMPTY), setCursors([]), setCursor(undefined), setFilters(EMPTY))}>Clear</button></div>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${page === undefined
      ? html`<p>Loading violations…</p>`
      : html`<table class="list" id="violations">
          <caption>Violations, newest first: page ${cursors.length + 1} (${page.violations.length} shown)</caption>
          <thead><tr><th scope="col">Started</th><th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">Message</th><th scope="col">Trace</th><th scope="col">Witness spans</th></tr></thead>
          <tbody>
            ${page.violations.length === 0 ? html`<tr><td colspan="6">No violation matches.</td></tr>` : null}
            ${page.violations.map(
              (v) => html`<tr data-violation=${v.violation_id} data-rule=${v.rule_id}>
                <td>${nanosToIso(v.start_time_unix_nano)}</td>
                <td><code>${v.rule_id}</code></td>
                <td><span class=${`sev sev-${v.severity}`}>${v.severity}</span></td>
                <td>${v.message}${v.partial ? html` <span class="hint">(partial trace)</span>` : null}</td>
                <td><code>${v.trace_id}</code> <${TraceLink} v=${v} /></td>
                <td>
                  <details><summary>${v.witness_count} of ${v.span_count} spans</summary>
                    ${v.witness_names?.length ? html`<div class="witness-names">Spans: ${v.witness_names.join(', ')}</div>` : null}
                    ${v.services?.length ? html`<div class="services">Services: ${v.services.join(', ')}</div>` : null}
                    <ul class="ids">${v.span_ids.map((id) => html`<li><code>${id}</code></li>`)}</ul>
                    <div class="hint">Witnesses from ${nanosToIso(v.start_time_unix_nano)} to ${nanosToIso(v.end_time_unix_nano)}; root span <code>${v.root_span_id}</code></div>
                  </details>
                </td>
              </tr>`,
            )}
          </tbody>
        </table>
        <nav class="pager" aria-label="Pages of violations">
          <button type="button" onClick=${newer} disabled=${cursors.length === 0}>Newer</button>
          <button type="button" onClick=${older} disabled=${page.next_cursor === null}>Older</button>
        </nav>`}`;
}
