/**
 * For the watchdog's tests: traces that make an evaluation thread stuck, and the
 * thread module that gets stuck on them (stalling-evaluator-thread.ts).
 */
import { context, trace } from '@opentelemetry/api';
import type { TestApp } from './sdk.ts';

/** A trace holding a span of this name gets a stalling-evaluator-thread stuck in rule STALL_RULE. */
export const STALL_SPAN = 'betrace-test-stall';
export const STALL_RULE = 'stall';

/** EvaluatorPool's threadModule for the tests: the real thread, stuck on STALL_SPAN traces. */
export const stallingThreadModule = new URL('./stalling-evaluator-thread.ts', import.meta.url);

/** Emits one trace: a root span named `names[0]` and a child per further name; returns its trace id. */
export function emitTrace(app: TestApp, names: readonly string[]): string {
  const tracer = app.tracer();
  const root = tracer.startSpan(names[0]!);
  const ctx = trace.setSpan(context.active(), root);
  for (const name of names.slice(1)) tracer.startSpan(name, {}, ctx).end();
  root.end();
  return root.spanContext().traceId;
}
