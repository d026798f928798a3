/**
 * betrace's version: package.json's, the one fact both the command line (`--version`) and the
 * violation spans (instrumentation scope version) state. Read beside the sources in a clone and
 * beside dist/ in the package, both one level below package.json.
 */
import { readFileSync } from 'node:fs';

export const BETRACE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
