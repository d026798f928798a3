export { Ingest, type IngestOutcome, type Protocol, type ReceiverOptions } from './ingest.ts';
export { GrpcReceiver, type GrpcReceiverOptions } from './grpc.ts';
export { HttpReceiver, type HttpReceiverOptions } from './http.ts';
export { ReceiveBudget } from './budget.ts';
