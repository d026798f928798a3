/** POST /v1/replay starts a replay job; GET /v1/replay/{id} reports its progress and result. */
import type { ReplayJobs } from '../replay/jobs.ts';
import type { AuthResult } from '../server/index.ts';
import { apiError } from './errors.ts';
import type { ApiRequest, ApiServer } from './server.ts';

export function mountReplayRoutes(api: ApiServer, jobs: ReplayJobs, auth: (headers: ApiRequest['headers']) => AuthResult): void {
  api.addRoute({
    method: 'POST',
    path: '/v1/replay',
    handler: (req) => {
      const a = auth(req.headers);
      if (a === 'missing') return apiError('UNAUTHENTICATED', 'this call needs Authorization: Bearer <token>');
      if (a === 'wrong') return apiError('FORBIDDEN', 'the bearer token is not valid');
      const r = jobs.start(req.body);
      if (r.ok) return { status: 202, body: { id: r.id }, headers: { location: `/v1/replay/${r.id}` } };
      return apiError(r.status === 429 ? 'REPLAY_LIMIT' : 'INVALID_REPLAY', r.error);
    },
  });
  api.addRoute({
    method: 'GET',
    path: '/v1/replay/{id}',
    handler: (req) => {
      const job = jobs.get(req.params.id!);
      return job ? { status: 200, body: job } : apiError('REPLAY_NOT_FOUND', `no replay job ${JSON.stringify(req.params.id)}`);
    },
  });
}
