/**
 * The admin API's answers on the wire where fastify's defaults differ from them:
 * every body is read as JSON whatever its Content-Type, an empty body is no body,
 * routes have no HEAD of their own, a trailing slash and a long id reach the route,
 * JSON answers say `application/json` (no charset), a body that is not JSON keeps the
 * connection while one over the limit closes it, and an error is always `{error: {code, message}}`;
 * a request that cannot be read gets Node's answer (status line, `Connection: close`, no body), as
 * the receiver's servers give.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { startTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

const TOKEN = 'http-answers-token';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

function call(base: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, agent: false, headers: { authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `bytes` on a fresh connection and returns all the server sent until it closed the connection. */
function rawExchange(base: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(out));
    socket.write(bytes);
  });
}

describe('admin API answers on the wire', () => {
  let p: TestPipeline;
  before(async () => (p = await startTestPipeline({ api: { token: TOKEN, read_timeout: '1s' } })));
  after(async () => p.stop());

  it('reads a body as JSON whatever its Content-Type says; an empty body is none', async () => {
    const rule = JSON.stringify({ id: 'any-type', severity: 'low', condition: 'true' });
    const created = await call(p.apiUrl, 'POST', '/v1/rules', rule, { 'content-type': 'text/plain' });
    assert.equal(created.status, 201);
    assert.equal(created.headers['content-type'], 'application/json');
    const replaced = await call(p.apiUrl, 'PUT', '/v1/rules/any-type', JSON.stringify({ severity: 'high', condition: 'true' }), { 'content-type': 'not a media type' });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.version, 2);
    const disabled = await call(p.apiUrl, 'POST', '/v1/rules/any-type/disable', '', { 'content-type': 'application/json' });
    assert.equal(disabled.status, 200);
    assert.equal(disabled.body.enabled, false);
    const empty = await call(p.apiUrl, 'POST', '/v1/rules', '', { 'content-type': 'application/json' });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.code, 'INVALID_RULE');
    assert.equal(empty.body.error.message, 'the rule is not valid: the rule must be a mapping (key: value), got undefined');
  });

  it('answers HEAD, other methods and unknown paths with its own codes; a trailing slash and a long id reach the route', async () => {
    const head = await call(p.apiUrl, 'HEAD', '/health');
    assert.equal(head.status, 405);
    const options = await call(p.apiUrl, 'OPTIONS', '/v1/rules');
    assert.equal(options.status, 405);
    assert.deepEqual(options.body, { error: { code: 'METHOD_NOT_ALLOWED', message: 'OPTIONS is not allowed on /v1/rules' } });
    assert.equal(options.headers.allow, undefined);
    assert.deepEqual((await call(p.apiUrl, 'GET', '/v1/nothing/%ZZ')).body, { error: { code: 'NOT_FOUND', message: 'no route /v1/nothing/%ZZ' } });
    assert.equal((await call(p.apiUrl, 'GET', '/health/')).status, 200);
    const long = 'x'.repeat(300);
    const missing = await call(p.apiUrl, 'GET', `/v1/rules/${long}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'RULE_NOT_FOUND');
  });

  it('keeps the connection after a body that is not JSON, closes it after one over the limit', async () => {
    const notJson = await call(p.apiUrl, 'POST', '/v1/rules', '{"id": ', { connection: 'keep-alive' });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.code, 'INVALID_JSON');
    assert.equal(notJson.headers.connection, 'keep-alive');
    const large = await call(p.apiUrl, 'PUT', '/v1/rules/large', 'x'.repeat(1024 * 1024 + 1), { connection: 'keep-alive' });
    assert.equal(large.status, 413);
    assert.deepEqual(large.body, { error: { code: 'BODY_TOO_LARGE', message: 'request body larger than 1048576 bytes' } });
    assert.equal(large.headers.connection, 'close');
  });

  it('answers a request it cannot read as Node does: a status line, Connection: close, no body', async () => {
    assert.equal(await rawExchange(p.apiUrl, 'NOT HTTP\r\n\r\n'), 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    assert.equal(await rawExchange(p.apiUrl, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n');
    // Headers never finished: cut after api.read_timeout (1 s here).
    assert.equal(await rawExchange(p.apiUrl, 'GET /health HTTP/1.1\r\nHost: x\r\n'), 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
  });
});
