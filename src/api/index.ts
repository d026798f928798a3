export { ApiServer, apiError, type ApiRequest, type ApiResponse, type ReadinessCheck, type Route, type RouteHandler } from './server.ts';
