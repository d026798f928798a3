/**
 * The OpenAPI document is built by @fastify/swagger from the route schemas: it lists
 * every route fastify serves, each with its summary and its answers (a route without a
 * schema would show only swagger's default response), and src/api/openapi.json is
 * that document (regenerated with `node src/api/openapi-document.ts > src/api/openapi.json`).
 * The route table of src/api/README.md names the same routes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { everyRoute } from '../../src/api/openapi-document.ts';

const apiDir = join(import.meta.dirname, '..', '..', 'src', 'api');

interface Operation {
  summary?: string;
  responses?: Record<string, { description?: string }>;
}

describe('the OpenAPI document', () => {
  it('lists every route fastify serves, each with a summary and its answers, and nothing else', async () => {
    const api = everyRoute();
    const doc = (await api.document()) as { paths: Record<string, Record<string, Operation>> };
    const served = api.served().map((r) => `${r.method} ${r.url}`).sort();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    assert.equal(served.length, 18, served.join(', '));
    assert.deepEqual(documented, served);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method.toUpperCase()} ${path}`;
        assert.ok(op.summary !== undefined && op.summary !== '', `${where} has a summary`);
        const answers = Object.entries(op.responses ?? {});
        assert.ok(answers.length > 0, `${where} documents its answers`);
        for (const [status, r] of answers) assert.notEqual(r.description, 'Default Response', `${where} ${status} is described by its route`);
      }
    }
  });

  it('is the one kept in the repository (src/api/openapi.json)', async () => {
    const file = JSON.parse(readFileSync(join(apiDir, 'openapi.json'), 'utf8')) as unknown;
    assert.deepEqual(file, await everyRoute().document(), 'src/api/openapi.json is stale: node src/api/openapi-document.ts > src/api/openapi.json');
  });

  it('names the routes of the README table', async () => {
    const readme = readFileSync(join(apiDir, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('| method and path |'), readme.indexOf('**Rules have two sources.**'));
    const api = everyRoute();
    await api.document();
    for (const { method, url } of api.served()) {
      // The table writes `…/disable` for the route beside `POST /v1/rules/{id}/enable`.
      const named = table.includes(`${method} ${url}`) || (url.endsWith('/disable') && table.includes('`…/disable`'));
      assert.ok(named, `src/api/README.md's table names ${method} ${url}`);
    }
  });
});
