/** GET /v1/violations: filters start_time, end_time, severity, rule_id, trace_id, service, limit, cursor; newest first. */
import { SEVERITIES } from '../rules/index.ts';
import { decodeViolationCursor, type ViolationQuery, type ViolationReader } from '../violations/violation-store.ts';
import { apiError } from './errors.ts';
import { errorResponse, jsonResponse, type ApiServer } from './server.ts';

function unixSeconds(name: string, text: string | null): number | undefined | string {
  if (text === null || text === '') return undefined;
  if (!/^\d{1,12}(\.\d+)?$/.test(text)) return `${name} must be unix seconds, got ${JSON.stringify(text)}`;
  return Number(text);
}

/** `traceUrl`: notifications.trace_url (`{trace_id}` replaced); '' for none: each violation then has no trace_url. */
export function mountViolationRoutes(api: ApiServer, reader: () => ViolationReader | undefined, traceUrl = ''): void {
  api.addRoute({
    method: 'GET',
    path: '/v1/violations',
    schema: {
      summary: 'Violations, newest first',
      querystring: {
        type: 'object',
        properties: {
          start_time: { type: 'integer', minimum: 0, description: 'Unix seconds; violations whose witnesses started at or after it' },
          end_time: { type: 'integer', minimum: 0, description: 'Unix seconds' },
          severity: { type: 'string', description: 'critical, high, medium, low or info (case-insensitive)' },
          rule_id: { type: 'string' },
          trace_id: { type: 'string', pattern: '^[0-9a-fA-F]{32}$' },
          service: { type: 'string', description: 'Violations naming this service (service.name) among their services' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          cursor: { type: 'string', description: 'A next_cursor from a previous page; any other value: 400 INVALID_PARAMETER' },
        },
      },
      response: {
        200: jsonResponse('A page', 'ViolationList'),
        400: errorResponse('Bad filter (INVALID_PARAMETER)'),
      },
    },
    handler: (req) => {
      const q = req.query;
      const start = unixSeconds('start_time', q.get('start_time'));
      if (typeof start === 'string') return apiError('INVALID_PARAMETER', start);
      const end = unixSeconds('end_time', q.get('end_time'));
      if (typeof end === 'string') return apiError('INVALID_PARAMETER', end);
      const severity = q.get('severity')?.toLowerCase();
      if (severity !== undefined && severity !== '' && !(SEVERITIES as readonly string[]).includes(severity)) {
        return apiError('INVALID_PARAMETER', `severity must be one of ${SEVERITIES.join(', ')}, got ${JSON.stringify(q.get('severity'))}`);
      }
      const traceId = q.get('trace_id');
      if (traceId !== null && traceId !== '' && !/^[0-9a-fA-F]{32}$/.test(traceId)) {
        return apiError('INVALID_PARAMETER', `trace_id must be 32 hex characters, got ${JSON.stringify(traceId)}`);
      }
      const limitText = q.get('limit');
      let limit: number | undefined;
      if (limitText !== null && limitText !== '') {
        limit = Number(limitText);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
          return apiError('INVALID_PARAMETER', `limit must be an integer from 1 to 1000, got ${JSON.stringify(limitText)}`);
        }
      }
      const cursor = q.get('cursor');
      if (cursor !== null && cursor !== '' && decodeViolationCursor(cursor) === undefined) {
        return apiError('INVALID_PARAMETER', `cursor ${JSON.stringify(cursor)} is not one this API gave out; start again without a cursor`);
      }
      const source = reader();
      if (source === undefined) return { status: 200, body: { violations: [], next_cursor: null } };
      const query: ViolationQuery = {
        ...(start !== undefined ? { startTime: start } : {}),
        ...(end !== undefined ? { endTime: end } : {}),
        ...(severity ? { severity } : {}),
        ...(q.get('rule_id') ? { ruleId: q.get('rule_id')! } : {}),
        ...(traceId ? { traceId } : {}),
        ...(q.get('service') ? { service: q.get('service')! } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(cursor ? { cursor } : {}),
      };
      const page = source.query(query);
      const violations = traceUrl === '' ? page.violations : page.violations.map((v) => ({ ...v, trace_url: traceUrl.replaceAll('{trace_id}', v.trace_id) }));
      return { status: 200, body: { violations, next_cursor: page.nextCursor } };
    },
  });
}
