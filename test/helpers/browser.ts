/**
 * A real headless Chromium for the console's tests: Debian's `chromium` package driven by
 * playwright-core (whose own browser download cannot reach the internet here). The browser
 * is the one named by BETRACE_CHROMIUM, else the first of chromium, chromium-browser,
 * google-chrome on PATH; when there is none and this runs as root with apt-get, it installs
 * Debian's `chromium` (apt-get update && apt-get install -y chromium). When it still cannot,
 * it throws saying so and how to provide one: a console test never passes without a browser.
 * axe-core (from node_modules) is run in the page for the WCAG 2.1 AA checks.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function onPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of NAMES) if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The Chromium executable, installed from Debian's package when missing and possible. */
export function findChromium(): string {
  const named = process.env.BETRACE_CHROMIUM;
  if (named !== undefined && named !== '') {
    if (!existsSync(named)) throw new Error(`BETRACE_CHROMIUM=${named}: no such file`);
    return named;
  }
  const found = onPath();
  if (found !== undefined) return found;
  const why: string[] = [];
  if (process.getuid?.() === 0 && onAptPath()) {
    try {
      execFileSync('apt-get', ['update'], { stdio: 'ignore' });
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      const installed = onPath();
      if (installed !== undefined) return installed;
      why.push('apt-get install chromium ran but no chromium is on PATH');
    } catch (err) {
      why.push(`apt-get install chromium failed: ${(err as Error).message.split('\n')[0]}`);
    }
  } else {
    why.push('not root with apt-get, so it was not installed');
  }
  throw new Error(
    `the console tests need Chromium and found none (${NAMES.join(', ')} on PATH, or BETRACE_CHROMIUM): ${why.join('; ')}. Install Debian's package (apt-get install chromium) or set BETRACE_CHROMIUM to a Chromium executable.`,
  );
}

function onAptPath(): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, 'apt-get')));
}

export async function launchChromium(): Promise<Browser> {
  // --no-sandbox: the tests may run as root (containers), where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: findChromium(), headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: ReadonlyArray<{ readonly target: readonly string[] }>;
}

/**
 * axe-core's WCAG 2.0/2.1 A and AA rules on the page as it is. Evaluated through the
 * DevTools protocol, which the page's Content-Security-Policy does not restrict (a script
 * tag would be refused by it, as it should be).
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
  });
}
