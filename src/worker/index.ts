export { Worker, type WorkerOptions } from './worker.ts';
export { EvaluatorPool } from './evaluator-pool.ts';
export { TraceWindows, type CompletedTrace, type CutReason, type WindowOptions } from './trace-windows.ts';
