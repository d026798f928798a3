/**
 * The package as `npm pack` lays it out (prepack builds dist/): installed into an
 * empty project, `npx betrace` runs the built command line from dist/ (the package
 * holds no src/ or test/). Packed from a copy of the repository's sources, so the
 * build's dist/ never lands in the working tree (where the launcher ignores it anyway).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runProgram } from '../helpers/cli.ts';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const env = { ...process.env, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` };

function run(file: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runProgram(file, args, { cwd, env });
}

describe('the packed package', () => {
  let dir = '';
  let project = '';
  let files: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'betrace-pack-'));
    const source = join(dir, 'source');
    for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'bin', 'config', 'src', 'deploy/tsconfig.build.json', 'deploy/copy-assets.mjs', 'deploy/build-console.mjs']) {
      mkdirSync(dirname(join(source, path)), { recursive: true });
      // Generated files stay behind (the grammar, the console's build): prepack must make them.
      cpSync(join(root, path), join(source, path), { recursive: true, filter: (f) => !f.endsWith('.generated.js') && !f.includes('/src/console/assets') });
    }
    symlinkSync(join(root, 'node_modules'), join(source, 'node_modules'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], source);
    assert.equal(packed.code, 0, packed.stderr);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = info!.files.map((f) => f.path);
    project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-betrace', version: '1.0.0', private: true }));
    const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, info!.filename)], project);
    assert.equal(installed.code, 0, installed.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds the launcher, dist/ with the generated grammar and the config, no sources or tests', () => {
    for (const f of ['bin/betrace.js', 'bin/package.json', 'dist/cli/main.js', 'dist/rules/grammar.generated.js', 'dist/otlp/proto/trace.proto', 'config/rules/seed-invariants.yaml']) {
      assert.ok(files.includes(f), `${f} in the package`);
    }
    assert.deepEqual(files.filter((f) => /^(src|test)\//.test(f) || f.endsWith('.ts')), []);
    assert.equal(readlinkSync(join(project, 'node_modules', '.bin', 'betrace')), '../betrace/bin/betrace.js');
  });

  it('holds the built web console in dist/console/assets, where the console routes read it', async () => {
    assert.ok(files.includes('dist/console/assets/index.html'));
    const bundles = files.filter((f) => /^dist\/console\/assets\/(app-[A-Z0-9]+\.js|style-[A-Z0-9]+\.css)$/.test(f));
    assert.equal(bundles.length, 2, files.filter((f) => f.startsWith('dist/console')).join(', '));
    assert.deepEqual(files.filter((f) => f.startsWith('dist/console/web')), [], 'the sources are bundled, not shipped');
    const routes = join(project, 'node_modules', 'betrace', 'dist', 'console', 'routes.js');
    const { CONSOLE_ASSETS } = (await import(routes)) as { CONSOLE_ASSETS: string };
    const html = readFileSync(join(CONSOLE_ASSETS, 'index.html'), 'utf8');
    for (const bundle of bundles) assert.ok(html.includes(`/ui/assets/${bundle.slice('dist/console/assets/'.length)}`), `index.html names ${bundle}`);
  });

  it('npx betrace --help, rules check and config check work there', async () => {
    const help = await run('npx', ['betrace', '--help'], project);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: betrace \[options\] \[command\]/);
    const check = await run('npx', ['betrace', 'rules', 'check', 'node_modules/betrace/config/rules/seed-invariants.yaml'], project);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /^4 rules in 1 file: 0 errors/m);
    const config = await run('npx', ['betrace', 'config', 'check', 'node_modules/betrace/config/betrace.yaml'], project);
    assert.equal(config.code, 0, config.stderr);
    assert.equal(config.stdout, 'node_modules/betrace/config/betrace.yaml: ok\n');
  });
});
