/**
 * The web console (/ui) in a real headless Chromium (test/helpers/browser.ts), against a
 * betrace pipeline in this process: the token entered once per session, the rules list,
 * disabling a rule and seeing its violations stop, writing a rule with a typo (the error
 * at its line and column), fixing it, trying it on a pasted trace, saving it, SDK traffic
 * violating it shown on the violations page with its trace link, a replay and its report,
 * and the health page. axe-core checks every page for WCAG 2.1 AA; the page's
 * Content-Security-Policy must refuse nothing the console does. Screenshots of each page
 * are written to a temporary directory named in the test output (not kept in the repository).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { CONSOLE_CSP } from '../../src/console/routes.ts';
import { axeViolations, launchChromium } from '../helpers/browser.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp, otlpExporter, type TestApp } from '../helpers/sdk.ts';

const TOKEN = 'console-test-token-7f3a';

const RULES = `rules:
  - id: no-refused-payments
    severity: high
    condition: not trace.has(payment.refused)
  - id: marker
    severity: low
    condition: not trace.has(marker.span)
`;

/** The draft typed into the editor: a typo on line 2 (trace.hsa), at column 9. */
const TYPO = 'not trace.has(db.slow)\nand not trace.hsa(db.timeout)';
const FIXED = 'not trace.has(db.slow)\nand not trace.has(db.timeout)';

/** An OTLP/JSON export request with one trace of a root span and a db.timeout child. */
const PASTED = JSON.stringify({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'pasted-shop' } }] },
      scopeSpans: [
        {
          spans: [
            { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', name: 'checkout', startTimeUnixNano: '1765000000000000000', endTimeUnixNano: '1765000001000000000' },
            { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'c7ad6b7169203332', parentSpanId: 'b7ad6b7169203331', name: 'db.timeout', startTimeUnixNano: '1765000000100000000', endTimeUnixNano: '1765000000900000000' },
          ],
        },
      ],
    },
  ],
});

interface Violation {
  rule_id: string;
  trace_id: string;
}

