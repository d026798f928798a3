/** Every error code the admin API answers with, and its cause (documented in src/api/README.md; a test checks). */
export const API_ERRORS = {
  NOT_FOUND: [404, 'no such route'],
  METHOD_NOT_ALLOWED: [405, 'the route exists, not with this method'],
  INVALID_JSON: [400, 'the request body is not JSON'],
  INVALID_PATH: [400, 'a path segment is not valid percent-encoding (e.g. `/v1/rules/%ZZ`)'],
  BODY_TOO_LARGE: [413, 'the request body is over 1 MiB'],
  INVALID_RULE: [400, 'the rule does not match the RuleInput schema: `errors` holds one `{path, message}` per bad field, naming it and what it must be (an unknown field with the closest one)'],
  INVALID_CONDITION: [400, 'the condition does not compile (`line`, `column`, `message`, e.g. `unknown function trace.hsa (did you mean trace.has?)`)'],
  INVALID_PARAMETER: [400, 'a query parameter is malformed (e.g. start_time not unix seconds)'],
  INVALID_TRACE: [400, 'the trace to try a rule on is not OTLP JSON, or holds no span'],
  RULE_NOT_FOUND: [404, 'no rule with this id'],
  RULE_EXISTS: [409, 'POST of an id that exists (use PUT to replace)'],
  RULE_READ_ONLY: [409, 'the rule comes from a rule file: change the file (enable/disable work)'],
  UNAUTHENTICATED: [401, 'a mutating call without `Authorization: Bearer <token>`'],
  FORBIDDEN: [403, 'a mutating call with a wrong token'],
  REPLAY_NOT_FOUND: [404, 'no replay job with this id'],
  INVALID_REPLAY: [400, 'the replay request is invalid (rules, times, source)'],
  REPLAY_LIMIT: [429, 'too many replays running at once'],
  UNAVAILABLE: [503, 'the rule store cannot be written now (Kafka unavailable)'],
  INTERNAL: [500, 'a bug: logged with its stack'],
} as const satisfies Record<string, readonly [number, string]>;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** An error response with its stable code. */
export function apiError(code: ApiErrorCode, message: string, extra: Record<string, unknown> = {}): { status: number; body: unknown } {
  return { status: API_ERRORS[code][0], body: { error: { code, message, ...extra } } };
}
