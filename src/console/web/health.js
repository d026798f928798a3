// The health page: read from GET /metrics (Prometheus text) and GET /ready every 2 s.
// Rates are the change of a counter between two reads over the time between them, so
// the first read shows totals only. Consumer lag is the embedded transport's queued
// bytes (betrace_transport_queued_bytes): a Kafka consumer's lag is the broker's to say.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, describeError } from './api.js';
import { html } from './html.js';

/** Prometheus text → [{name, labels, value}] (comments and blank lines skipped). */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const sum = (samples, name, where = () => true) => samples.filter((s) => s.name === name && where(s.labels)).reduce((a, s) => a + s.value, 0);

/** Sums of `name` by the value of label `by` (or of several labels joined). */
function byLabel(samples, name, labels) {
  const out = {};
  for (const s of samples) {
    if (s.name !== name || s.value === 0) continue;
    const key = labels.map((l) => s.labels[l] ?? '').filter((v) => v !== '').join(' · ') || '(none)';
    out[key] = (out[key] ?? 0) + s.value;
  }
  return out;
}

const IN = 'betrace_receiver_spans_accepted_total';
const OUT = 'betrace_exporter_spans_sent_total';

function Figure({ label, value, id }) {
  return html`<div class="figure" id=${id}><dt>${label}</dt><dd>${value}</dd></div>`;
}

function Reasons({ title, counts, id }) {
  const entries = Object.entries(counts);
  return html`<table class="list" id=${id}>
    <caption>${title}</caption>
    <thead><tr><th scope="col">Reason</th><th scope="col">Total</th></tr></thead>
    <tbody>${entries.length === 0 ? html`<tr><td colspan="2">None</td></tr>` : entries.map(([k, v]) => html`<tr><td>${k}</td><td>${v}</td></tr>`)}</tbody>
  </table>`;
}

export function HealthPage() {
  const [state, setState] = useState(undefined);
  const [error, setError] = useState('');
  const previous = useRef(undefined);
  useEffect(() => {
    let timer;
    let stopped = false;
    const read = async () => {
      try {
        const [text, ready] = await Promise.all([
          call('GET', '/metrics'),
          fetch('/ready', { credentials: 'omit', cache: 'no-store' }).then((r) => r.json()),
        ]);
        const samples = parseMetrics(text);
        const now = performance.now();
        const totals = { in: sum(samples, IN), out: sum(samples, OUT, (l) => l.exporter === 'forwarder'), violations: sum(samples, OUT, (l) => l.exporter === 'violations') };
        const prev = previous.current;
        const rate = (key) => (prev === undefined ? undefined : Math.max(0, (totals[key] - prev.totals[key]) / ((now - prev.at) / 1000)));
        previous.current = { at: now, totals };
        if (stopped) return;
        setState({
          ready,
          totals,
          rates: { in: rate('in'), out: rate('out') },
          live: sum(samples, 'betrace_worker_live_traces'),
          lag: sum(samples, 'betrace_transport_queued_bytes'),
          drops: byLabel(samples, 'betrace_exporter_spans_dropped_total', ['exporter', 'reason']),
          rejected: byLabel(samples, 'betrace_receiver_spans_rejected_total', ['protocol', 'reason']),
          refused: {
            ...byLabel(samples, 'betrace_transport_produce_refused_total', ['reason']),
            ...Object.fromEntries(Object.entries(byLabel(samples, 'betrace_connections_refused_total', ['server'])).map(([k, v]) => [`connections (${k})`, v])),
          },
        });
        setError('');
      } catch (err) {
        if (!stopped) setError(describeError(err));
      }
      if (!stopped) timer = setTimeout(read, 2000);
    };
    void read();
    return () => ((stopped = true), clearTimeout(timer));
  }, []);
  if (state === undefined) return error ? html`<p class="error" role="alert">${error}</p>` : html`<p>Reading metrics…</p>`;
  const perSecond = (r) => (r === undefined ? 'measuring…' : `${r.toFixed(1)}/s`);
  const reasons = Object.entries(state.ready.reasons ?? {});
  return html`
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <section aria-labelledby="ready-title">
      <h2 id="ready-title">Readiness: <span id="ready-status" class=${`ready-${state.ready.status.replace(' ', '-')}`}>${state.ready.status}</span></h2>
      ${reasons.length === 0 ? html`<p>No reason given: every check passes.</p>` : html`<ul id="ready-reasons">${reasons.map(([k, v]) => html`<li><code>${k}</code>: ${v}</li>`)}</ul>`}
    </section>
    <section aria-labelledby="flow-title">
      <h2 id="flow-title">Traffic</h2>
      <dl class="figures">
        <${Figure} id="spans-in" label="Spans in" value=${`${perSecond(state.rates.in)} (${state.totals.in} in all)`} />
        <${Figure} id="spans-out" label="Spans out (forwarded)" value=${`${perSecond(state.rates.out)} (${state.totals.out} in all)`} />
        <${Figure} id="live-traces" label="Traces live" value=${state.live} />
        <${Figure} id="lag" label="Consumer lag (bytes queued)" value=${state.lag} />
      </dl>
    </section>
    <section aria-labelledby="loss-title">
      <h2 id="loss-title">Drops and refusals</h2>
      <div class="tables">
        <${Reasons} id="drops" title="Spans dropped by the exporters" counts=${state.drops} />
        <${Reasons} id="rejected" title="Spans rejected by the receiver" counts=${state.rejected} />
        <${Reasons} id="refused" title="Refusals" counts=${state.refused} />
      </div>
    </section>`;
}
