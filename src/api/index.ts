export { ApiServer, type ApiRequest, type ApiResponse, type ReadinessCheck, type Route, type RouteHandler } from './server.ts';
export { API_ERRORS, apiError, type ApiErrorCode } from './errors.ts';
export { mountRulesRoutes, ruleJson } from './rules-routes.ts';
export { mountViolationRoutes } from './violations-routes.ts';
