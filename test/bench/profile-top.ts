/**
 * Top functions by self time in V8 CPU profiles (.cpuprofile, as written by
 * `node --cpu-prof`, e.g. with BENCH_PROFILE_DIR set for the pipeline bench).
 *   node test/bench/profile-top.ts <file.cpuprofile>... [--top N] [--all]
 * Prints, per file, the share of busy (non-idle) samples for the N hottest
 * functions. Samples taken while loading modules (start-up, under
 * node:internal/modules) are left out unless --all is given: a bench measures
 * the running process, not its start.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const args = process.argv.slice(2);
const topIndex = args.indexOf('--top');
const top = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 25;
const allIndex = args.indexOf('--all');
const all = allIndex >= 0;
if (all) args.splice(allIndex, 1);

for (const file of args) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const loading = new Map<number, boolean>();
  const isLoading = (id: number): boolean => {
    const known = loading.get(id);
    if (known !== undefined) return known;
    const up = parent.get(id);
    const v = byId.get(id)!.callFrame.url.startsWith('node:internal/modules/') || (up !== undefined && isLoading(up));
    loading.set(id, v);
    return v;
  };
  const self = new Map<string, number>();
  let idle = 0;
  let startup = 0;
  for (const id of profile.samples) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') {
      idle++;
      continue;
    }
    if (!all && isLoading(id)) {
      startup++;
      continue;
    }
    const key = `${functionName || '(anonymous)'} ${url ? `${basename(url)}:${lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const busy = profile.samples.length - idle - startup;
  process.stdout.write(`${basename(file)}: ${busy} busy samples${all ? '' : ` (${startup} loading modules left out)`}\n`);
  for (const [key, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`  ${((n / busy) * 100).toFixed(1).padStart(5)}%  ${key}\n`);
  }
}
