// The replay page: start a job (POST /v1/replay: rules, range, source), follow its
// progress (followReplay: GET /v1/replay/{id} every second while it runs), and show its report: the
// violations per day as a chart (inline SVG) and a table, downloadable as JSON.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, describeError, followReplay } from './api.js';
import { html } from './html.js';

const SOURCES = [
  ['', "the running transport's history"],
  ['history', 'history: the local history (embedded transport)'],
  ['kafka', 'kafka: the spans topic'],
  ['files', 'files: trace files under api.replay_dir'],
];

/** Violations per day as bars; each bar is labelled with its count (the table beside says the same). */
function DayChart({ days }) {
  const max = Math.max(1, ...days.map(([, d]) => d.violations));
  const width = Math.max(240, days.length * 48);
  const height = 160;
  const bar = 32;
  return html`<svg class="chart" role="img" aria-labelledby="chart-title" viewBox=${`0 0 ${width} ${height + 36}`} width=${width} height=${height + 36}>
    <title id="chart-title">Violations per day: ${days.map(([day, d]) => `${day} ${d.violations}`).join(', ') || 'none'}</title>
    ${days.map(([day, d], i) => {
      const h = Math.round((d.violations / max) * (height - 20));
      const x = i * 48 + 8;
      return html`<g>
        <rect x=${x} y=${height - h} width=${bar} height=${h} class="bar" />
        <text x=${x + bar / 2} y=${height - h - 4} text-anchor="middle" class="chart-value">${d.violations}</text>
        <text x=${x + bar / 2} y=${height + 16} text-anchor="middle" class="chart-label">${day.slice(5)}</text>
      </g>`;
    })}
    <line x1="0" x2=${width} y1=${height} y2=${height} class="axis" />
  </svg>`;
}

function Report({ job }) {
  const report = job.result;
  const days = Object.entries(report.per_day ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const download = URL.createObjectURL(new Blob([JSON.stringify(report, null, 2)], { type: 'application/json' }));
  useEffect(() => () => URL.revokeObjectURL(download), [download]);
  return html`<section aria-labelledby="report-title" id="replay-report">
    <h2 id="report-title">Report</h2>
    <p>
      ${report.total} violations in ${report.affected_traces} traces; ${report.traces_scanned} traces (${report.spans_scanned} spans) scanned from ${report.from} to ${report.to}, source ${report.source}.
      ${report.incomplete ? html` <strong>Incomplete: history starts at ${report.history_start}.</strong>` : null}
    </p>
    <${DayChart} days=${days} />
    <table class="list" id="replay-days">
      <caption>Violations per day (UTC)</caption>
      <thead><tr><th scope="col">Day</th><th scope="col">Violations</th><th scope="col">By rule</th><th scope="col">Traces (first ids)</th></tr></thead>
      <tbody>
        ${days.length === 0 ? html`<tr><td colspan="4">No violation in the range.</td></tr>` : null}
        ${days.map(
          ([day, d]) => html`<tr>
            <th scope="row">${day}</th>
            <td>${d.violations}</td>
            <td>${Object.entries(d.by_rule).map(([rule, n]) => html`<div><code>${rule}</code>: ${n}</div>`)}</td>
            <td>${d.trace_ids.slice(0, 5).map((id) => html`<div><code>${id}</code></div>`)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <p><a href=${download} download=${`betrace-replay-${job.id}.json`}>Download the report (JSON)</a></p>
  </section>`;
}

export function ReplayPage() {
  const [rules, setRules] = useState([]);
  const [chosen, setChosen] = useState([]);
  const [from, setFrom] = useState('1d');
  const [to, setTo] = useState('now');
  const [source, setSource] = useState('');
  const [files, setFiles] = useState('');
  const [job, setJob] = useState(undefined);
  const [error, setError] = useState('');
  const gone = useRef(false);
  useEffect(() => {
    call('GET', '/v1/rules').then((r) => setRules(r.rules.map((x) => x.id)), (err) => setError(describeError(err)));
    return () => void (gone.current = true);
  }, []);
  const start = async (e) => {
    e.preventDefault();
    setError('');
    setJob(undefined);
    const body = {
      rule_ids: chosen,
      from: from.trim(),
      to: to.trim(),
      ...(source !== '' ? { source } : {}),
      ...(source === 'files' ? { files: files.split(',').map((f) => f.trim()).filter((f) => f !== '') } : {}),
    };
    try {
      const { id } = await call('POST', '/v1/replay', body);
      setJob({ id, status: 'running' });
      await followReplay(id, setJob, () => gone.current);
    } catch (err) {
      setError(describeError(err));
    }
  };
  const toggle = (id) => (e) => setChosen(e.currentTarget.checked ? [...chosen, id] : chosen.filter((r) => r !== id));
  return html`
    <form onSubmit=${start} class="replay-form">
      <fieldset>
        <legend>Rules to replay</legend>
        ${rules.map((id) => html`<div class="check"><input type="checkbox" id=${`r-${id}`} checked=${chosen.includes(id)} onChange=${toggle(id)} /><label for=${`r-${id}`}><code>${id}</code></label></div>`)}
      </fieldset>
      <div class="fields">
        <label for="replay-from">From</label>
        <input id="replay-from" value=${from} onInput=${(e) => setFrom(e.currentTarget.value)} aria-describedby="time-help" required />
        <label for="replay-to">To</label>
        <input id="replay-to" value=${to} onInput=${(e) => setTo(e.currentTarget.value)} aria-describedby="time-help" required />
        <span id="time-help" class="hint">RFC 3339, unix seconds, 30d / 2h / 15m ago, or now; from inclusive, to exclusive.</span>
        <label for="replay-source">Source</label>
        <select id="replay-source" value=${source} onChange=${(e) => setSource(e.currentTarget.value)}>${SOURCES.map(([v, label]) => html`<option value=${v}>${label}</option>`)}</select>
        ${source === 'files' ? html`<label for="replay-files">Files (comma-separated paths or globs)</label><input id="replay-files" value=${files} onInput=${(e) => setFiles(e.currentTarget.value)} />` : null}
      </div>
      <button type="submit" class="primary" disabled=${chosen.length === 0}>Start replay</button>
    </form>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${job
      ? html`<section aria-labelledby="job-title">
          <h2 id="job-title">Job <code>${job.id}</code></h2>
          <p role="status" id="replay-status">
            ${job.status}${job.progress ? `: ${job.progress.records} records, ${job.progress.spans} spans, ${job.progress.traces} traces read` : ''}${job.status === 'failed' && job.error ? ` (${job.error})` : ''}
          </p>
          ${job.status === 'done' && job.result ? html`<${Report} job=${job} />` : null}
        </section>`
      : null}`;
}
