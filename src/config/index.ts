export type { Config, DownstreamConfig, KafkaConfig, ListenConfig, NotificationsConfig, SpoolConfig, TlsConfig } from './config.ts';
export { loadConfig, parseConfig, ConfigError } from './load.ts';
export { configSchema, schemaKeys, type SchemaNode } from './schema.ts';
export { isLoopbackHost, parseDurationMs, parseSizeBytes, parseEndpoint } from './units.ts';
export { downstreamLoopProblem, downstreamEndpointVariable } from './self-loop.ts';
