/**
 * /v1/rules: list, read, create, replace, delete, enable, disable. A condition
 * is compiled before it is accepted (400 with line, column and message). File
 * rules are read-only (409) except enable/disable, kept as an override with the
 * API rules. Every change is written to the log as an audit line.
 * A rule's `state` says whether it is evaluated: enabled, disabled, or
 * quarantined (over budget repeatedly, see rule-quarantine.ts; with the reason
 * and since when). Enabling, replacing or deleting a rule lifts its quarantine.
 * Enabling an enabled rule, or disabling a disabled one, changes nothing (same version).
 */
import { alertRouteJson, compileRule, explainNotes, readAlertRouteValue, ruleTextProblems, type AlertProblem, type CompiledRule, type RuleDefinition, type Severity } from '../rules/index.ts';
import { tryRuleOnTrace } from '../replay/try-rule.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { RegisteredRule, RuleRegistry } from '../ruleset/rule-registry.ts';
import { quarantineKey, type RuleStore, type StoredRule } from '../ruleset/rule-store.ts';
import type { AuthResult } from '../server/index.ts';
import { apiError } from './errors.ts';
import type { BodyProblem } from './openapi-schemas.ts';
import { errorResponse, jsonResponse, type ApiRequest, type ApiResponse, type ApiServer, type ResponseSchema, type RouteSchema } from './server.ts';

export function ruleJson(r: RegisteredRule): Record<string, unknown> {
  const d = r.definition;
  return {
    id: d.id,
    name: d.name,
    description: d.description,
    severity: d.severity,
    enabled: d.enabled,
    tags: d.tags,
    ...(d.message !== undefined ? { message: d.message } : {}),
    condition: d.condition,
    ...(d.alerts !== undefined ? { alerts: alertRouteJson(d.alerts) } : {}),
    canonical: r.rule.canonical,
    source: r.source,
    ...(r.file !== undefined ? { file: r.file } : {}),
    version: r.version,
    state: r.state,
    ...(r.quarantine !== undefined ? { quarantine: { reason: r.quarantine.reason, since: r.quarantine.since } } : {}),
  };
}

export interface RulesRoutesOptions {
  readonly registry: RuleRegistry;
  readonly store: RuleStore;
  readonly logger: Logger;
  readonly auth: (headers: ApiRequest['headers']) => AuthResult;
}

const rule = (description: string): ResponseSchema => jsonResponse(description, 'Rule');
const idParam = { type: 'object', properties: { id: { type: 'string', description: 'A rule id' } }, required: ['id'] };
const bearer = [{ bearer: [] }];
const badPath = errorResponse('The id is not valid percent-encoding (INVALID_PATH)');
const noToken = errorResponse('No bearer token (UNAUTHENTICATED)');
const wrongToken = errorResponse('Wrong bearer token (FORBIDDEN)');
const noRule = errorResponse('No such rule (RULE_NOT_FOUND)');

/** A body that does not match RuleInput: one message per field, naming it and what it must be (an unknown field with the closest one). */
const invalidRule = (errors: readonly BodyProblem[]): ApiResponse =>
  apiError('INVALID_RULE', `the rule is not valid: ${errors.map((e) => e.message).join('; ')}`, { errors });

const SWITCH_SCHEMAS: Record<'enable' | 'disable', RouteSchema> = {
  enable: {
    summary: 'Enable a rule (file rules too: an override kept with the API rules); lifts its quarantine',
    params: idParam,
    security: bearer,
    response: { 200: rule('The rule'), 400: badPath, 401: noToken, 403: wrongToken, 404: noRule },
  },
  disable: {
    summary: 'Disable a rule: it yields no violations (file rules too)',
    params: idParam,
    security: bearer,
    response: { 200: rule('The rule'), 400: badPath, 401: noToken, 403: wrongToken, 404: noRule },
  },
};

