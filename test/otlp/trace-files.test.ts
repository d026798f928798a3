/**
 * The trace-file reader that `rules test` and replay share (src/otlp/files.ts):
 * ids hex or base64, decided per file; a mixed or invalid id is an error naming
 * the span; a document that is not an OTLP request fails naming the file (and
 * line); replay over such a file fails with the same reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replayCommand } from '../../src/cli/replay.ts';
import { readTraceFile } from '../../src/otlp/index.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const request = (spans: Record<string, unknown>[]) => JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] });
const span = (traceId: string, spanId: string, name: string, parentSpanId?: string) => ({ traceId, spanId, name, ...(parentSpanId === undefined ? {} : { parentSpanId }), startTimeUnixNano: '1700000000000000000' });

describe('trace files', () => {
  let dir = '';
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const failure = (path: string) => readTraceFile(path).then(
    () => assert.fail(`${path} was read`),
    (e: Error) => e.message,
  );
  before(() => (dir = mkdtempSync(join(tmpdir(), 'betrace-trace-files-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads base64 ids (standard and URL-safe alphabets) as the same spans as hex ids', async () => {
    const hex = await readTraceFile(file('hex.json', request([span(TRACE, 'b7ad6b7169203331', 'a'), span(TRACE, 'fffefdfcfbfaf9f8', 'b', 'b7ad6b7169203331')])));
    const std = await readTraceFile(file('b64.json', request([span(b64(TRACE), b64('b7ad6b7169203331'), 'a'), span(b64(TRACE), b64('fffefdfcfbfaf9f8'), 'b', b64('b7ad6b7169203331'))])));
    const url = await readTraceFile(file('b64url.json', request([span(b64(TRACE), b64('b7ad6b7169203331'), 'a'), span(b64(TRACE), '__79_Pv6-fg', 'b', b64('b7ad6b7169203331'))])));
    assert.equal(hex.idForm, 'hex');
    assert.equal(std.idForm, 'base64');
    assert.equal(url.idForm, 'base64');
    assert.deepEqual(std.spans, hex.spans);
    assert.deepEqual(url.spans, hex.spans);
    assert.deepEqual(hex.spans.map((s) => [s.traceId, s.spanId, s.parentSpanId]), [
      [TRACE, 'b7ad6b7169203331', ''],
      [TRACE, 'fffefdfcfbfaf9f8', 'b7ad6b7169203331'],
    ]);
  });

  it('refuses a file whose ids mix the forms, or an id of neither form, naming the span', async () => {
    const mixed = file('mixed.json', `${request([span(TRACE, 'b7ad6b7169203331', 'a')])}\n${request([span(TRACE, b64('c7ad6b7169203331'), 'b')])}\n`);
    assert.equal(
      await failure(mixed),
      `${mixed}:2: resourceSpans[0].scopeSpans[0].spans[0] ("b"): spanId "${b64('c7ad6b7169203331')}" is base64 but the ids at line 1: resourceSpans[0].scopeSpans[0].spans[0] ("a") are hex: a file's ids are all hex (OTLP/JSON) or all base64 (proto3 JSON mapping)`,
    );
    const short = file('short.json', request([span(TRACE.slice(2), 'b7ad6b7169203331', 'a')]));
    assert.equal(await failure(short), `${short}: resourceSpans[0].scopeSpans[0].spans[0] ("a"): traceId "${TRACE.slice(2)}" is neither 32 hex digits (OTLP/JSON) nor base64 of 16 bytes (proto3 JSON mapping)`);
    const missing = file('missing.json', request([{ traceId: TRACE, name: 'a' }]));
    assert.match(await failure(missing), /spans\[0\] \("a"\): spanId missing is neither 16 hex digits/);
  });

  it('names the line of a JSON-lines file that is not an OTLP request', async () => {
    const lines = file('lines.json', `${request([span(TRACE, 'b7ad6b7169203331', 'a')])}\n{"resource_spans":[]}\n[1,2]\n`);
    assert.match(await failure(lines), new RegExp(`^${lines}:3: not OTLP: a JSON array; expected an OTLP ExportTraceServiceRequest`));
    const empty = file('nothing.json', ' \n');
    assert.equal(await failure(empty), `${empty}: holds no spans (the file is empty)`);
  });

  it('replay over a file that is not OTLP fails with the same reason', async () => {
    const rules = file('rules.yaml', 'rules:\n  - id: r\n    severity: low\n    condition: not trace.has(x)\n');
    const notOtlp = file('not-otlp.json', '{"not":"otlp"}');
    const stderr: string[] = [];
    const status = await replayCommand(
      { rules, source: [notOtlp], from: '2000-01-01T00:00:00Z', to: 'now', env: {} },
      { stdout: () => undefined, stderr: (s) => stderr.push(s) },
      { isTTY: false, write: () => true },
    );
    assert.equal(status, 1);
    assert.match(stderr.join('\n'), new RegExp(`${notOtlp}: not OTLP: no "resourceSpans" \\(keys "not"\\)`));
  });
});
