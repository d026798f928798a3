// The console's shell: the token form, the page navigation (#/rules, #/violations,
// #/replay, #/health: one HTML page, the hash names the page) and the page itself.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { session } from './api.js';
import { html } from './html.js';
import { HealthPage } from './health.js';
import { ReplayPage } from './replay.js';
import { RulesPage } from './rules.js';
import { ViolationsPage } from './violations.js';

const PAGES = [
  { id: 'rules', title: 'Rules', Page: RulesPage },
  { id: 'violations', title: 'Violations', Page: ViolationsPage },
  { id: 'replay', title: 'Replay', Page: ReplayPage },
  { id: 'health', title: 'Health', Page: HealthPage },
];

const pageOf = () => PAGES.find((p) => `#/${p.id}` === location.hash) ?? PAGES[0];

function TokenForm({ hasToken, onChange }) {
  const [value, setValue] = useState('');
  if (hasToken) {
    return html`<div class="token">
      <span>API token set for this browser session.</span>
      <button type="button" onClick=${() => (session.forget(), onChange())}>Forget token</button>
    </div>`;
  }
  const submit = (e) => {
    e.preventDefault();
    if (value.trim() === '') return;
    session.setToken(value.trim());
    setValue('');
    onChange();
  };
  return html`<form class="token" onSubmit=${submit}>
    <label for="token">API token</label>
    <input id="token" type="password" autocomplete="off" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} aria-describedby="token-help" />
    <button type="submit">Use token</button>
    <span id="token-help" class="hint">Kept for this tab only; needed to change rules and start replays.</span>
  </form>`;
}

function App() {
  const [page, setPage] = useState(pageOf());
  const [hasToken, setHasToken] = useState(session.hasToken());
  useEffect(() => {
    const onHash = () => setPage(pageOf());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    document.title = `${page.title} · betrace console`;
  }, [page]);
  const { Page } = page;
  return html`
    <a class="skip" href="#main" onClick=${(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>Skip to content</a>
    <header>
      <span class="brand">betrace console</span>
      <nav aria-label="Pages">
        <ul>
          ${PAGES.map((p) => html`<li><a href=${`#/${p.id}`} aria-current=${p === page ? 'page' : undefined}>${p.title}</a></li>`)}
        </ul>
      </nav>
      <${TokenForm} hasToken=${hasToken} onChange=${() => setHasToken(session.hasToken())} />
    </header>
    <main id="main" tabindex="-1">
      <h1>${page.title}</h1>
      <${Page} key=${page.id} hasToken=${hasToken} />
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
