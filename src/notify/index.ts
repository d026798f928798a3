/**
 * Notifications (src/notify/README.md): routes, the outbox, the sender and the channels.
 * Imported by the composition root (the worker role, `betrace notify test`) and the API (the
 * trace link); it imports the rule language, the violations, the configuration and telemetry,
 * never the worker.
 */
export { Notifier, routeOf, MAX_MESSAGE_VIOLATIONS, type NotifierOptions, type RuleLookup } from './notifier.ts';
export { Channels, type Channel, type SendResult } from './channels/index.ts';
export { summary, traceLink, type Notification } from './message.ts';
