/** The diagnostic codes are a closed list, each documented: the user reference has a table row for every one. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, WARNING_CODES } from '../../src/rules/index.ts';
import { describe, it } from './node-test.ts';

const readme = readFileSync(new URL('../../src/rules/README.md', import.meta.url), 'utf8');

describe('the rule language reference', () => {
  for (const code of [...Object.keys(ERROR_CODES), ...Object.keys(WARNING_CODES)]) {
    it(`documents ${code}`, () => assert.ok(readme.includes(`| \`${code}\` |`), code));
  }
});
