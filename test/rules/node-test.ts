/**
 * node:test's describe/it return promises that the runner itself awaits; these
 * wrappers say so, so that no-floating-promises stays on for real promises.
 * (Alternative: allowForKnownSafeCalls for node:test in eslint.config.js.)
 */
import { describe as nodeDescribe, it as nodeIt } from 'node:test';

export function describe(name: string, fn: () => void): void {
  void nodeDescribe(name, fn);
}

export function it(name: string, fn: () => void | Promise<void>): void {
  void nodeIt(name, fn);
}
