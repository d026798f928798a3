/** POST /v1/replay starts a replay job; GET /v1/replay/{id} reports its progress and result. */
import type { ReplayJobs } from '../replay/jobs.ts';
import type { AuthResult } from '../server/index.ts';
import { apiError } from './errors.ts';
import { errorResponse, jsonResponse, type ApiRequest, type ApiServer } from './server.ts';

export function mountReplayRoutes(api: ApiServer, jobs: ReplayJobs, auth: (headers: ApiRequest['headers']) => AuthResult): void {
  api.addRoute({
    method: 'POST',
    path: '/v1/replay',
    schema: {
      summary: 'Start a replay job',
      security: [{ bearer: [] }],
      body: { $ref: 'ReplayRequest' },
      response: {
        202: {
          description: 'Started: {id}',
          content: { 'application/json': { schema: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } } },
          headers: { location: { type: 'string', description: 'The job: /v1/replay/{id}' } },
        },
        400: errorResponse('Invalid request (INVALID_REPLAY, INVALID_JSON)'),
        401: errorResponse('No bearer token (UNAUTHENTICATED)'),
        403: errorResponse('Wrong bearer token (FORBIDDEN)'),
        413: errorResponse('The body is over the limit (BODY_TOO_LARGE)'),
        429: errorResponse('Too many replays running at once (REPLAY_LIMIT)'),
      },
    },
    auth,
    // Worded as ReplayJobs.start words it (validateReplayRequest: one line, the problems in order).
    invalidBody: (problems) => apiError('INVALID_REPLAY', problems.map((p) => p.message).join('; ')),
    handler: (req) => {
      const r = jobs.start(req.body);
      if (r.ok) return { status: 202, body: { id: r.id }, headers: { location: `/v1/replay/${r.id}` } };
      return apiError(r.status === 429 ? 'REPLAY_LIMIT' : 'INVALID_REPLAY', r.error);
    },
  });
  api.addRoute({
    method: 'GET',
    path: '/v1/replay/{id}',
    schema: {
      summary: 'Progress and result of a replay job',
      params: { type: 'object', properties: { id: { type: 'string', description: 'A replay job id' } }, required: ['id'] },
      response: {
        200: jsonResponse('The job: status (running, done, failed), progress, and when done its result (the report of betrace replay)', { type: 'object' }),
        400: errorResponse('The id is not valid percent-encoding (INVALID_PATH)'),
        404: errorResponse('No such job (REPLAY_NOT_FOUND)'),
      },
    },
    handler: (req) => {
      const job = jobs.get(req.params.id!);
      return job ? { status: 200, body: job } : apiError('REPLAY_NOT_FOUND', `no replay job ${JSON.stringify(req.params.id)}`);
    },
  });
}
