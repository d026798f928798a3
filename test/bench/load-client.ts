/**
 * The load generator (its own process, pinned to its own core): replays
 * pre-encoded OTLP requests over gRPC with a fixed number in flight, either as
 * fast as betrace takes them or at a fixed span rate, and reports what was
 * acknowledged. Usage: node load-client.ts FILE URL CONCURRENCY [SPANS_PER_SECOND]
 * Prints one JSON line: { sentRequests, ackedSpans, refused, seconds, sendTimes? }.
 */
import { readFileSync } from 'node:fs';
import { scanRequest } from '../helpers/otlp-oracle.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { unpackRequests } from './workload.ts';

const [file, url, concurrencyText, rateText] = process.argv.slice(2);
const requests = unpackRequests(readFileSync(file!));
const spanCounts = requests.map((r) => scanRequest(r).spanCount);
const concurrency = Number(concurrencyText ?? 8);
const rate = rateText === undefined ? 0 : Number(rateText);
const spansBefore: number[] = [];
spanCounts.reduce((sum, n, i) => ((spansBefore[i] = sum), sum + n), 0);

const client = rawTraceClient(url!);

let next = 0;
let ackedSpans = 0;
let refused = 0;
const sendTimes: number[] = new Array<number>(requests.length).fill(0);
const started = performance.now();

async function sendOne(i: number): Promise<void> {
  for (;;) {
    const { err } = await client.export(requests[i]!);
    if (err === null) {
      ackedSpans += spanCounts[i]!;
      return;
    }
    refused++;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function worker(): Promise<void> {
  while (next < requests.length) {
    const i = next++;
    if (rate > 0) {
      // Pace: the spans before request i are due at (spans so far) / rate.
      const at = (spansBefore[i]! / rate) * 1000;
      const wait = at - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    sendTimes[i] = Date.now();
    await sendOne(i);
  }
}

await Promise.all(Array.from({ length: concurrency }, () => worker()));
const seconds = (performance.now() - started) / 1000;
client.close();
process.stdout.write(`${JSON.stringify({ sentRequests: requests.length, ackedSpans, refused, seconds, sendTimes: rate > 0 ? sendTimes : undefined })}\n`);
