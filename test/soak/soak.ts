/**
 * Soak (not part of the test suite): runs betrace (embedded, the benchmark's
 * 100 rules, forwarding to a counting sink) for SOAK_MINUTES (default 30) at
 * SOAK_RATE spans/s (default 5000), then reports sent == received and RSS over
 * time. Usage: node test/soak/soak.ts   (bounded in time and count; loopback only)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { TRACE_SERVICE_DEFINITION } from '../../src/otlp/index.ts';
import { scanRequest } from '../helpers/otlp-oracle.ts';
import { rssBytes } from '../bench/pipeline-bench.ts';
import { buildWorkload } from '../bench/workload.ts';

const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const rate = Number(process.env.SOAK_RATE ?? 5000);
const root = join(import.meta.dirname, '..', '..');

let received = 0;
const sink = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
sink.addService(TRACE_SERVICE_DEFINITION, {
  Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    if (!call.request.includes('betrace.violation')) received += scanRequest(call.request).spanCount;
    cb(null, Buffer.alloc(0));
  },
});
const sinkPort = await new Promise<number>((res, rej) => sink.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));

const dir = mkdtempSync(join(tmpdir(), 'betrace-soak-'));
writeFileSync(
  join(dir, 'betrace.yaml'),
  stringify({
    receiver: { grpc: { endpoint: '127.0.0.1:0' }, http: { enabled: false } },
    api: { endpoint: '127.0.0.1:0' },
    downstream: { endpoint: `http://127.0.0.1:${sinkPort}` },
    rules: { paths: [join(root, 'test', 'bench', 'fixtures', 'rules-100.yaml')] },
    data_dir: join(dir, 'data'),
  }),
);
const child = spawn(process.execPath, [join(root, 'src', 'cli', 'main.ts'), 'run', '--config', join(dir, 'betrace.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d: Buffer) => (out += d.toString()));
while (!/OTLP\/gRPC receiver listening/.test(out)) await new Promise((r) => setTimeout(r, 100));
const address = /"address":"([^"]+)","msg":"OTLP\/gRPC receiver listening"/.exec(out)![1]!;
const Client = grpc.makeGenericClientConstructor(TRACE_SERVICE_DEFINITION, 'TraceService');
const client = new Client(address, grpc.credentials.createInsecure()) as unknown as { Export: (b: Buffer, cb: (e: grpc.ServiceError | null) => void) => void; close(): void };

let sent = 0;
let seed = 1;
const samples: Array<{ minute: number; rssMb: number; sent: number; received: number }> = [];
const end = Date.now() + minutes * 60_000;
const started = Date.now();
let nextSample = started;
while (Date.now() < end) {
  const w = buildWorkload(50, { seed: seed++ });
  for (const req of w.requests) {
    const spans = scanRequest(req).spanCount;
    for (;;) {
      const err = await new Promise<grpc.ServiceError | null>((r) => client.Export(req, r));
      if (err === null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    sent += spans;
    const due = started + (sent / rate) * 1000;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
  if (Date.now() >= nextSample) {
    samples.push({ minute: Math.round((Date.now() - started) / 6000) / 10, rssMb: Math.round(rssBytes(child.pid!) / 1e6), sent, received });
    process.stderr.write(`${JSON.stringify(samples[samples.length - 1])}\n`);
    nextSample += 60_000;
  }
}
const drainEnd = Date.now() + 60_000;
while (received < sent && Date.now() < drainEnd) await new Promise((r) => setTimeout(r, 200));
client.close();
child.kill('SIGTERM');
sink.forceShutdown();
process.stdout.write(`${JSON.stringify({ minutes, rate, sent, received, equal: sent === received, rssMbOverTime: samples.map((s) => s.rssMb) })}\n`);
process.exitCode = sent === received ? 0 : 1;
