export { createOtlpGrpcSender, type PayloadSender, type SendResult } from './otlp-grpc-sender.ts';
export { QueuedExporter, type ExportItem, type QueuedExporterOptions } from './queued-exporter.ts';
export { Forwarder, type ForwarderOptions } from './forwarder.ts';