describe('the web console in Chromium', () => {
  let betrace: TestPipeline;
  let sink: OtlpSink;
  let app: TestApp;
  let browser: Browser;
  let page: Page;
  let artifacts: string;
  /** What the page logged as errors (a refused script or style under the CSP among them). */
  const pageErrors: string[] = [];
  /** The Authorization header of every API call the page made, by method and path. */
  const authorization: Array<{ method: string; path: string; header: string | undefined }> = [];

  const api = async (path: string): Promise<any> => (await fetch(`${betrace.apiUrl}${path}`)).json();
  const violations = async (query: string): Promise<Violation[]> => ((await api(`/v1/violations?limit=1000&${query}`)) as { violations: Violation[] }).violations;

  /** Sends one trace from the SDK: a root `checkout` with one child per name; resolves with its trace id. */
  const send = async (...children: string[]): Promise<string> => {
    const tracer = app.tracer();
    const root = tracer.startSpan('checkout');
    const { trace, context } = await import('@opentelemetry/api');
    const ctx = trace.setSpan(context.active(), root);
    for (const name of children) tracer.startSpan(name, {}, ctx).end();
    root.end();
    await app.flush();
    return root.spanContext().traceId;
  };

  const open = async (hash: string, ready: string): Promise<void> => {
    await page.goto(`${betrace.apiUrl}/ui#/${hash}`);
    await page.reload();
    await page.waitForSelector(ready);
  };

  /** axe finds nothing, and the page fits a laptop screen's width (no sideways scrolling); a screenshot kept. */
  const checkPage = async (name: string): Promise<void> => {
    const width = await page.evaluate(() => {
      const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
      return { scroll: root.scrollWidth, client: root.clientWidth };
    });
    assert.ok(width.scroll <= width.client, `the ${name} page is ${width.scroll} px wide in a ${width.client} px window`);
    const found = await axeViolations(page);
    assert.deepEqual(found, [], `axe on the ${name} page: ${JSON.stringify(found, null, 2)}`);
    await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  };

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'betrace-console-'));
    artifacts = mkdtempSync(join(tmpdir(), 'betrace-console-screenshots-'));
    writeFileSync(join(dir, 'rules.yaml'), RULES);
    sink = await startOtlpSink();
    betrace = await startTestPipeline(
      {
        api: { token: TOKEN },
        rules: { paths: [join(dir, '*.yaml')] },
        worker: { trace_idle_timeout: '300ms' },
        downstream: { endpoint: sink.url, batch_timeout: '10ms' },
        notifications: { trace_url: 'https://traces.example/trace/{trace_id}' },
      },
      { dataDir: join(dir, 'data') },
    );
    app = createTestApp({ service: 'console-shop', exporters: [otlpExporter('http', betrace.httpUrl)] });
    browser = await launchChromium();
    // A laptop screen: 1280 × 800.
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (m) => void (m.type() === 'error' && pageErrors.push(m.text())));
    page.on('pageerror', (e) => void pageErrors.push(e.message));
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (url.pathname.startsWith('/v1/')) authorization.push({ method: r.method(), path: url.pathname, header: r.headers().authorization });
    });
  });
  after(async () => {
    await browser?.close();
    await app?.shutdown();
    await betrace?.stop();
    await sink?.close();
    process.stdout.write(`# console screenshots: ${artifacts}\n`);
  });

  it('serves /ui as HTML with a strict CSP, no-cache, and its bundles immutable under their hash', async () => {
    const res = await fetch(`${betrace.apiUrl}/ui`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
    assert.match(CONSOLE_CSP, /default-src 'self'/);
    assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<style|style=/, 'no inline script or style');
    const script = /src="(\/ui\/assets\/app-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    const style = /href="(\/ui\/assets\/style-[A-Z0-9]+\.css)"/.exec(html)?.[1];
    assert.ok(script !== undefined && style !== undefined, html);
    for (const [path, type] of [
      [script, 'text/javascript; charset=utf-8'],
      [style, 'text/css; charset=utf-8'],
    ] as const) {
      const asset = await fetch(`${betrace.apiUrl}${path}`);
      assert.equal(asset.status, 200, path);
      assert.equal(asset.headers.get('content-type'), type);
      assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(asset.headers.get('x-content-type-options'), 'nosniff');
    }
    assert.equal((await fetch(`${betrace.apiUrl}/ui/assets/..%2Fpackage.json`)).status, 404);
  });

  it('is not served with api.console off', async () => {
    const off = await startTestPipeline({ api: { console: false } });
    try {
      const res = await fetch(`${off.apiUrl}/ui`);
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
    } finally {
      await off.stop();
    }
  });

  it('reads without a token, takes it once per session, sends it as the bearer header and never shows it', async () => {
    await open('rules', 'tr[data-rule="marker"]');
    assert.equal(await page.locator('tr[data-rule="no-refused-payments"] .state').textContent(), 'enabled');
    // Without a token a change is refused, and the console says why.
    await page.getByRole('button', { name: 'Disable marker' }).click();
    await page.waitForSelector('#rules-status:has-text("needs the API token")');
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.waitForSelector('text=API token set for this browser session.');
    await page.reload();
    await page.waitForSelector('text=API token set for this browser session.');
    assert.ok(!(await page.content()).includes(TOKEN), 'the page never shows the token');
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie), '');
    await page.getByRole('button', { name: 'Disable marker' }).click();
    await page.waitForSelector('#rules-status:has-text("marker disabled.")');
    await page.getByRole('button', { name: 'Enable marker' }).click();
    await page.waitForSelector('#rules-status:has-text("marker enabled.")');
    const posts = authorization.filter((a) => a.method === 'POST' && a.path.endsWith('/disable'));
    assert.deepEqual(posts.map((a) => a.header), [undefined, `Bearer ${TOKEN}`]);
    assert.ok(authorization.filter((a) => a.method === 'GET').slice(-1)[0]?.header === `Bearer ${TOKEN}`, 'reads carry it too');
  });

  it('lists rules with their violations of the last hour, and disabling one stops them', async () => {
    const first = await send('payment.refused');
    await waitUntil(async () => (await violations('rule_id=no-refused-payments')).some((v) => v.trace_id === first), 30_000, 'the first violation');
    await open('rules', 'tr[data-rule="no-refused-payments"] .count-hour:not(:has-text("…"))');
    assert.equal(await page.locator('tr[data-rule="no-refused-payments"] .count-hour').textContent(), '1');
    assert.equal(await page.locator('tr[data-rule="no-refused-payments"] .count-day').textContent(), '1');
    await checkPage('rules');

    await page.getByRole('button', { name: 'Disable no-refused-payments' }).click();
    await page.waitForSelector('tr[data-rule="no-refused-payments"] .state:text-is("disabled")');
    // A trace violating both rules: the marker's violation shows it was evaluated, the disabled rule yields none.
    const second = await send('payment.refused', 'marker.span');
    await waitUntil(async () => (await violations(`trace_id=${second}`)).length > 0, 30_000, "the marker's violation");
    await open('violations', '#violations');
    await page.getByLabel('Trace id').fill(second);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    // The filtered list: every row is the second trace's (the unfiltered one, shown first, holds the first trace's violation).
    const rows = page.locator('#violations tbody tr');
    await waitUntil(async () => (await rows.count()) > 0 && (await rows.filter({ hasText: second }).count()) === (await rows.count()), 10_000, 'the list filtered by the trace id');
    await page.waitForSelector(`#violations tbody tr[data-rule="marker"]`);
    assert.equal(await page.locator('#violations tbody tr[data-rule="no-refused-payments"]').count(), 0);
    assert.deepEqual((await violations(`trace_id=${second}`)).map((v) => v.rule_id), ['marker']);
  });

  it('offers "disable all" as one confirmed action, and cancelling it changes nothing', async () => {
    await open('rules', 'tr[data-rule="marker"]');
    await page.getByRole('button', { name: 'Disable all rules…' }).click();
    const dialog = page.getByRole('dialog', { name: /Disable all 1 enabled rules\?/ });
    await dialog.waitFor();
    await checkPage('rules-disable-all');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await page.locator('tr[data-rule="marker"] .state').textContent(), 'enabled');
    await page.getByRole('button', { name: 'Disable all rules…' }).click();
    await dialog.getByRole('button', { name: 'Disable 1 rules' }).click();
    await page.waitForSelector('#rules-status:has-text("Disabled 1 rules.")');
    await page.waitForSelector('tr[data-rule="marker"] .state:text-is("disabled")');
    const states = ((await api('/v1/rules')) as { rules: Array<{ state: string }> }).rules.map((r) => r.state);
    assert.deepEqual(states, ['disabled', 'disabled']);
    await page.getByRole('button', { name: 'Enable marker' }).click();
    await page.waitForSelector('tr[data-rule="marker"] .state:text-is("enabled")');
  });

  it('works from the keyboard: the skip link, the navigation, the confirmation dialog (Escape cancels)', async () => {
    await open('rules', 'tr[data-rule="marker"]');
    const focused = () => page.evaluate(() => {
      const el = (globalThis as unknown as { document: { activeElement: { id: string; textContent: string } | null } }).document.activeElement;
      return { id: el?.id ?? '', text: el?.textContent?.trim() ?? '' };
    });
    await page.keyboard.press('Tab');
    assert.equal((await focused()).text, 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal((await focused()).id, 'main');
    await page.getByRole('link', { name: 'Violations' }).focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('h1:text-is("Violations")');
    assert.equal(new URL(page.url()).hash, '#/violations');
    await open('rules', 'tr[data-rule="marker"]');
    await page.getByRole('button', { name: 'Disable all rules…' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    // The modal dialog takes the focus (its first button), and Escape closes it having changed nothing.
    assert.equal((await focused()).text, 'Disable 1 rules');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.locator('tr[data-rule="marker"] .state').textContent(), 'enabled');
  });

  it('shows a typo at its line and column as it is typed, the canonical reading once fixed, tries the rule on a pasted trace and on the last hour, and saves it', async () => {
    // A trace the draft will find in the last hour's history (no rule in force sees it now).
    const earlier = await send('db.timeout');
    await waitUntil(async () => (await metricValue(betrace.apiUrl, 'betrace_history_records')) >= 3, 30_000, 'three traces in the history');
    await open('rules', '#rule-condition');
    await page.getByLabel('Id').fill('no-db-timeouts');
    await page.getByLabel('Severity').selectOption('critical');
    await page.getByLabel('Condition').fill(TYPO);
    const diagnostic = page.locator('#rule-diagnostics .error');
    await diagnostic.waitFor();
    assert.match((await diagnostic.textContent()) ?? '', /^2:9 unknown function trace\.hsa \(did you mean trace\.has\?\)/);
    assert.equal(await page.getByLabel('Condition').getAttribute('aria-invalid'), 'true');
    assert.ok(await page.getByRole('button', { name: 'Create rule' }).isDisabled(), 'a rule that does not compile cannot be saved');
    await checkPage('rules-editor-error');

    await page.getByLabel('Condition').fill(FIXED);
    await page.waitForSelector('#rule-diagnostics .ok');
    assert.equal(await page.locator('#rule-canonical').textContent(), 'not trace.has(db.slow) and not trace.has(db.timeout)');
    assert.match((await page.locator('.reading').textContent()) ?? '', /runs on traces with db\.slow, db\.timeout; passes without them/);

    await page.getByText('Try it on a trace').click();
    await page.getByLabel(/OTLP JSON trace/).fill(PASTED);
    await page.getByRole('button', { name: 'Try on this trace' }).click();
    await page.waitForSelector('#try-result caption');
    assert.equal(await page.locator('#try-result caption').textContent(), '1 of 1 traces violate the rule (2 spans)');
    assert.equal(await page.locator('#try-result .verdict').textContent(), 'violates');
    assert.match((await page.locator('#try-result tbody').textContent()) ?? '', /db\.timeout \(pasted-shop, 2025-12-06T05:46:40\.100Z\)/);
    await checkPage('rules-editor-try');

    await page.getByText("Try it on the last hour's traces").click();
    await page.getByRole('button', { name: 'Try on the last hour' }).click();
    await page.waitForSelector('#recent-result caption');
    assert.match((await page.locator('#recent-result caption').textContent()) ?? '', /^1 of \d+ traces of the last hour violate the rule$/);
    assert.match((await page.locator('#recent-result tbody').textContent()) ?? '', new RegExp(earlier));
    assert.equal(await page.locator('#recent-result tbody tr').count(), 1);

    await page.getByRole('button', { name: 'Create rule' }).click();
    await page.waitForSelector('#save-status:has-text("Saved no-db-timeouts, version 1.")');
    await page.waitForSelector('tr[data-rule="no-db-timeouts"]');
    const saved = (await api('/v1/rules/no-db-timeouts')) as { severity: string; source: string; condition: string };
    assert.deepEqual([saved.severity, saved.source, saved.condition], ['critical', 'api', FIXED]);
  });

  it('shows the saved rule violated by SDK traffic on the violations page, with the trace link when the API gives one', async () => {
    const traceId = await send('db.timeout');
    await waitUntil(async () => (await violations('rule_id=no-db-timeouts')).some((v) => v.trace_id === traceId), 30_000, 'the new rule violated');
    await open('violations', '#violations');
    await page.getByLabel('Rule').selectOption('no-db-timeouts');
    await page.getByLabel('Severity').selectOption('critical');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const row = page.locator(`#violations tbody tr[data-rule="no-db-timeouts"]`);
    await row.waitFor();
    assert.equal(await row.count(), 1);
    assert.match((await row.textContent()) ?? '', new RegExp(traceId));
    // notifications.trace_url fills each violation's trace_url: the console links the trace there.
    const link = row.getByRole('link', { name: new RegExp(`Open trace ${traceId}`) });
    assert.equal(await link.getAttribute('href'), `https://traces.example/trace/${traceId}`);
    await row.locator('summary').click();
    assert.match((await row.locator('ul.ids').textContent()) ?? '', /^[0-9a-f]{16}$/);
    assert.equal(await row.locator('.witness-names').textContent(), 'Spans: db.timeout');
    assert.equal(await row.locator('.services').textContent(), 'Services: console-shop');
    await checkPage('violations');
    // By service: the app's keeps the row, another finds none.
    await page.getByLabel('Service').fill('console-shop');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await waitUntil(async () => (await page.locator('#violations caption').textContent())?.includes('(1 shown)') === true, 10_000, 'the service filter applied');
    await page.getByLabel('Service').fill('elsewhere');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForSelector('#violations td:has-text("No violation matches.")');
    await page.getByLabel('Service').fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await row.waitFor();

    // An API without a trace link template gives no trace_url: no link is made up.
    await page.route('**/v1/violations?*', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { violations: Array<Record<string, unknown>> };
      for (const v of body.violations) delete v.trace_url;
      await route.fulfill({ response, json: body });
    });
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForSelector(`#violations a[href$="${traceId}"]`, { state: 'detached' });
    assert.equal(await row.getByRole('link').count(), 0);
    await page.unroute('**/v1/violations?*');
  });

  it('starts a replay, follows it, and shows its per-day report as a chart and a table, downloadable as JSON', async () => {
    await open('replay', 'input#r-no-refused-payments');
    await page.getByLabel('no-refused-payments').check();
    await page.getByLabel('marker').check();
    await page.getByLabel('From').fill('1h');
    await page.getByLabel('Source').selectOption('history');
    await page.getByRole('button', { name: 'Start replay' }).click();
    await page.waitForSelector('#replay-report', { timeout: 60_000 });
    assert.match((await page.locator('#replay-status').textContent()) ?? '', /^done/);
    // Two traces with payment.refused (one while the rule was disabled: a replay runs it all the same), one marker.
    const day = page.locator('#replay-days tbody tr');
    assert.equal(await day.count(), 1);
    assert.match((await day.textContent()) ?? '', /no-refused-payments: 2.*marker: 1|marker: 1.*no-refused-payments: 2/);
    assert.equal(await page.locator('svg.chart rect.bar').count(), 1);
    assert.equal(await page.locator('svg.chart text.chart-value').textContent(), '3');
    await checkPage('replay');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the report (JSON)' }).click()]);
    const report = JSON.parse(readFileSync(await download.path(), 'utf8')) as { total: number; per_rule: Record<string, number> };
    assert.equal(report.total, 3);
    assert.deepEqual(report.per_rule, { 'no-refused-payments': 2, marker: 1 });
  });

  it('shows spans in and out, live traces, drops and refusals, and readiness', async () => {
    await open('health', '#spans-in');
    assert.equal(await page.locator('#ready-status').textContent(), 'ready');
    // Spans accepted so far: 2 + 3 + 2 + 2 from the SDK (each trace's root and children).
    assert.match((await page.locator('#spans-in').textContent()) ?? '', /\(9 in all\)/);
    // The second read gives rates.
    await page.waitForSelector('#spans-in:has-text("/s")');
    assert.match((await page.locator('#spans-in dd').textContent()) ?? '', /^\d+\.\d\/s/);
    assert.match((await page.locator('#drops').textContent()) ?? '', /None/);
    await checkPage('health');
  });

  it('refused nothing under its Content-Security-Policy and logged no error', () => {
    // The unauthenticated disable of the token test is the one failed call the page saw (401).
    assert.deepEqual(
      pageErrors.filter((e) => !/status of 401/.test(e)),
      [],
    );
  });
});
