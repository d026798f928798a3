/** Values and attributes (src/rules/README.md), one behaviour per test. */
import assert from 'node:assert/strict';
import { describe, it } from './node-test.ts';
import { holds, span } from './trace.ts';

const one = (attrs: Record<string, unknown>, resource: Record<string, unknown> = {}) =>
  [span('a', { attrs: attrs as never, resource: resource as never })];
const sat = (pred: string, attrs: Record<string, unknown>, resource: Record<string, unknown> = {}) =>
  holds(`trace.every(a).satisfies(${pred})`, one(attrs, resource));

describe('missing attributes', () => {
  it('make == false', () => assert.equal(sat('x == 1', {}), false));
  it('make != false too (present and not equal)', () => {
    assert.equal(sat('x != 1', {}), false);
    assert.equal(sat('x != 1', { x: 2 }), true);
  });
  it('make ordering comparisons false', () => assert.equal(sat('x < 1 or x >= 1', {}), false));
  it('are inverted by not', () => assert.equal(sat('not (x == 1)', {}), true));
  it('are tested by exists', () => {
    assert.equal(sat('exists(x)', {}), false);
    assert.equal(sat('exists(x)', { x: false }), true);
  });
  it('make regex, in, not in and contains false', () => {
    assert.equal(sat('x =~ "a" or x !~ "a" or x in [1] or x not in [1] or x contains "a"', {}), false);
  });
  it('do not see Object.prototype members', () => {
    assert.equal(sat('exists(constructor) or exists(toString) or exists(__proto__)', {}), false);
    assert.equal(sat('constructor == "x"', { constructor: 'x' }), true);
  });
});

describe('attribute lookup', () => {
  it('reads a bare key from the span first', () => assert.equal(sat('k == "span"', { k: 'span' }, { k: 'res' }), true));
  it('falls back to the resource for a bare key', () => assert.equal(sat('k == "res"', {}, { k: 'res' }), true));
  it('reads span.k from the span only', () => {
    assert.equal(sat('span.k == "res"', {}, { k: 'res' }), false);
    assert.equal(sat('span.k == 1', { k: 1 }), true);
  });
  it('reads resource.k from the resource only', () => {
    assert.equal(sat('resource.k == 1', { k: 1 }), false);
    assert.equal(sat('resource.service.name == api', {}, { 'service.name': 'api' }), true);
  });
  it('reads dotted keys as one key', () => assert.equal(sat('http.status_code == 200', { 'http.status_code': 200 }), true));
  it('reads any key through a quoted string, without prefix splitting', () => {
    assert.equal(sat('"card type" == visa', { 'card type': 'visa' }), true);
    assert.equal(sat('"span.k" == 1', { 'span.k': 1 }), true);
    assert.equal(sat('"span.k" == 1', { k: 1 }), false);
  });
  it('reads a bare word on the right as a string', () => assert.equal(sat('operation == write', { operation: 'write' }), true));
});

describe('booleans', () => {
  it('compare with true/false literals', () => {
    assert.equal(sat('ok == true', { ok: true }), true);
    assert.equal(sat('ok == false', { ok: true }), false);
    assert.equal(sat('ok != false', { ok: true }), true);
  });
  it('the strings "true" and "false" equal the literals', () => {
    assert.equal(sat('ok == true', { ok: 'true' }), true);
    assert.equal(sat('ok == false', { ok: 'false' }), true);
    assert.equal(sat('ok == "true"', { ok: true }), true);
  });
  it('other strings are not comparable with a boolean', () => {
    assert.equal(sat('ok == true', { ok: 'yes' }), false);
    assert.equal(sat('ok != true', { ok: 'yes' }), false);
  });
});

describe('numbers', () => {
  it('compare numerically, int and double alike', () => {
    assert.equal(sat('n == 2', { n: 2.0 }), true);
    assert.equal(sat('n > 1.5 and n < 2.5 and n >= 2 and n <= 2', { n: 2 }), true);
  });
  it('numeric strings compare numerically with number literals', () => {
    assert.equal(sat('n > 10', { n: '42' }), true);
    assert.equal(sat('n == 42', { n: ' 42 ' }), true);
  });
  it('non-numeric strings make the comparison false, != included', () => {
    assert.equal(sat('n > 10', { n: 'abc' }), false);
    assert.equal(sat('n != 10', { n: 'abc' }), false);
  });
  it('a numeric attribute equals a numeric string literal', () => assert.equal(sat('code == "500"', { code: 500 }), true));
  it('a boolean is not comparable with a number', () => assert.equal(sat('n == 1 or n != 1', { n: true }), false));
  it('strings compare as strings with string literals', () => {
    assert.equal(sat('v < "b"', { v: 'a' }), true);
    assert.equal(sat('v == "A"', { v: 'a' }), false);
  });
});

