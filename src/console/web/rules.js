// The rules page: the list (source, severity, state, version, violations in the last
// hour and day), enable/disable, "disable all" as one confirmed action (the runbook's
// emergency), and the editor of API rules: compile errors at line:column as you type
// (POST /v1/rules/validate), the canonical reading beside it, and a try before saving:
// on a pasted OTLP/JSON trace (POST /v1/rules/try), or on the traces of the last hour (a
// replay of the draft over the running transport's history, POST /v1/replay).
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, describeError, followReplay } from './api.js';
import { html, nanosToIso } from './html.js';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
const DAY = 86_400;

/** Violations of `ruleId` whose witnesses started in the last day and hour; `more`: the day holds over one page (1000). */
async function countViolations(ruleId) {
  const now = Math.floor(Date.now() / 1000);
  const page = await call('GET', `/v1/violations?rule_id=${encodeURIComponent(ruleId)}&start_time=${now - DAY}&limit=1000`);
  const hourAgo = BigInt(now - 3600) * 1_000_000_000n;
  const hour = page.violations.filter((v) => BigInt(v.start_time_unix_nano) >= hourAgo).length;
  return { hour, day: page.violations.length, more: page.next_cursor !== null };
}

function RuleList({ rules, counts, onSwitch, onEdit, busy }) {
  const shown = (c, key) => (c === undefined ? '…' : `${c[key]}${c.more && key === 'day' ? '+' : ''}`);
  return html`<table class="list">
    <caption>Rules in force (${rules.length})</caption>
    <thead>
      <tr><th scope="col">Rule</th><th scope="col">Source</th><th scope="col">Severity</th><th scope="col">State</th><th scope="col">Version</th><th scope="col">Violations, 1 h</th><th scope="col">Violations, 24 h</th><th scope="col">Actions</th></tr>
    </thead>
    <tbody>
      ${rules.map(
        (r) => html`<tr data-rule=${r.id}>
          <th scope="row"><code>${r.id}</code>${r.name !== r.id ? html`<div class="hint">${r.name}</div>` : null}</th>
          <td>${r.source}</td>
          <td><span class=${`sev sev-${r.severity}`}>${r.severity}</span></td>
          <td class="state">${r.state}${r.quarantine ? html`<div class="hint">${r.quarantine.reason}, since ${r.quarantine.since}</div>` : null}</td>
          <td>${r.version}</td>
          <td class="count-hour">${shown(counts[r.id], 'hour')}</td>
          <td class="count-day">${shown(counts[r.id], 'day')}</td>
          <td class="actions">
            <button type="button" disabled=${busy} onClick=${() => onSwitch(r, r.state === 'disabled')} aria-label=${`${r.state === 'disabled' ? 'Enable' : 'Disable'} ${r.id}`}>
              ${r.state === 'disabled' ? 'Enable' : r.state === 'quarantined' ? 'Disable' : 'Disable'}
            </button>
            ${r.state === 'quarantined' ? html`<button type="button" disabled=${busy} onClick=${() => onSwitch(r, true)} aria-label=${`Enable ${r.id} again`}>Lift quarantine</button>` : null}
            ${r.source === 'api' ? html`<button type="button" onClick=${() => onEdit(r)} aria-label=${`Edit ${r.id}`}>Edit</button>` : null}
          </td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The runbook's emergency: every enabled rule disabled, after one confirmation in a modal dialog. */
function DisableAll({ rules, onDone, busy }) {
  const dialog = useRef(null);
  const enabled = rules.filter((r) => r.state !== 'disabled');
  const confirm = async () => {
    dialog.current.close();
    await onDone(enabled);
  };
  return html`<div class="emergency">
    <button type="button" class="danger" disabled=${busy || enabled.length === 0} onClick=${() => dialog.current.showModal()}>Disable all rules…</button>
    <dialog ref=${dialog} aria-labelledby="disable-all-title">
      <h2 id="disable-all-title">Disable all ${enabled.length} enabled rules?</h2>
      <p>No rule yields violations until it is enabled again, one by one. File rules are disabled by an override kept with the API rules.</p>
      <div class="buttons">
        <button type="button" class="danger" onClick=${confirm}>Disable ${enabled.length} rules</button>
        <button type="button" onClick=${() => dialog.current.close()}>Cancel</button>
      </div>
    </dialog>
  </div>`;
}

/** The line of `text` an error points at, with a caret under its column. */
function Caret({ text, line, column }) {
  const source = text.split('\n')[line - 1] ?? '';
  return html`<pre class="caret" aria-hidden="true">${source}\n${' '.repeat(Math.max(0, column - 1))}^</pre>`;
}

/** What the replay of the draft over the last hour found: the violating traces, newest last. */
function RecentResult({ job }) {
  if (job === undefined) return null;
  const report = job.result;
  return html`<div aria-live="polite" id="recent-result">
    ${job.status === 'running' ? html`<p>Replaying${job.progress ? `: ${job.progress.traces} traces read` : ''}…</p>` : null}
    ${job.status === 'failed' ? html`<p class="error">${job.error}</p>` : null}
    ${report
      ? html`<table class="list">
          <caption>${report.affected_traces} of ${report.traces_scanned} traces of the last hour violate the rule</caption>
          <thead><tr><th scope="col">Trace</th><th scope="col">Started</th><th scope="col">Witness spans</th></tr></thead>
          <tbody>${report.violations.slice(0, 50).map(
            (v) => html`<tr><td><code>${v.trace_id}</code></td><td>${new Date(v.trace_start_unix_ms).toISOString()}</td><td>${v.witness_count}: <code>${v.span_ids.slice(0, 4).join(', ')}</code></td></tr>`,
          )}</tbody>
        </table>`
      : null}
  </div>`;
}

const EMPTY = { id: '', name: '', severity: 'high', description: '', message: '', condition: '' };

function Editor({ editing, onSaved, onCancel }) {
  const [draft, setDraft] = useState(editing ?? EMPTY);
  const [check, setCheck] = useState(undefined);
  const [trace, setTrace] = useState('');
  const [tried, setTried] = useState(undefined);
  const [status, setStatus] = useState('');
  const seq = useRef(0);
  useEffect(() => setDraft(editing ?? EMPTY), [editing]);
  // Checked as you type, 250 ms after the last key; only the newest answer is shown.
  useEffect(() => {
    if (draft.condition.trim() === '') return setCheck(undefined);
    const n = ++seq.current;
    const timer = setTimeout(() => {
      call('POST', '/v1/rules/validate', { condition: draft.condition })
        .then((r) => n === seq.current && setCheck(r))
        .catch((err) => n === seq.current && setCheck({ ok: false, errors: [{ line: 1, column: 1, message: describeError(err) }] }));
    }, 250);
    return () => clearTimeout(timer);
  }, [draft.condition]);
  const set = (key) => (e) => setDraft({ ...draft, [key]: e.currentTarget.value });
  const body = () => ({
    severity: draft.severity,
    condition: draft.condition,
    ...(draft.name.trim() !== '' ? { name: draft.name.trim() } : {}),
    ...(draft.description.trim() !== '' ? { description: draft.description.trim() } : {}),
    ...(draft.message?.trim() ? { message: draft.message.trim() } : {}),
  });
  const tryIt = async () => {
    setTried(undefined);
    try {
      setTried(await call('POST', '/v1/rules/try', { ...body(), trace }));
    } catch (err) {
      setTried({ error: describeError(err) });
    }
  };
  const [recent, setRecent] = useState(undefined);
  // The draft as a rule file for the replay: JSON is YAML, so no quoting of our own.
  const tryRecent = async () => {
    setRecent({ status: 'running' });
    try {
      const rules_yaml = JSON.stringify({ rules: [{ id: draft.id.trim() || 'draft', ...body() }] });
      const { id } = await call('POST', '/v1/replay', { rules_yaml, from: '1h', to: 'now' });
      await followReplay(id, setRecent);
    } catch (err) {
      setRecent({ status: 'failed', error: describeError(err) });
    }
  };
  const save = async (e) => {
    e.preventDefault();
    setStatus('');
    try {
      const saved = editing ? await call('PUT', `/v1/rules/${encodeURIComponent(editing.id)}`, body()) : await call('POST', '/v1/rules', { id: draft.id.trim(), ...body() });
      setStatus(`Saved ${saved.id}, version ${saved.version}.`);
      if (!editing) setDraft(EMPTY);
      onSaved(saved);
    } catch (err) {
      setStatus(`Not saved: ${describeError(err)}`);
    }
  };
  const errors = check && !check.ok ? check.errors : [];
  return html`<section aria-labelledby="editor-title" class="editor">
    <h2 id="editor-title">${editing ? `Edit ${editing.id}` : 'New rule'}</h2>
    <form onSubmit=${save}>
      <div class="fields">
        <label for="rule-id">Id</label>
        <input id="rule-id" value=${draft.id} onInput=${set('id')} disabled=${editing !== undefined} required pattern="[a-z0-9][a-z0-9._\\-]*" aria-describedby="rule-id-help" />
        <span id="rule-id-help" class="hint">Lowercase letters, digits, . _ -</span>
        <label for="rule-name">Name</label>
        <input id="rule-name" value=${draft.name} onInput=${set('name')} />
        <label for="rule-severity">Severity</label>
        <select id="rule-severity" value=${draft.severity} onChange=${set('severity')}>
          ${SEVERITIES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
        <label for="rule-description">Description</label>
        <input id="rule-description" value=${draft.description} onInput=${set('description')} />
      </div>
      <div class="split">
        <div>
          <label for="rule-condition">Condition</label>
          <textarea id="rule-condition" class="code" rows="6" spellcheck="false" value=${draft.condition} onInput=${set('condition')}
            aria-invalid=${errors.length > 0 ? 'true' : 'false'} aria-describedby="rule-diagnostics"></textarea>
          <div id="rule-diagnostics" class="diagnostics" aria-live="polite">
            ${errors.map((d) => html`<div class="error"><span class="position">${d.line}:${d.column}</span> ${d.message}<${Caret} text=${draft.condition} line=${d.line} column=${d.column} /></div>`)}
            ${check?.ok ? html`<div class="ok">Compiles.</div>` : null}
            ${(check?.warnings ?? []).map((w) => html`<div class="warning"><span class="position">${w.line}:${w.column}</span> warning: ${w.message}</div>`)}
          </div>
        </div>
        <div>
          <h3>Canonical reading</h3>
          <div class="reading" aria-live="polite">
            ${check?.ok
              ? html`<pre class="code" id="rule-canonical">${check.canonical}</pre>
                  <ul>${check.notes.map((n) => html`<li>${n}</li>`)}</ul>`
              : html`<p class="hint">How betrace reads the condition (betrace rules check --explain) appears here once it compiles.</p>`}
          </div>
        </div>
      </div>
      <details>
        <summary>Try it on a trace</summary>
        <label for="rule-trace">OTLP JSON trace (an export request, as the Collector's file exporter writes)</label>
        <textarea id="rule-trace" class="code" rows="6" spellcheck="false" value=${trace} onInput=${(e) => setTrace(e.currentTarget.value)}></textarea>
        <button type="button" onClick=${tryIt} disabled=${trace.trim() === '' || !check?.ok}>Try on this trace</button>
        <div aria-live="polite" id="try-result">
          ${tried?.error ? html`<p class="error">${tried.error}</p>` : null}
          ${tried?.traces
            ? html`<table class="list">
                <caption>${tried.traces.filter((t) => t.violated).length} of ${tried.traces.length} traces violate the rule (${tried.spans} spans)</caption>
                <thead><tr><th scope="col">Trace</th><th scope="col">Spans</th><th scope="col">Verdict</th><th scope="col">Witness spans</th></tr></thead>
                <tbody>${tried.traces.map(
                  (t) => html`<tr>
                    <td><code>${t.trace_id}</code></td>
                    <td>${t.spans}</td>
                    <td class="verdict">${t.violated ? 'violates' : t.budget_exceeded ? 'no verdict (budget exceeded)' : 'passes'}</td>
                    <td>${(t.witnesses ?? []).map((w) => html`<div>${w.name} <span class="hint">(${w.service || 'no service'}, ${nanosToIso(w.start_time_unix_nano)})</span></div>`)}</td>
                  </tr>`,
                )}</tbody>
              </table>`
            : null}
        </div>
      </details>
      <details>
        <summary>Try it on the last hour's traces</summary>
        <p class="hint">Replays the draft over the last hour of the running transport's history (needs the API token).</p>
        <button type="button" onClick=${tryRecent} disabled=${!check?.ok || recent?.status === 'running'}>Try on the last hour</button>
        <${RecentResult} job=${recent} />
      </details>
      <div class="buttons">
        <button type="submit" class="primary" disabled=${!check?.ok}>${editing ? 'Save changes' : 'Create rule'}</button>
        ${editing ? html`<button type="button" onClick=${onCancel}>Cancel editing</button>` : null}
      </div>
      <p role="status" id="save-status">${status}</p>
    </form>
  </section>`;
}

export function RulesPage() {
  const [rules, setRules] = useState(undefined);
  const [counts, setCounts] = useState({});
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const [editing, setEditing] = useState(undefined);
  const load = async () => {
    try {
      const { rules: list } = await call('GET', '/v1/rules');
      setRules(list);
      setError('');
      const entries = await Promise.all(list.map(async (r) => [r.id, await countViolations(r.id)]));
      setCounts(Object.fromEntries(entries));
    } catch (err) {
      setError(describeError(err));
    }
  };
  useEffect(() => void load(), []);
  const switchRule = async (rule, enable) => {
    setBusy(true);
    try {
      await call('POST', `/v1/rules/${encodeURIComponent(rule.id)}/${enable ? 'enable' : 'disable'}`);
      setNotice(`${rule.id} ${enable ? 'enabled' : 'disabled'}.`);
    } catch (err) {
      setNotice(`${rule.id} not changed: ${describeError(err)}`);
    }
    setBusy(false);
    await load();
  };
  const disableAll = async (enabled) => {
    setBusy(true);
    const failed = [];
    for (const r of enabled) {
      try {
        await call('POST', `/v1/rules/${encodeURIComponent(r.id)}/disable`);
      } catch (err) {
        failed.push(`${r.id} (${describeError(err)})`);
      }
    }
    setNotice(failed.length === 0 ? `Disabled ${enabled.length} rules.` : `Disabled ${enabled.length - failed.length} of ${enabled.length} rules; not: ${failed.join(', ')}`);
    setBusy(false);
    await load();
  };
  return html`
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    <p role="status" id="rules-status">${notice}</p>
    ${rules === undefined
      ? html`<p>Loading rules…</p>`
      : html`<${DisableAll} rules=${rules} onDone=${disableAll} busy=${busy} />
          <${RuleList} rules=${rules} counts=${counts} busy=${busy} onSwitch=${switchRule} onEdit=${(r) => setEditing({ ...EMPTY, ...r })} />`}
    <${Editor}
      editing=${editing}
      onSaved=${() => {
        setEditing(undefined);
        void load();
      }}
      onCancel=${() => setEditing(undefined)}
    />`;
}
