/**
 * Issue 21, finding 8 (two of the smaller items): a path parameter that is not
 * valid percent-encoding (`/v1/rules/%ZZ`) is a client error (400 INVALID_PATH,
 * no stack logged), and an upload the client abandons mid-body is counted as a
 * client abort (OTLP/HTTP: code 499; both: betrace_requests_cut_total reason
 * client_aborted), never as a 500 and never logged at error level.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { metricValue, startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';

/** Sends request headers declaring `declared` bytes and half of them, then closes the connection. */
async function abandonUpload(url: string, method: string, path: string, contentType: string, declared: number): Promise<void> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: ${contentType}\r\nContent-Length: ${declared}\r\n\r\n`);
  socket.write(Buffer.alloc(declared / 2, 0x61));
  await new Promise((r) => setTimeout(r, 200));
  socket.destroy();
}

const errorLines = (logs: readonly string[]) => logs.filter((l) => /"level":(50|60)/.test(l));

describe('bad paths and aborted uploads', () => {
  let p: TestPipeline;
  before(async () => (p = await startTestPipeline({ log: { level: 'debug' } })));
  after(async () => p.stop());

  it('GET, PUT and DELETE /v1/rules/%ZZ answer 400 INVALID_PATH, and log no stack', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await fetch(`${p.apiUrl}/v1/rules/%ZZ`, {
        method,
        ...(method === 'PUT' ? { body: '{}', headers: { 'Content-Type': 'application/json' } } : {}),
      });
      assert.equal(res.status, 400, method);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'INVALID_PATH', method);
      assert.match(body.error.message, /path parameter id is not valid percent-encoding: "%ZZ"/);
    }
    assert.deepEqual(errorLines(p.logs), [], 'nothing logged at error level');
    assert.ok(!p.logs.some((l) => l.includes('URIError')), 'no stack');
    // A valid encoding still reaches the route.
    assert.equal((await fetch(`${p.apiUrl}/v1/rules/no%20such`)).status, 404);
  });

  it('an OTLP/HTTP upload abandoned mid-body is counted as a client abort (499), not a 500, and not logged as an error', async () => {
    await abandonUpload(p.httpUrl, 'POST', '/v1/traces', 'application/x-protobuf', 200_000);
    await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'http', reason: 'client_aborted' })) === 1, 5000, 'the abort counted');
    assert.equal(await metricValue(p.apiUrl, 'betrace_receiver_requests_total', { protocol: 'http', code: '499' }), 1);
    assert.equal(await metricValue(p.apiUrl, 'betrace_receiver_requests_total', { protocol: 'http', code: '500' }), 0);
    assert.equal(await metricValue(p.apiUrl, 'betrace_receiver_receiving_bytes'), 0, 'what it held is released');
    assert.deepEqual(errorLines(p.logs), []);
    assert.ok(p.logs.some((l) => l.includes('OTLP/HTTP client closed the connection before the end of its request') && l.includes('"level":20')), 'a debug line');
  });

  it('an admin API upload abandoned mid-body is counted as a client abort and not logged as an error', async () => {
    await abandonUpload(p.apiUrl, 'PUT', '/v1/rules/abandoned', 'application/json', 100_000);
    await waitUntil(async () => (await metricValue(p.apiUrl, 'betrace_requests_cut_total', { server: 'api', reason: 'client_aborted' })) === 1, 5000, 'the abort counted');
    assert.deepEqual(errorLines(p.logs), []);
    assert.equal((await fetch(`${p.apiUrl}/health`)).status, 200);
  });
});
