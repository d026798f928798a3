// Builds the web console (src/console/web → src/console/assets): esbuild bundles
// main.js (Preact + htm, from node_modules) and console.css into files named by a
// hash of their content, and index.html is written naming them. Run by `prepare`
// (npm ci), `prestart` and `build`; offline: everything comes from node_modules.
// The output is generated, not committed (.gitignore); the package build copies it
// to dist/console/assets (copy-assets.mjs).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'src', 'console', 'web');
const out = join(root, 'src', 'console', 'assets');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: { app: join(web, 'main.js'), style: join(web, 'console.css') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  entryNames: '[name]-[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((n) => n.startsWith('app-') && n.endsWith('.js'));
const style = outputs.find((n) => n.startsWith('style-') && n.endsWith('.css'));
if (script === undefined || style === undefined) throw new Error(`console build: no app bundle or stylesheet in ${outputs.join(', ')}`);
const html = readFileSync(join(web, 'index.html'), 'utf8').replace('{{script}}', `/ui/assets/${script}`).replace('{{style}}', `/ui/assets/${style}`);
writeFileSync(join(out, 'index.html'), html);
