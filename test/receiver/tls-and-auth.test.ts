/**
 * TLS and mTLS on the receivers and the API, certificates reloaded when their
 * files change, and the optional bearer token on the receiver.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { ExportTraceServiceRequest } from '../../src/otlp/index.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { makeTestCerts, type TestCerts } from '../helpers/certs.ts';
import { startTestPipeline, waitUntil, type TestPipeline } from '../helpers/pipeline.ts';
import { createTestApp } from '../helpers/sdk.ts';

const body = Buffer.from(
  ExportTraceServiceRequest.encode(
    ExportTraceServiceRequest.fromObject({
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.alloc(16, 7), spanId: Buffer.alloc(8, 7), name: 'secure', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }],
    }),
  ).finish(),
);

async function grpcExport(url: string, creds: grpc.ChannelCredentials, token?: string): Promise<grpc.ServiceError | null> {
  const client = rawTraceClient(url, creds);
  try {
    return (await client.export(body, { ...(token ? { token } : {}), deadlineMs: 5000 })).err;
  } finally {
    client.close();
  }
}

function httpsPost(url: string, certs: TestCerts, opts: { client?: boolean; token?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/traces`,
      {
        method: 'POST',
        ca: readFileSync(certs.ca),
        ...(opts.client ? { cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) } : {}),
        headers: { 'Content-Type': 'application/x-protobuf', ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}) },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function serialOf(port: number, certs: TestCerts): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

describe('TLS on the receivers and the API', () => {
  let certs: TestCerts;
  let betrace: TestPipeline;
  before(async () => {
    certs = makeTestCerts();
    const tls = { cert_file: certs.serverCert, key_file: certs.serverKey };
    betrace = await startTestPipeline({ receiver: { tls }, api: { tls } });
  });
  after(async () => {
    await betrace.stop();
  });

  it('takes spans from the OpenTelemetry gRPC exporter over TLS, refuses plaintext', async () => {
    const url = betrace.grpcUrl.replace('http://', '');
    const exporter = new OTLPTraceExporter({ url: `https://${url}`, credentials: grpc.credentials.createSsl(readFileSync(certs.ca)) });
    const app = createTestApp({ service: 'tls-app', exporters: [exporter] });
    app.tracer().startSpan('over.tls').end();
    await app.flush();
    await app.shutdown();
    const metrics = await new Promise<string>((resolve, reject) => {
      request(`${betrace.apiUrl.replace('http://', 'https://')}/metrics`, { ca: readFileSync(certs.ca) }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    assert.match(metrics, /^betrace_receiver_spans_accepted_total\{protocol="grpc"\} 1$/m, 'the SDK span was accepted over TLS');
    const plain = await grpcExport(url, grpc.credentials.createInsecure());
    assert.notEqual(plain, null, 'plaintext is refused');
    assert.equal(await grpcExport(url, grpc.credentials.createSsl(readFileSync(certs.ca))), null);
  });

  it('serves OTLP/HTTP and the API over HTTPS', async () => {
    const https = betrace.httpUrl.replace('http://', 'https://');
    assert.equal(await httpsPost(https, certs), 200);
    const health = await new Promise<number>((resolve, reject) => {
      request(`${betrace.apiUrl.replace('http://', 'https://')}/health`, { ca: readFileSync(certs.ca) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(health, 200);
  });

  it('reloads the certificate when its files change', async () => {
    const port = Number(new URL(betrace.httpUrl).port);
    const before = await serialOf(port, certs);
    const tmpCert = `${certs.dir}/next.pem`;
    const tmpKey = `${certs.dir}/next.key`;
    const serial = certs.issueServer(tmpCert, tmpKey);
    copyFileSync(tmpKey, certs.serverKey);
    copyFileSync(tmpCert, certs.serverCert);
    await waitUntil(async () => (await serialOf(port, certs)) !== before, 10_000, 'new certificate served');
    assert.equal((await serialOf(port, certs)).replace(/^0+/, ''), serial.replace(/^0+/, ''));
    const grpcUrl = betrace.grpcUrl.replace('http://', '');
    await waitUntil(async () => (await grpcExport(grpcUrl, grpc.credentials.createSsl(readFileSync(certs.ca)))) === null, 10_000, 'gRPC on the new certificate');
  });
});

describe('mTLS and the receiver token', () => {
  it('requires a client certificate signed by the client CA', async () => {
    const certs = makeTestCerts();
    const betrace = await startTestPipeline({ receiver: { tls: { cert_file: certs.serverCert, key_file: certs.serverKey, client_ca_file: certs.ca } } });
    try {
      const url = betrace.grpcUrl.replace('http://', '');
      const ca = readFileSync(certs.ca);
      assert.notEqual(await grpcExport(url, grpc.credentials.createSsl(ca)), null, 'no client certificate: refused');
      assert.equal(await grpcExport(url, grpc.credentials.createSsl(ca, readFileSync(certs.clientKey), readFileSync(certs.clientCert))), null);
      const https = betrace.httpUrl.replace('http://', 'https://');
      await assert.rejects(httpsPost(https, certs), 'HTTPS without a client certificate is refused');
      assert.equal(await httpsPost(https, certs, { client: true }), 200);
    } finally {
      await betrace.stop();
    }
  });

  it('answers UNAUTHENTICATED / 401 without the receiver token', async () => {
    const betrace = await startTestPipeline({ receiver: { auth_token: 'recv-token' } });
    try {
      const url = betrace.grpcUrl.replace('http://', '');
      assert.equal((await grpcExport(url, grpc.credentials.createInsecure()))?.code, grpc.status.UNAUTHENTICATED);
      assert.equal((await grpcExport(url, grpc.credentials.createInsecure(), 'wrong'))?.code, grpc.status.UNAUTHENTICATED);
      assert.equal(await grpcExport(url, grpc.credentials.createInsecure(), 'recv-token'), null);
      const res = await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf' }, body });
      assert.equal(res.status, 401);
      const ok = await fetch(`${betrace.httpUrl}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/x-protobuf', Authorization: 'Bearer recv-token' }, body });
      assert.equal(ok.status, 200);
      assert.ok(!betrace.logs.some((l) => l.includes('recv-token')), 'the token is never logged');
    } finally {
      await betrace.stop();
    }
  });
});
