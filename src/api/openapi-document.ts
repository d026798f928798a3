/**
 * The OpenAPI document of every route the admin API can serve, built by
 * @fastify/swagger from the route schemas; src/api/openapi.json is its copy in
 * the repository (a test keeps them in step). Regenerate it with
 * `node src/api/openapi-document.ts > src/api/openapi.json`.
 */
import { Writable } from 'node:stream';
import type { ReplayJobs } from '../replay/jobs.ts';
import type { RuleRegistry } from '../ruleset/rule-registry.ts';
import type { RuleStore } from '../ruleset/rule-store.ts';
import { createLogger } from '../telemetry/logger.ts';
import { createMetrics } from '../telemetry/metrics.ts';
import { mountReplayRoutes } from './replay-routes.ts';
import { mountRulesRoutes } from './rules-routes.ts';
import { mountConsole } from '../console/routes.ts';
import { ApiServer } from './server.ts';
import { mountViolationRoutes } from './violations-routes.ts';

/** An admin API with every route mounted, never started: what it serves is described, never called. */
export function everyRoute(): ApiServer {
  const logger = createLogger('silent', new Writable({ write: (_chunk, _encoding, done) => done() }));
  const api = new ApiServer({ host: '127.0.0.1', port: 0, metrics: createMetrics(), logger });
  const never = () => 'ok' as const;
  mountRulesRoutes(api, { registry: {} as RuleRegistry, store: {} as RuleStore, logger, auth: never });
  mountViolationRoutes(api, () => undefined);
  mountReplayRoutes(api, {} as ReplayJobs, never);
  mountConsole(api);
  return api;
}

if (import.meta.main) process.stdout.write(`${JSON.stringify(await everyRoute().document(), null, 2)}\n`);
