/**
 * The forwarder role: its exporter and its consumer group, passing every span downstream
 * unchanged; off without downstream.endpoint. Both go into the lifecycle list here; the
 * Forwarder starts and stops its consumer only. Imported by pipeline.ts only.
 */
import { Forwarder, QueuedExporter, createOtlpGrpcSender } from '../../exporter/index.ts';
import type { Shared } from './shared.ts';

export function buildForwarder(s: Shared): void {
  const { config, kafkaMode, metrics, logger, lifecycle } = s;
  if (!config.forwarder.enabled) {
    logger.info('no downstream.endpoint configured: the forwarder is off');
    return;
  }
  const exporter = new QueuedExporter({
    name: 'forwarder',
    sender: createOtlpGrpcSender(config.downstream),
    config: config.downstream,
    metrics,
    logger,
    keepAbandoned: kafkaMode,
    // Kafka keeps the backlog; embedded, a burst waits while downstream takes exports.
    whenFull: kafkaMode ? 'wait' : 'wait_while_delivering',
  });
  s.exporters.push(['forwarder', exporter]);
  lifecycle.add('forwarder exporter', 'exporters', exporter);
  const forwarder = new Forwarder({
    transport: s.transport,
    exporter,
    logger,
    group: config.transport.kafka.forwarderGroup,
    // Flushed before the final commit, which then carries what downstream acknowledged.
    beforeFinalCommit: () => exporter.shutdown(),
  });
  lifecycle.add('forwarder', 'consumers', forwarder);
}
