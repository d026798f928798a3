/**
 * The rule set in force, the control plane of rules: the registry (file rules, API rules,
 * quarantines, duplicate ids resolved one way), the rule files it watches, the API rules'
 * store and its Kafka adapter (the rules topic). Imported by the worker, the API, replay
 * and the composition root; it imports the rule language (src/rules) and the transport's
 * Kafka client, never the worker.
 */
export { RuleRegistry, type RegisteredRule, type RuleSource } from './rule-registry.ts';
export { RuleFiles } from './rule-files.ts';
