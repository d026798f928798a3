export { checkHeaders, createTokenCheck, type AuthResult } from './auth.ts';
export { readRequestBody, type BodyResult, type ByteBudget } from './body.ts';
export { answerClientError, createHttpServer, DEFAULT_READ_TIMEOUT_MS, listenHttp, type HttpLimits, type HttpServer, type HttpServerOptions, type ListeningServer } from './listen.ts';
export { readServerTls, TlsFilesWatcher, type ServerTlsOptions } from './tls.ts';
