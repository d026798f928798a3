/**
 * Top functions by self time in V8 CPU profiles (.cpuprofile, as written by
 * `node --cpu-prof`, e.g. with BENCH_PROFILE_DIR set for the pipeline bench).
 *   node test/bench/profile-top.ts <file.cpuprofile>... [--top N]
 * Prints, per file, the share of sampled time (and of busy time, without idle)
 * for the N hottest functions.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const args = process.argv.slice(2);
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 25;

for (const file of args) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const key = `${functionName || '(anonymous)'} ${url ? `${basename(url)}:${lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  process.stdout.write(`${basename(file)}: ${total} samples, ${((busy / total) * 100).toFixed(1)}% busy\n`);
  for (const [key, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    if (key === '(idle)') continue;
    process.stdout.write(`  ${((n / busy) * 100).toFixed(1).padStart(5)}%  ${key}\n`);
  }
}