/** A rule definition compiled, or the API's answer to it: INVALID_RULE (text that is not Unicode) or INVALID_CONDITION (line, column). */
function compileDefinition(def: RuleDefinition): { rule: CompiledRule } | { error: ApiResponse } {
  const text = ruleTextProblems(def);
  if (text.length > 0) {
    return { error: apiError('INVALID_RULE', text.map((p) => p.message).join('; '), { errors: text.map((p) => ({ path: `/${p.field.replace(/\[(\d+)\]$/, '/$1')}`, field: p.field, offset: p.index, message: p.message })) }) };
  }
  const compiled = compileRule(def);
  if (!compiled.ok) {
    const first = compiled.errors[0]!;
    return {
      error: apiError('INVALID_CONDITION', first.message, {
        line: first.line,
        column: first.column,
        errors: compiled.errors.map((e) => ({ line: e.line, column: e.column, message: e.message, code: e.code })),
      }),
    };
  }
  return { rule: compiled.rule };
}

export function mountRulesRoutes(api: ApiServer, o: RulesRoutesOptions): void {
  const { registry, store, logger, auth } = o;

  const audit = (action: string, id: string, oldVersion: number | null, newVersion: number | null): void => {
    logger.info({ audit: true, action, ruleId: id, oldVersion, newVersion, at: new Date().toISOString() }, `rule ${action}`);
  };

  /** Compiles a rule body (its form checked against RuleInput already); the id comes from the path when given. */
  const parseBody = (req: ApiRequest, pathId?: string): { def: RuleDefinition } | { error: ApiResponse } => {
    const body = req.body as Partial<RuleDefinition> & { condition: string; severity: Severity };
    const id = pathId ?? body.id;
    if (id === undefined) return { error: apiError('INVALID_RULE', 'the rule needs an id') };
    if (pathId !== undefined && body.id !== undefined && body.id !== pathId) {
      return { error: apiError('INVALID_RULE', `the body's id ${JSON.stringify(body.id)} differs from the path's ${JSON.stringify(pathId)}`) };
    }
    const def: RuleDefinition = {
      id,
      name: body.name ?? id,
      description: body.description ?? '',
      severity: body.severity,
      enabled: body.enabled ?? true,
      tags: body.tags ?? [],
      ...(body.message !== undefined ? { message: body.message } : {}),
      condition: body.condition,
    };
    if ((body as { alerts?: unknown }).alerts !== undefined) {
      const problems: AlertProblem[] = [];
      const route = readAlertRouteValue((body as { alerts?: unknown }).alerts, problems);
      if (route === undefined) {
        return { error: apiError('INVALID_RULE', problems.map((p) => p.message).join('; '), { errors: problems.map((p) => ({ path: p.path, message: p.message })) }) };
      }
      def.alerts = route;
    }
    const compiled = compileDefinition(def);
    return 'error' in compiled ? compiled : { def };
  };

  /** The draft of a rule in the console's editor (validate, try): what is not given, as a new API rule has it. */
  const draftOf = (body: Partial<RuleDefinition> & { condition: string }): RuleDefinition => ({
    id: body.id ?? 'draft',
    name: body.name ?? body.id ?? 'draft',
    description: body.description ?? '',
    severity: body.severity ?? 'info',
    enabled: true,
    tags: body.tags ?? [],
    ...(body.message !== undefined ? { message: body.message } : {}),
    condition: body.condition,
  });

  const write = async (entry: StoredRule): Promise<ApiResponse | undefined> => {
    try {
      await store.put(entry);
      return undefined;
    } catch (err) {
      return apiError('UNAVAILABLE', `the rule store cannot be written: ${(err as Error).message}`);
    }
  };

  /** Removes rule `id`'s stored quarantine, if any (even one that no longer applies: the rule may change back). */
  const liftQuarantine = async (id: string, version: number | null): Promise<ApiResponse | undefined> => {
    const key = quarantineKey(id);
    if (store.get(key) === undefined) return undefined;
    try {
      await store.remove(key);
    } catch (err) {
      return apiError('UNAVAILABLE', `the rule store cannot be written: ${(err as Error).message}`);
    }
    audit('quarantine lifted', id, version, version);
    return undefined;
  };

  api.addRoute({
    method: 'GET',
    path: '/v1/rules',
    schema: { summary: 'List rules', response: { 200: jsonResponse('Rules', 'RuleList') } },
    handler: () => ({ status: 200, body: { rules: registry.all().map(ruleJson) } }),
  });

  // Validate and try compute and change nothing: no token needed, as for reads (the console's editor calls them as you type).
  api.addRoute({
    method: 'POST',
    path: '/v1/rules/validate',
    schema: {
      summary: 'Check a draft condition: its errors at line and column, or its canonical reading (what rules check --explain prints); saves nothing',
      body: { $ref: 'RuleDraft' },
      response: {
        200: jsonResponse('The verdict: ok with canonical and notes (and warnings), or not ok with errors', 'RuleCheck'),
        400: errorResponse('The body is not a draft (INVALID_RULE, INVALID_JSON)'),
        413: errorResponse('The body is over the limit (BODY_TOO_LARGE)'),
      },
    },
    invalidBody: invalidRule,
    handler: (req) => {
      const def = draftOf(req.body as RuleDefinition);
      const compiled = compileRule(def);
      const text = ruleTextProblems(def);
      if (text.length > 0 || !compiled.ok) {
        const errors = compiled.ok ? [] : compiled.errors.map((e) => ({ line: e.line, column: e.column, message: e.message, code: e.code }));
        return { status: 200, body: { ok: false, errors: [...text.map((p) => ({ line: 1, column: 1, message: p.message, code: 'bad-text' })), ...errors] } };
      }
      return {
        status: 200,
        body: {
          ok: true,
          canonical: compiled.rule.canonical,
          notes: explainNotes(compiled.rule),
          warnings: compiled.warnings.map((w) => ({ line: w.line, column: w.column, message: w.message, code: w.code })),
        },
      };
    },
  });

  api.addRoute({
    method: 'POST',
    path: '/v1/rules/try',
    schema: {
      summary: 'Evaluate a draft rule on a pasted OTLP/JSON trace: which traces violate it, with their witness spans; saves nothing',
      body: { $ref: 'RuleTry' },
      response: {
        200: jsonResponse('Each trace of the paste, whether it violates the rule, and its witnesses', 'RuleTryResult'),
        400: errorResponse('The rule does not compile (INVALID_CONDITION, INVALID_RULE), the trace is not OTLP JSON (INVALID_TRACE), or INVALID_JSON'),
        413: errorResponse('The body is over the limit (BODY_TOO_LARGE)'),
      },
    },
    invalidBody: invalidRule,
    handler: (req) => {
      const body = req.body as RuleDefinition & { trace: string };
      const { trace, ...rest } = body;
      const compiled = compileDefinition(draftOf(rest));
      if ('error' in compiled) return compiled.error;
      const tried = tryRuleOnTrace(compiled.rule, trace);
      return tried.ok ? { status: 200, body: { spans: tried.spans, traces: tried.traces } } : apiError('INVALID_TRACE', tried.error);
    },
  });

  api.addRoute({
    method: 'GET',
    path: '/v1/rules/{id}',
    schema: { summary: 'One rule', params: idParam, response: { 200: rule('The rule'), 400: badPath, 404: noRule } },
    handler: (req) => {
      const r = registry.get(req.params.id!);
      return r === undefined ? apiError('RULE_NOT_FOUND', `no rule ${JSON.stringify(req.params.id)}`) : { status: 200, body: ruleJson(r) };
    },
  });

  const upsert = async (req: ApiRequest, pathId: string | undefined, createOnly: boolean): Promise<ApiResponse> => {
    const parsed = parseBody(req, pathId);
    if ('error' in parsed) return parsed.error;
    const { def } = parsed;
    const existing = registry.get(def.id);
    if (existing?.source === 'file') return apiError('RULE_READ_ONLY', `rule ${def.id} comes from ${existing.file}: change the file`);
    if (existing !== undefined && createOnly) return apiError('RULE_EXISTS', `rule ${def.id} exists: PUT /v1/rules/${def.id} replaces it`);
    const version = (existing?.version ?? 0) + 1;
    const failed = (await write({ kind: 'rule', id: def.id, definition: def, version, updated_at: new Date().toISOString() })) ?? (await liftQuarantine(def.id, version));
    if (failed) return failed;
    audit(existing === undefined ? 'created' : 'replaced', def.id, existing?.version ?? null, version);
    const now = registry.get(def.id)!;
    return { status: existing === undefined ? 201 : 200, body: ruleJson(now) };
  };

  api.addRoute({
    method: 'POST',
    path: '/v1/rules',
    schema: {
      summary: 'Create an API rule (the condition is compiled first)',
      security: bearer,
      body: { $ref: 'RuleInput' },
      response: {
        201: rule('Created'),
        400: errorResponse('Invalid input (INVALID_RULE, INVALID_CONDITION, INVALID_JSON)'),
        401: noToken,
        403: wrongToken,
        409: errorResponse('A rule with this id exists (RULE_EXISTS), or it comes from a rule file (RULE_READ_ONLY)'),
        413: errorResponse('The body is over the limit (BODY_TOO_LARGE)'),
        503: errorResponse('The rule store cannot be written now (UNAVAILABLE)'),
      },
    },
    auth,
    invalidBody: invalidRule,
    handler: (req) => upsert(req, undefined, true),
  });
  api.addRoute({
    method: 'PUT',
    path: '/v1/rules/{id}',
    schema: {
      summary: 'Create or replace an API rule',
      params: idParam,
      security: bearer,
      body: { $ref: 'RuleInput' },
      response: {
        200: rule('Replaced'),
        201: rule('Created'),
        400: errorResponse('Invalid input (INVALID_RULE, INVALID_CONDITION, INVALID_JSON, INVALID_PATH)'),
        401: noToken,
        403: wrongToken,
        409: errorResponse('File rules are read-only (RULE_READ_ONLY)'),
        413: errorResponse('The body is over the limit (BODY_TOO_LARGE)'),
        503: errorResponse('The rule store cannot be written now (UNAVAILABLE)'),
      },
    },
    auth,
    invalidBody: invalidRule,
    handler: (req) => upsert(req, req.params.id, false),
  });

  api.addRoute({
    method: 'DELETE',
    path: '/v1/rules/{id}',
    schema: {
      summary: 'Delete an API rule',
      params: idParam,
      security: bearer,
      response: {
        204: { description: 'Deleted', type: 'null' },
        400: badPath,
        401: noToken,
        403: wrongToken,
        404: noRule,
        409: errorResponse('File rules are read-only (RULE_READ_ONLY)'),
        503: errorResponse('The rule store cannot be written now (UNAVAILABLE)'),
      },
    },
    auth,
    handler: async (req) => {
      const id = req.params.id!;
      const existing = registry.get(id);
      if (existing === undefined) return apiError('RULE_NOT_FOUND', `no rule ${JSON.stringify(id)}`);
      if (existing.source === 'file') return apiError('RULE_READ_ONLY', `rule ${id} comes from ${existing.file}: change the file`);
      try {
        await store.remove(id);
      } catch (err) {
        return apiError('UNAVAILABLE', `the rule store cannot be written: ${(err as Error).message}`);
      }
      audit('deleted', id, existing.version, null);
      const failed = await liftQuarantine(id, null);
      if (failed) return failed;
      return { status: 204 };
    },
  });

  for (const enabled of [true, false]) {
    api.addRoute({
      method: 'POST',
      path: `/v1/rules/{id}/${enabled ? 'enable' : 'disable'}`,
      schema: SWITCH_SCHEMAS[enabled ? 'enable' : 'disable'],
      auth,
      handler: async (req) => {
        const id = req.params.id!;
        const existing = registry.get(id);
        if (existing === undefined) return apiError('RULE_NOT_FOUND', `no rule ${JSON.stringify(id)}`);
        if (existing.definition.enabled === enabled) {
          // Already so: nothing is written and the version stays (versions change only on a change);
          // enabling still lifts a quarantine.
          const failed = enabled ? await liftQuarantine(id, existing.version) : undefined;
          if (failed) return failed;
          return { status: 200, body: ruleJson(registry.get(id) ?? existing) };
        }
        const version = existing.version + 1;
        const now = new Date().toISOString();
        const entry: StoredRule =
          existing.source === 'file'
            ? { kind: 'override', id, enabled, version: (registry.override(id)?.version ?? 0) + 1, updated_at: now }
            : { kind: 'rule', id, definition: { ...existing.definition, enabled }, version, updated_at: now };
        const failed = (await write(entry)) ?? (enabled ? await liftQuarantine(id, registry.get(id)!.version) : undefined);
        if (failed) return failed;
        const after = registry.get(id)!;
        audit(enabled ? 'enabled' : 'disabled', id, existing.version, after.version);
        return { status: 200, body: ruleJson(after) };
      },
    });
  }
}
