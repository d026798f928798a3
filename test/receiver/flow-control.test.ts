/**
 * The OTLP/gRPC receiver offers clients HTTP/2's flow-control windows (65,535 bytes per
 * stream and per connection, as a client sees them on its side of a connection: grpc-js has
 * no server option for them and betrace does not reach into its internals); large exports
 * arrive whole through them. receiver.grpc.flow_control_window is accepted, not applied, and
 * a value above 64 KiB is said in the log.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { paddedRequest } from '../helpers/encode-spans.ts';
import { rawTraceClient } from '../helpers/grpc-client.ts';
import { startTestPipeline, metricValue, type TestPipeline } from '../helpers/pipeline.ts';

/** The windows the receiver offers a new connection: its SETTINGS' stream window, and the connection window once raised. */
async function offeredWindows(url: string, expectedConnection: number): Promise<{ stream: number; connection: number }> {
  const session = http2.connect(url);
  try {
    const settings = await new Promise<http2.Settings>((resolve, reject) => {
      session.once('remoteSettings', resolve);
      session.once('error', reject);
    });
    // The connection window comes in a WINDOW_UPDATE after the SETTINGS frame.
    const deadline = Date.now() + 2000;
    while ((session.state.remoteWindowSize ?? 0) < expectedConnection && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return { stream: settings.initialWindowSize ?? -1, connection: session.state.remoteWindowSize ?? -1 };
  } finally {
    session.close();
  }
}

function bigRequest(spans: number): Buffer {
  return paddedRequest('big', Array.from({ length: spans }, (_, i) => ['5af7651916cd43dd8448eb211c80319c', (i + 1).toString(16).padStart(16, '0')] as const));
}

describe('HTTP/2 flow control on the OTLP/gRPC receiver', () => {
  const pipelines: TestPipeline[] = [];
  after(async () => {
    for (const p of pipelines) await p.stop();
  });

  it("offers HTTP/2's windows, per stream and per connection", async () => {
    const p = await startTestPipeline();
    pipelines.push(p);
    assert.deepEqual(await offeredWindows(p.grpcUrl, 65_535), { stream: 65_535, connection: 65_535 });
    assert.ok(!p.logs.join('').includes('flow_control_window'), 'nothing said of a window nobody configured');
  });

  it('says a configured window is not applied, and takes a 3 MB export whole through the 64 KiB one', async () => {
    const p = await startTestPipeline({ receiver: { grpc: { flow_control_window: '256KiB' } } });
    pipelines.push(p);
    const warning = p.logs.join('').split('\n').find((l) => l.includes('receiver.grpc.flow_control_window is not applied'));
    assert.ok(warning !== undefined, p.logs.join(''));
    assert.equal((JSON.parse(warning) as { level: number; flowControlWindow: number }).flowControlWindow, 256 * 1024);
    assert.deepEqual(await offeredWindows(p.grpcUrl, 65_535), { stream: 65_535, connection: 65_535 });
    const body = bigRequest(9000);
    assert.ok(body.length > 3_000_000, `${body.length} bytes`);
    const client = rawTraceClient(p.grpcUrl);
    try {
      const { err } = await client.export(body);
      assert.equal(err, null);
    } finally {
      client.close();
    }
    assert.equal(await metricValue(p.apiUrl, 'betrace_receiver_spans_accepted_total', { protocol: 'grpc' }), 9000);
  });
});
