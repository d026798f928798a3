// htm bound to Preact: tagged templates instead of JSX, so the console needs no compiler.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

/** Nanoseconds since the epoch (a decimal string) as an ISO time, to the millisecond. */
export function nanosToIso(nanos) {
  const ms = Number(BigInt(nanos) / 1_000_000n);
  return new Date(ms).toISOString();
}