describe('durations', () => {
  const timed = (ms: number) => [span('a', { start: 10, end: 10 + ms })];
  it('compare with span:duration', () => {
    assert.equal(holds('trace.every(a).satisfies(span:duration < 500ms)', timed(499)), true);
    assert.equal(holds('trace.every(a).satisfies(span:duration < 500ms)', timed(500)), false);
    assert.equal(holds('trace.every(a).satisfies(span:duration == 2s)', timed(2000)), true);
  });
  it('read numeric attributes as nanoseconds', () => {
    assert.equal(sat('latency > 1ms', { latency: 2_000_000 }), true);
    assert.equal(sat('latency > 1ms', { latency: 999_999 }), false);
    assert.equal(sat('latency == 1.5us', { latency: 1500 }), true);
  });
  it('support every unit', () => {
    assert.equal(sat('a == 1ns and b == 1us and c == 1ms and d == 1s and e == 1m and f == 1h', {
      a: 1, b: 1e3, c: 1e6, d: 1e9, e: 60e9, f: 3600e9,
    }), true);
  });
  it('a plain number compared with span:duration is nanoseconds', () => {
    assert.equal(holds('trace.every(a).satisfies(span:duration == 3000000)', timed(3)), true);
  });
});

describe('arrays', () => {
  const tags = { tags: ['a', 'b', 3] };
  it('contains tests membership', () => {
    assert.equal(sat('tags contains "b"', tags), true);
    assert.equal(sat('tags contains "c"', tags), false);
    assert.equal(sat('tags contains 3', tags), true);
  });
  it('== is true if any element is equal', () => assert.equal(sat('tags == "a"', tags), true));
  it('!= is true if no element is equal', () => {
    assert.equal(sat('tags != "a"', tags), false);
    assert.equal(sat('tags != "z"', tags), true);
  });
  it('regex matches if any element matches', () => {
    assert.equal(sat('tags =~ "^b$"', tags), true);
    assert.equal(sat('tags !~ "^b$"', tags), false);
  });
  it('in / not in use the element semantics', () => {
    assert.equal(sat('tags in ["x", "b"]', tags), true);
    assert.equal(sat('tags not in ["x", "y"]', tags), true);
    assert.equal(sat('tags not in ["x", "a"]', tags), false);
  });
});

describe('strings and regexes', () => {
  it('contains is a substring test', () => {
    assert.equal(sat('table contains "tenant_data"', { table: 'public.tenant_data_v2' }), true);
    assert.equal(sat('table contains "tenant_data"', { table: 'public.users' }), false);
  });
  it('regexes are unanchored searches', () => {
    assert.equal(sat('route =~ "api"', { route: '/v1/api/users' }), true);
    assert.equal(sat('route =~ "^/api/"', { route: '/v1/api/users' }), false);
    assert.equal(sat('route matches "^/v1/"', { route: '/v1/api/users' }), true);
  });
  it('!~ is present and not matching', () => {
    assert.equal(sat('route !~ "^/api/"', { route: '/v1' }), true);
    assert.equal(sat('route !~ "^/api/"', { route: '/api/x' }), false);
  });
  it('matches numbers as text', () => assert.equal(sat('code =~ "^5"', { code: 503 }), true));
  it('in is equality with any listed value', () => {
    assert.equal(sat('env in [prod, "staging"]', { env: 'staging' }), true);
    assert.equal(sat('env in [prod, "staging"]', { env: 'dev' }), false);
    assert.equal(sat('env not in [prod, "staging"]', { env: 'dev' }), true);
  });
  it('kvlist values compare with nothing', () => assert.equal(sat('m == 1 or m != 1 or m contains "a"', { m: { a: 1 } }), false));
});

describe('intrinsics', () => {
  const s = [span('checkout', { status: 'error', kind: 'server', resource: { 'service.name': 'shop' }, start: 0, end: 5 })];
  it('span:name', () => assert.equal(holds('trace.every(checkout).satisfies(span:name == checkout)', s), true));
  it('span:status', () => {
    assert.equal(holds('trace.every(checkout).satisfies(span:status == error)', s), true);
    assert.equal(holds('trace.every(checkout).satisfies(span:status != ok)', s), true);
    assert.equal(holds('trace.every(*).satisfies(span:status == unset)', [span('x')]), true);
  });
  it('span:kind', () => {
    assert.equal(holds('trace.every(checkout).satisfies(span:kind == server)', s), true);
    assert.equal(holds('trace.every(checkout).satisfies(span:kind in [client, consumer])', s), false);
  });
  it('span:service is the resource service.name', () => {
    assert.equal(holds('trace.every(checkout).satisfies(span:service == shop)', s), true);
    assert.equal(holds('trace.every(x).satisfies(exists(span:service))', [span('x')]), false);
  });
  it('span:duration is end − start', () => assert.equal(holds('trace.every(checkout).satisfies(span:duration == 5ms)', s), true));
});
