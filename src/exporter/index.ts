export { createOtlpGrpcSender, type PayloadSender, type SendResult } from './otlp-grpc-sender.ts';
export type { ExportItem, ExportRequest, ExportResult, ExportSender } from './export-sender.ts';
export type { Admission, FullQueuePolicy } from './export-queue.ts';
export { QueuedExporter, type QueuedExporterOptions } from './queued-exporter.ts';
export { Forwarder, type ForwarderOptions } from './forwarder.ts';
