/**
 * Replay from files written by several writers: two Collectors, each holding some of
 * every trace's spans, their files named so that one writer's all sort before the
 * other's. The report must be the one the same spans give from one file in time order.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { rename } from 'node:fs/promises';
import { replayCommand } from '../../src/cli/replay.ts';
import type { ReplayReport } from '../../src/replay/index.ts';
import { BASE_MS, DAY_MS, noiseTrace, recordsOf, shopTrace, writeHistoryFiles, type Breaks, type SimTrace } from './history.ts';

const RULES = resolve('config/rules/seed-invariants.yaml');
const notTTY = { isTTY: false, write: () => true };
const BREAKS: Breaks[] = ['payment-idempotency', 'admin-audit-log', 'shipment-requires-payment', 'cross-tenant-isolation'];

async function replay(source: string[]): Promise<ReplayReport> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const range = { from: new Date(BASE_MS - DAY_MS).toISOString(), to: new Date(BASE_MS).toISOString() };
  const status = await replayCommand({ rules: RULES, ...range, source, format: 'json', env: {} }, { stdout: (s) => stdout.push(s), stderr: (s) => stderr.push(s) }, notTTY);
  assert.equal(status, 0, stderr.join('\n'));
  return JSON.parse(stdout.join('\n')) as ReplayReport;
}

const found = (r: ReplayReport): string[] => r.violations.map((v) => `${v.rule_id} ${v.trace_id}`).sort();

describe('replay from files of several writers', () => {
  let dir = '';
  const traces: SimTrace[] = [];
  // Six hours of checkouts, one every 20 s; every 25th breaks a rule; admin traces among them.
  for (let i = 0; i < 1080; i++) {
    const start = BASE_MS - DAY_MS / 2 + i * 20_000;
    traces.push(shopTrace(`order-${i}`, start, i % 25 === 7 ? BREAKS[(i / 25) % BREAKS.length | 0] : undefined, { admin: i % 9 === 0 }));
    if (i % 10 === 0) traces.push(noiseTrace(`noise-${i}`, start + 5_000));
  }
  const injected = traces.filter((t) => t.breaks !== undefined).length;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'betrace-file-order-'));
    const records = recordsOf(traces);
    // Collector a took every other service export, collector b the rest: each trace's spans are in both.
    for (const [name, share] of [
      ['a', records.filter((_r, i) => i % 2 === 0)],
      ['b', records.filter((_r, i) => i % 2 === 1)],
      ['one', records],
    ] as const) {
      const sub = join(dir, name);
      await mkdir(sub);
      const files = await writeHistoryFiles(sub, share, name === 'one' ? share.length : 400);
      for (const f of files) await rename(f, join(dir, `${name}-${f.slice(sub.length + 1)}`));
    }
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('gives the report of the same spans in one time-ordered file, whatever the file names', async () => {
    const one = await replay([join(dir, 'one-*.pb')]);
    assert.equal(one.total, injected, 'the known violations from one file');
    const both = await replay([join(dir, 'a-*.pb'), join(dir, 'b-*.pb')]);
    assert.deepEqual(found(both), found(one));
    assert.equal(both.total, injected);
    const reversed = await replay([join(dir, 'b-*.pb'), join(dir, 'a-*.pb')]);
    assert.deepEqual(found(reversed), found(one));
  });
});
