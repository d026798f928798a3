/** The user reference documents every diagnostic code (STYLE.md §5). */
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
