/**
 * The web console at /ui on the admin port (api.console): a page that calls this
 * API from the browser. Its files are built by deploy/build-console.mjs (a
 * `prepare` step, run by npm ci) from src/console/web into src/console/assets,
 * copied to dist/console/assets by the package build; they are read once, when
 * mounted, and served from memory:
 *
 * - GET /ui: index.html, `Cache-Control: no-cache` (it names the current assets);
 * - GET /ui/assets/{file}: the bundles, named by a hash of their content, so
 *   `Cache-Control: public, max-age=31536000, immutable`; only names the build wrote.
 *
 * Every answer carries a strict Content-Security-Policy (scripts, styles and calls
 * from this origin only: no inline script or style, no framing), nosniff and no
 * referrer. Without a build (src/ run before `npm run console`) /ui answers 503 and says so.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorResponse, type ApiResponse, type ApiServer } from '../api/server.ts';

/** Where the built console is, beside this module (src/console/assets, or dist/console/assets in the package). */
export const CONSOLE_ASSETS = fileURLToPath(new URL('./assets/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

const SECURITY_HEADERS = {
  'Content-Security-Policy': CONSOLE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

const NOT_BUILT: ApiResponse = {
  status: 503,
  body: { error: { code: 'UNAVAILABLE', message: 'the console is not built: run npm run console (npm ci runs it)' } },
};

/** Mounts /ui and /ui/assets/{file} on `api`, serving the build in `dir`. */
export function mountConsole(api: ApiServer, dir: string = CONSOLE_ASSETS): void {
  const index = existsSync(join(dir, 'index.html')) ? readFileSync(join(dir, 'index.html')) : undefined;
  const assets = new Map<string, { bytes: Buffer; type: string }>();
  if (existsSync(dir)) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      if (name === 'index.html' || type === undefined) continue;
      assets.set(name, { bytes: readFileSync(join(dir, name)), type });
    }
  }
  const notFound: ApiResponse = { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no such console file' } }, headers: SECURITY_HEADERS };
  api.addRoute({
    method: 'GET',
    path: '/ui',
    schema: {
      summary: 'The web console (HTML; api.console): rules, violations, replay and health in a browser',
      response: {
        200: { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } },
        503: errorResponse('The console is not built (UNAVAILABLE)'),
      },
    },
    handler: () =>
      index === undefined ? NOT_BUILT : { status: 200, bytes: index, headers: { 'Content-Type': TYPES['.html']!, 'Cache-Control': 'no-cache', ...SECURITY_HEADERS } },
  });
  api.addRoute({
    method: 'GET',
    path: '/ui/assets/{file}',
    schema: {
      summary: "One of the console's files, named by a hash of its content (cached for a year, immutable)",
      params: { type: 'object', properties: { file: { type: 'string', description: 'A file name the console build wrote' } }, required: ['file'] },
      response: {
        200: { description: 'The file (JavaScript, CSS or an image)', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
        404: errorResponse('No such file (NOT_FOUND)'),
      },
    },
    handler: (req) => {
      const asset = assets.get(req.params.file!);
      if (asset === undefined) return notFound;
      return { status: 200, bytes: asset.bytes, headers: { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=31536000, immutable', ...SECURITY_HEADERS } };
    },
  });
}
