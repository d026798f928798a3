/**
 * deploy/Dockerfile, checked statically (no Docker engine in the test environment): its
 * entry point is what `npm run build` produces from src/cli/main.ts, it exposes the code's
 * default ports, runs as a non-root user, checks /health without curl, installs only
 * production dependencies in the final image, and its ignore file keeps what it copies.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config/index.ts';
import { repoRoot } from './helm.ts';

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined, stages numbered. */
function parseDockerfile(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const out: Instruction[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*\S)\s*$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ op, args: m[2]!, stage });
  }
  return out;
}

/** A dockerignore pattern as a regular expression over slash-separated context paths. */
function ignoreRegex(pattern: string): RegExp {
  const clean = posix.normalize(pattern.replace(/^\//, '')).replace(/\/$/, '');
  let re = '';
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i]!;
    if (c === '*' && clean[i + 1] === '*') {
      re += '.*';
      i++;
      if (clean[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern matching a directory excludes everything under it.
  return new RegExp(`^${re}(/.*)?$`);
}

/** Whether the context path is sent to the builder, per the ignore file (last match wins). */
function included(path: string, ignoreText: string): boolean {
  let keep = true;
  for (const raw of ignoreText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    if (ignoreRegex(negated ? line.slice(1) : line).test(path)) keep = negated;
  }
  return keep;
}

const dockerfile = readFileSync(join(repoRoot, 'deploy', 'Dockerfile'), 'utf8');
const instructions = parseDockerfile(dockerfile);
const finalStage = Math.max(...instructions.map((i) => i.stage));
const final = instructions.filter((i) => i.stage === finalStage);
const json = (args: string): string[] => JSON.parse(args) as string[];
const defaults = parseConfig('{}', { env: {} });

describe('deploy/Dockerfile', () => {
  it('builds on Node 24 slim in stages: npm ci + npm run build, then production dependencies only', () => {
    const froms = instructions.filter((i) => i.op === 'FROM');
    assert.ok(froms.length >= 2, 'multi-stage');
    const nodeImage = /ARG NODE_IMAGE=(\S+)/.exec(dockerfile)?.[1] ?? '';
    for (const f of froms) assert.match(f.args.replace('${NODE_IMAGE}', nodeImage), /^node:24(\.\d+)*-(bookworm-)?slim\b/, `FROM ${f.args}`);
    const runs = instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    assert.ok(runs.some((r) => /\bnpm ci\b(?!.*--omit=dev)/.test(r)), 'build stage: npm ci with dev dependencies');
    assert.ok(runs.some((r) => /\bnpm run build\b/.test(r)), 'build stage: npm run build');
    assert.ok(runs.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), 'npm ci --omit=dev for the final image');
    const copies = final.filter((i) => i.op === 'COPY').map((i) => i.args);
    const modules = copies.find((c) => /node_modules/.test(c));
    assert.ok(modules, 'final stage copies node_modules');
    const from = /--from=(\S+)/.exec(modules)?.[1];
    const fromStage = froms.findIndex((f) => new RegExp(`\\bAS\\s+${from}$`, 'i').test(f.args));
    assert.ok(
      instructions.some((i) => i.stage === fromStage && i.op === 'RUN' && /--omit=dev/.test(i.args)),
      'the node_modules of the final image come from the --omit=dev stage',
    );
    assert.ok(!final.some((i) => i.op === 'RUN' && /npm (ci|install)\b(?!.*--omit=dev)/.test(i.args)), 'no dev dependencies in the final stage');
  });

  it('starts dist/cli/main.js, which npm run build compiles from src/cli/main.ts, with the default config path', () => {
    const entrypoint = json(final.find((i) => i.op === 'ENTRYPOINT')!.args);
    assert.equal(entrypoint[0], 'node');
    const entry = entrypoint[1]!;
    const workdir = final.filter((i) => i.op === 'WORKDIR').at(-1)!.args;
    // The final stage copies the build stage's dist/ into the work directory.
    const distCopy = final.find((i) => i.op === 'COPY' && /--from=\S+\s+\S*dist\s+\S*dist\/?$/.test(i.args));
    assert.ok(distCopy, 'COPY --from=build …/dist …/dist');
    const target = distCopy.args.split(/\s+/).at(-1)!;
    const distDir = posix.resolve(workdir, target);
    assert.ok(entry.startsWith(`${distDir}/`), `${entry} is under ${distDir}`);
    const inDist = posix.relative(distDir, entry);
    // package.json's build compiles with deploy/tsconfig.build.json: rootDir → outDir.
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string>; type: string };
    assert.match(pkg.scripts.build!, /tsc -p deploy\/tsconfig\.build\.json/);
    const tsconfig = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { rootDir: string; outDir: string } };
    const rootDir = resolve(repoRoot, 'deploy', tsconfig.compilerOptions.rootDir);
    const outDir = resolve(repoRoot, 'deploy', tsconfig.compilerOptions.outDir);
    assert.equal(relative(repoRoot, outDir), 'dist', 'the build writes dist/ (what the Dockerfile copies)');
    const source = join(rootDir, inDist.replace(/\.js$/, '.ts'));
    assert.ok(existsSync(source), `${relative(repoRoot, source)} exists (compiled to dist/${inDist})`);
    assert.equal(relative(repoRoot, source), join('src', 'cli', 'main.ts'));
    // ESM output: the image needs package.json ("type": "module") next to dist/.
    assert.equal(pkg.type, 'module');
    assert.ok(final.some((i) => i.op === 'COPY' && /^package\.json\s/.test(i.args)), 'package.json copied into the image');

    const cmd = json(final.find((i) => i.op === 'CMD')!.args);
    assert.deepEqual(cmd, ['run', '--config', '/etc/betrace/betrace.yaml']);
    const configCopy = final.find((i) => i.op === 'COPY' && /\/etc\/betrace\/betrace\.yaml$/.test(i.args));
    assert.ok(configCopy, 'the default config is copied to /etc/betrace/betrace.yaml');
    const configSource = join(repoRoot, configCopy.args.split(/\s+/)[0]!);
    const yaml = readFileSync(configSource, 'utf8');
    const config = parseConfig(yaml, { baseDir: '/etc/betrace', env: { BETRACE_API_TOKEN: 'stand-in' } });
    assert.equal(config.receiver.grpc.host, '0.0.0.0', 'a container is reached through published ports');
    assert.equal(config.api.host, '0.0.0.0');
    assert.throws(() => parseConfig(yaml, { baseDir: '/etc/betrace', env: {} }), /no API token is set.*BETRACE_API_TOKEN/, 'the image refuses to start without a token');
    assert.match(dockerfile, /-e BETRACE_API_TOKEN=/, 'the run example passes the token');
  });

  it("exposes the code's default ports", () => {
    const exposed = final
      .filter((i) => i.op === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map((p) => Number(p.replace(/\/tcp$/, '')))
      .sort((a, b) => a - b);
    assert.deepEqual(exposed, [defaults.receiver.grpc.port, defaults.receiver.http.port, defaults.api.port].sort((a, b) => a - b));
  });

  it('runs as the non-root user 10001', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1);
    assert.ok(user, 'USER in the final stage');
    const [uid, gid] = user.args.split(':');
    assert.equal(uid, '10001');
    assert.ok(gid === undefined || Number(gid) > 0);
  });

  it('checks /health with node fetch (no curl in slim images)', () => {
    const hc = final.find((i) => i.op === 'HEALTHCHECK');
    assert.ok(hc, 'HEALTHCHECK');
    const cmd = /CMD\s+(\[.*\])$/.exec(hc.args)?.[1];
    assert.ok(cmd, 'exec form');
    const argv = json(cmd);
    assert.equal(argv[0], 'node');
    assert.match(argv.join(' '), /fetch\(/);
    assert.match(argv.join(' '), /\/health/);
    assert.match(argv.join(' '), new RegExp(String(defaults.api.port)));
    assert.doesNotMatch(hc.args, /\b(curl|wget)\b/);
  });

  it('sends the build what it copies and leaves out node_modules, dist and local state', () => {
    const ignore = readFileSync(join(repoRoot, 'deploy', 'Dockerfile.dockerignore'), 'utf8');
    const sources = instructions
      .filter((i) => i.op === 'COPY' && !/--from=/.test(i.args))
      .flatMap((i) => {
        const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        return parts.slice(0, -1);
      });
    assert.ok(sources.length >= 5);
    for (const source of sources) {
      const path = source.replace(/\/$/, '');
      assert.ok(existsSync(join(repoRoot, path)), `${path} exists in the repository`);
      assert.ok(included(path, ignore), `${path} is sent to the builder`);
    }
    for (const path of ['src/cli/main.ts', 'src/rules/grammar.ne', 'config/rules/seed-invariants.yaml', 'deploy/docker/betrace.yaml']) {
      assert.ok(included(path, ignore), `${path} is sent`);
    }
    for (const path of ['node_modules', 'node_modules/yaml/package.json', 'src/rules/grammar.generated.js', 'dist/cli/main.js', 'data/violations.jsonl', '.git/HEAD', 'test/deploy/helm.ts', 'deploy/helm/betrace/Chart.yaml']) {
      assert.ok(!included(path, ignore), `${path} is not sent`);
    }
  });

  it("builds: the build stage's COPY set and RUN npm run build produce the ENTRYPOINT file", async () => {
    // The build stage replayed outside Docker: its COPY sources (through the ignore file)
    // into a scratch /app, the repository's node_modules standing in for `npm ci`.
    const ignore = readFileSync(join(repoRoot, 'deploy', 'Dockerfile.dockerignore'), 'utf8');
    const build = instructions.filter((i) => i.stage === 0);
    const app = mkdtempSync(join(tmpdir(), 'betrace-image-'));
    try {
      const workdir = build.find((i) => i.op === 'WORKDIR')!.args;
      for (const copy of build.filter((i) => i.op === 'COPY')) {
        const parts = copy.args.split(/\s+/);
        const dest = parts.at(-1)!;
        const destAbs = join(app, posix.relative(workdir, posix.resolve(workdir, dest)));
        for (const source of parts.slice(0, -1)) {
          const from = join(repoRoot, source);
          const to = dest.endsWith('/') && !source.endsWith('/') ? join(destAbs, posix.basename(source)) : destAbs;
          mkdirSync(dirname(to), { recursive: true });
          cpSync(from, to, { recursive: true, filter: (f) => f === from || included(relative(repoRoot, f), ignore) });
        }
      }
      symlinkSync(join(repoRoot, 'node_modules'), join(app, 'node_modules'));
      // The working tree's console build is not sent: the image builds its own.
      assert.ok(!existsSync(join(app, 'src', 'console', 'assets')), 'src/console/assets is left out of the context');
      assert.ok(build.some((i) => i.op === 'RUN' && i.args === 'npm run build'));
      const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
      await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: app, env, maxBuffer: 16 * 1024 * 1024 });
      const entry = json(final.find((i) => i.op === 'ENTRYPOINT')!.args)[1]!;
      const built = join(app, posix.relative('/app', entry));
      assert.ok(existsSync(built), `${entry} exists after npm run build`);
      // The web console, built by npm run build from src/console/web (npm ci --ignore-scripts skipped prepare).
      assert.ok(existsSync(join(app, 'dist', 'console', 'assets', 'index.html')), 'dist/console/assets/index.html exists after npm run build');
      const { stdout } = await promisify(execFile)(process.execPath, [built, '--version'], { cwd: app, env });
      assert.match(stdout, /\d+\.\d+\.\d+/);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
