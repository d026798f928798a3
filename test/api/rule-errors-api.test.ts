/**
 * The admin API's answers to a bad rule, over real HTTP to a started pipeline: INVALID_RULE
 * names every bad field and what it must be (an unknown field with the closest one), and
 * INVALID_CONDITION names a function or step the language does not have, at its line:column.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

interface ApiError {
  error: { code: string; message: string; line?: number; column?: number; errors?: Array<{ path: string; message: string }> };
}

async function post(base: string, body: unknown): Promise<{ status: number; body: ApiError }> {
  const res = await fetch(`${base}/v1/rules`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as ApiError };
}

describe('rule errors of the admin API', () => {
  let betrace: TestPipeline;
  before(async () => {
    betrace = await startTestPipeline();
  });
  after(async () => {
    await betrace.stop();
  });

  it('INVALID_RULE names an unknown field with the closest allowed one, and what each bad field must be', async () => {
    const r = await post(betrace.apiUrl, { id: 'typo', severty: 'high', condition: 'true', enabled: 'yes', tags: ['a', 7] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_RULE');
    assert.deepEqual(r.body.error.errors, [
      { path: '/severity', message: 'severity is required: one of critical, high, medium, low, info' },
      { path: '/severty', message: 'unknown key severty (did you mean severity?)' },
      { path: '/enabled', message: 'enabled must be true or false, got "yes"' },
      { path: '/tags/1', message: 'tags[1] must be a string of at most 128 characters, got 7' },
    ]);
    assert.equal(
      r.body.error.message,
      'the rule is not valid: severity is required: one of critical, high, medium, low, info; unknown key severty (did you mean severity?); enabled must be true or false, got "yes"; tags[1] must be a string of at most 128 characters, got 7',
    );
  });

  it('INVALID_RULE says the allowed values and the id form', async () => {
    const r = await post(betrace.apiUrl, { id: 'Bad Id', severity: 'hihg', condition: 'true', extra: 1 });
    assert.equal(r.status, 400);
    assert.deepEqual(
      r.body.error.errors?.map((e) => e.message),
      [
        'unknown key extra (allowed: id, name, description, severity, enabled, tags, message, condition, alerts)',
        'id must be a string matching ^[a-z0-9][a-z0-9._-]*$, of at most 128 characters, got "Bad Id"',
        'severity must be one of critical, high, medium, low, info, got "hihg" (did you mean high?)',
      ],
    );
  });

  it('INVALID_CONDITION names an unknown function or step at its line and column', async () => {
    const fn = await post(betrace.apiUrl, { id: 'fn', severity: 'low', condition: 'trace.has(admin.action)\n  implies trace.hsa(audit.log)' });
    assert.equal(fn.status, 400);
    assert.equal(fn.body.error.code, 'INVALID_CONDITION');
    assert.deepEqual([fn.body.error.line, fn.body.error.column, fn.body.error.message], [2, 11, 'unknown function trace.hsa (did you mean trace.has?)']);
    const step = await post(betrace.apiUrl, { id: 'step', severity: 'low', condition: 'trace.every(order.placed).folowed_by(email.sent)' });
    assert.equal(step.body.error.code, 'INVALID_CONDITION');
    assert.deepEqual([step.body.error.line, step.body.error.column, step.body.error.message], [1, 26, 'unknown step .folowed_by (did you mean .followed_by?)']);
  });
});
