/**
 * An evaluation thread that gets stuck the way a rule can, for the watchdog's tests
 * (EvaluatorPool's `threadModule`): the real thread (src/worker/evaluator-thread.ts),
 * except that on a trace holding a span named STALL_SPAN, while the rule STALL_RULE is
 * enabled, it says in its progress slot that it is in that rule and then never returns
 * (a catastrophic regex, as the real thread ran into before rule regexes were linear).
 * Its listener is registered before the real thread's, so it sees each message first.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Progress, type EvalBatch, type ThreadData, type ThreadMessage } from '../../src/worker/evaluator-protocol.ts';
import { STALL_RULE, STALL_SPAN } from './stall.ts';

const marker = Buffer.from(STALL_SPAN);
const progress = new Progress((workerData as ThreadData).progress);
let stallRule = -1;

/** The position in the batch of the first trace holding a STALL_SPAN span and evaluated with STALL_RULE, or -1. */
function stallingTrace(batch: EvalBatch): number {
  const n = batch.traces;
  for (let at = 0, position = 0; at < n.length; at += 3 + 3 * n[at + 2]!, position++) {
    if (batch.excluded?.[n[at]!]?.includes(STALL_RULE) === true) continue;
    for (let i = at + 3; i < at + 3 + 3 * n[at + 2]!; i += 3) {
      const [slab, offset, length] = [n[i]!, n[i + 1]!, n[i + 2]!];
      const payload = slab < 0 ? batch.packed.subarray(offset, offset + length) : new Uint8Array(batch.slabs[slab]!, offset, length);
      if (Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).includes(marker)) return position;
    }
  }
  return -1;
}

parentPort!.on('message', (msg: ThreadMessage) => {
  if (msg.type === 'rules') stallRule = msg.definitions.findIndex((d) => d.id === STALL_RULE && d.enabled);
  if (msg.type !== 'eval' || stallRule < 0) return;
  const position = stallingTrace(msg);
  if (position < 0) return;
  progress.trace(msg.batch, position);
  progress.rule(stallRule);
  /^(a+)+$/.test(`${'a'.repeat(64)}!`);
});

await import('../../src/worker/evaluator-thread.ts');
