/**
 * Rule evaluation throughput: 10, 100 and 1000 rules over 10,000 generated traces
 * of 10–200 spans, on one thread, as spans per CPU-second. Most rules of the larger sets name spans absent
 * from the traces, which the trigger index makes free.
 *
 * The spans are evaluated as a worker's evaluation thread evaluates them: each
 * generated trace is encoded as OTLP protobuf, and decoded by the worker's span
 * decoder (times as 32-bit halves, attributes decoded on first read) just before
 * its evaluation, so its spans are as fresh in the CPU's caches as a worker's are.
 * Only the evaluation is on the clock (the thread's CPU time around each
 * evaluate call); the attributes are read once before it: decoding is the worker
 * bench's to measure, not this one's.
 *
 * A fourth set, 100 rules of which 30 match regexes (`=~`, `!~`, `matches`) against text
 * attributes (routes, user agents, SQL) that the traces of that set carry, measures rule
 * regexes in evaluation (RE2, re2js). Beside it, what the engine costs against JavaScript's
 * RegExp, which rules ran on before: every regex test those 30 rules can make on the
 * traces (each pattern on each span holding its attribute), timed on both engines in
 * alternating passes, as nanoseconds per test. Both must give the same answers.
 *
 * Run: node test/bench/rules-bench.ts  (prints a table and one JSON line)
 * Goals: >= 2M spans/s with 100 rules; 1000 rules at most 3x the cost of 10.
 */
import { nodeFlagsFor, restartWithNodeFlags } from '../../src/cli/node-flags.ts';
import { SpanDecoder } from '../../src/otlp/index.ts';
import { compileRule, createRuleSet } from '../../src/rules/index.ts';
import { compileRegex } from '../../src/rules/regex.ts';
import type { CompiledRule, SpanRecord } from '../../src/rules/index.ts';
import { encodeSpans } from '../helpers/encode-spans.ts';
import { prng } from '../helpers/prng.ts';

const TRACES = 10_000;


const NAMES = [
  'http.server', 'http.client', 'db.query', 'cache.get', 'payment.charge', 'payment.confirm', 'shipment.initiate',
  'inventory.reserve', 'audit.log', 'admin.action', 'email.sent', 'order.placed', 'queue.publish', 'queue.consume',
  'auth.check', 'fraud.check', 'render', 'serialize', 'grpc.call', 'retry',
];
const SERVICES = ['api', 'payments', 'ledger', 'shipping', 'web'].map((s) => ({ 'service.name': s }));

/**
 * An id as the span decoder makes it: a flat string from Buffer#toString('hex')
 * (padStart would make a rope, which every character read has to walk).
 */
function hex(n: number, width: number): string {
  const bytes = Buffer.alloc(width / 2);
  for (let i = bytes.length - 1, v = n; i >= 0 && v > 0; i--, v = Math.floor(v / 256)) bytes[i] = v % 256;
  return bytes.toString('hex');
}

/** Text attributes for the regex rules: an HTTP route, a user agent, an SQL statement. */
const ROUTES = ['/api/v1/users/{id}/orders', '/api/v2/payments/{id}', '/health', '/static/js/app.{id}.js', '/api/v1/admin/tenants/{id}/users?page=3&expand=roles', '/internal/metrics'];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'curl/8.5.0',
  'python-requests/2.32.3',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Googlebot/2.1 (+http://www.google.com/bot.html)',
];
const STATEMENTS = [
  'SELECT id, name, email FROM users WHERE tenant_id = $1 AND id = $2',
  'UPDATE orders SET status = $1 WHERE id = $2 AND tenant_id = $3',
  "SELECT * FROM accounts WHERE password = 'hunter2'",
  'DELETE FROM sessions',
  'INSERT INTO audit_log (tenant_id, actor, action, at) VALUES ($1, $2, $3, now())',
];

export function generateTraces(count: number, seed = 1, text = false): SpanRecord[][] {
  const rnd = prng(seed);
  const pick = (xs: readonly string[]): string => xs[Math.floor(rnd() * xs.length)] as string;
  const traces: SpanRecord[][] = [];
  for (let t = 0; t < count; t++) {
    const traceId = hex(t + 1, 32);
    const n = 10 + Math.floor(rnd() * 191);
    const spans: SpanRecord[] = [];
    const base = 1_700_000_000_000_000_000n + BigInt(t) * 1_000_000_000n;
    for (let i = 0; i < n; i++) {
      const parent = i === 0 ? -1 : Math.floor(rnd() * i);
      const start = i === 0 ? 0 : Math.floor(rnd() * 1e9);
      const dur = Math.floor(rnd() * 5e7);
      spans.push({
        traceId,
        spanId: hex(t * 1000 + i + 1, 16),
        parentSpanId: parent < 0 ? '' : hex(t * 1000 + parent + 1, 16),
        name: NAMES[Math.floor(rnd() * NAMES.length)] as string,
        kind: 1 + Math.floor(rnd() * 3),
        startTimeUnixNano: base + BigInt(start),
        endTimeUnixNano: base + BigInt(start + dur),
        statusCode: rnd() < 0.02 ? 2 : 0,
        statusMessage: '',
        attributes: {
          attempt: 1 + Math.floor(rnd() * 3),
          'order.id': `o${Math.floor(rnd() * 5)}`,
          amount: Math.floor(rnd() * 2000),
          tenant_filter: rnd() < 0.99,
          ...(text
            ? {
                'http.route': pick(ROUTES).replace('{id}', String(Math.floor(rnd() * 100_000))),
                'user_agent.original': pick(AGENTS),
                'db.statement': pick(STATEMENTS),
              }
            : {}),
        },
        resource: SERVICES[Math.floor(rnd() * SERVICES.length)] as Record<string, string>,
      });
    }
    traces.push(spans);
  }
  return traces;
}

/** Each trace as one OTLP export request (a resourceSpans per service). */
export function encodeTraces(traces: readonly SpanRecord[][]): Uint8Array[] {
  return traces.map(encodeSpans);
}

/** The decoder decodeTrace uses: long-lived, as an evaluation thread's is. */
const traceDecoder = new SpanDecoder({ lazyAttributes: true });

/** The spans of an encoded trace as the evaluation thread decodes them, attributes read. */
export function decodeTrace(request: Uint8Array): SpanRecord[] {
  const spans = traceDecoder.decode(request);
  for (const s of spans) if (s.attributes === undefined) throw new Error('unreachable: attributes are an object');
  return spans;
}

/** Conditions over span names that occur in the generated traces. */
const ACTIVE = [
  'trace.has(admin.action) and trace.has(audit.log)',
  'when { trace.has(payment.charge).where(amount > 1000) } always { trace.has(fraud.check) }',
  'trace.every(db.query).where(attempt > 1).satisfies(tenant_filter == true)',
  'not trace.has(http.server).where(span:status == error and resource.service.name in ["payments", "ledger"])',
  'trace.every(shipment.initiate).preceded_by(payment.confirm).on(order.id)',
  'trace.count(retry) <= 12',
  'trace.every(order.placed).followed_by(email.sent).within(500ms)',
  'trace.every(queue.consume).has_ancestor(queue.publish)',
  'trace.has(payment.charge).where(attempt > 1) implies trace.count(payment.charge).distinct(order.id) <= 5',
  'trace.every(http.client).where(amount > 1990).satisfies(span:duration < 40ms)',
];

/** The same shapes over names absent from the traces. */
function absent(i: number): string {
  const x = `svc${i}.op`;
  const y = `svc${i}.dep`;
  switch (i % 4) {
    case 0:
      return `trace.has(${x}) and trace.has(${y})`;
    case 1:
      return `trace.every(${x}).preceded_by(${y})`;
    case 2:
      return `not trace.has(${x}).where(span:status == error)`;
    default:
      return `when { ${x} } always { count(${y}) >= 1 }`;
  }
}

/** The regexes of the regex set: [attribute, pattern], five variants of six shapes (JavaScript and RE2 alike). */
export const REGEXES: readonly (readonly [string, string])[] = Array.from({ length: 5 }, (_, v) => [
  ['http.route', `^/api/v${v}/users/\\d+/orders$`],
  ['http.route', `(?i:^/api/v[0-9]+/admin/tenants/\\d+/users\\?(?:.*&)?page=${v})`],
  ['user_agent.original', `(?i:curl|wget|python-requests|go-http-client)/${v}`],
  ['user_agent.original', `bot|crawler|spider|Chrome/13${v}\\.`],
  ['db.statement', `(?i:^\\s*(delete|truncate)\\s+(from\\s+)?\\w+\\s*;?\\s*$)|password\\s*=\\s*'[^']{${v + 1},}'`],
  ['db.statement', `\\bWHERE\\b.*\\btenant_id\\s*=\\s*\\$${v + 1}\\b`],
]).flat() as [string, string][];

/** A rule per regex, in the shapes rules use them. */
function regexCondition(i: number): string {
  const [attr, pattern] = REGEXES[i] as readonly [string, string];
  const re = JSON.stringify(pattern);
  switch (i % 3) {
    case 0:
      return `not trace.has(*).where(${attr} =~ ${re})`;
    case 1:
      return `trace.every(db.query).where(${attr} matches ${re}).satisfies(tenant_filter == true)`;
    default:
      return `trace.every(http.server).where(${attr} !~ ${re}).satisfies(span:duration < 49ms)`;
  }
}

function ruleSet(n: number, regexes = 0): CompiledRule[] {
  const conditions =
    n <= ACTIVE.length
      ? ACTIVE.slice(0, n)
      : [...ACTIVE, ...Array.from({ length: regexes }, (_, i) => regexCondition(i)), ...Array.from({ length: n - ACTIVE.length - regexes }, (_, i) => absent(i))];
  return conditions.map((condition, i) => {
    const r = compileRule({ id: `r${i}`, name: `rule ${i}`, description: '', severity: 'medium', enabled: true, tags: [], condition });
    if (!r.ok) throw new Error(`${condition}: ${JSON.stringify(r.errors)}`);
    return r.rule;
  });
}

/** CPU time of this process (user + system, every thread: garbage collection helpers too), seconds. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function measure(rules: CompiledRule[], traces: readonly Uint8Array[]): { seconds: number; spans: number; violations: number } {
  const set = createRuleSet(rules);
  let violations = 0;
  let spans = 0;
  let seconds = 0;
  for (const t of traces.slice(0, 1000)) set.evaluate(decodeTrace(t)); // warm-up
  for (const t of traces) {
    const trace = decodeTrace(t);
    const t0 = cpuSeconds();
    violations += set.evaluate(trace).violations.length;
    seconds += cpuSeconds() - t0;
    spans += trace.length;
  }
  return { seconds, spans, violations };
}

interface Tester {
  test(value: string): boolean;
}

/** CPU seconds and matches of every regex tested on every value of its attribute. */
function measureEngine(engines: readonly Tester[], values: ReadonlyMap<string, readonly string[]>): { seconds: number; tests: number; matches: number } {
  let matches = 0;
  let tests = 0;
  const t0 = cpuSeconds();
  for (const [k, [attr]] of REGEXES.entries()) {
    const re = engines[k] as Tester;
    const vs = values.get(attr) as readonly string[];
    for (let i = 0; i < vs.length; i++) if (re.test(vs[i] as string)) matches++;
    tests += vs.length;
  }
  return { seconds: cpuSeconds() - t0, tests, matches };
}

/** The text attributes of the spans of the first `count` traces, by attribute. */
function textValues(traces: readonly Uint8Array[], count: number): Map<string, string[]> {
  const values = new Map<string, string[]>(REGEXES.map(([attr]) => [attr, []]));
  for (const t of traces.slice(0, count)) {
    for (const span of decodeTrace(t)) {
      for (const [attr, list] of values) {
        const v = span.attributes[attr];
        if (typeof v === 'string') list.push(v);
      }
    }
  }
  return values;
}

/**
 * Spans per CPU-second for 10, 100 and 1000 rules and for the regex set, and the regex
 * engines' cost per test, each the median of BENCH_RUNS runs (default 3), taken in turns.
 */
export async function runRulesBench(): Promise<Record<string, number>> {
  await Promise.resolve();
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const traces = encodeTraces(generateTraces(TRACES));
  const textTraces = encodeTraces(generateTraces(TRACES, 1, true));
  measure(ruleSet(100), traces); // warm the JIT up on every code path first
  const regexRules = ruleSet(100, REGEXES.length);
  measure(regexRules, textTraces);
  const sets = new Map([10, 100, 1000].map((n) => [n, ruleSet(n)] as const));
  const seconds = new Map<number | 'regex', number[]>();
  const out: Record<string, number> = {};
  const values = textValues(textTraces, 1000);
  const re2 = REGEXES.map(([, p]) => {
    const r = compileRegex(p);
    if (!r.ok) throw new Error(`${p}: ${r.message}`);
    return r.regex;
  });
  const regexp = REGEXES.map(([, p]) => new RegExp(p));
  const engineSeconds = { re2: [] as number[], regexp: [] as number[] };
  for (const e of [re2, regexp]) measureEngine(e, values); // warm-up
  for (let run = 0; run < runs; run++) {
    for (const [n, rules] of sets) {
      const r = measure(rules, traces);
      seconds.set(n, [...(seconds.get(n) ?? []), r.seconds]);
      out[`rules_${n}_violations`] = r.violations;
      out.spans = r.spans;
    }
    const r = measure(regexRules, textTraces);
    seconds.set('regex', [...(seconds.get('regex') ?? []), r.seconds]);
    out.rules_regex_100_violations = r.violations;
    out.rules_regex_spans = r.spans;
    const a = measureEngine(re2, values);
    const b = measureEngine(regexp, values);
    if (a.matches !== b.matches) throw new Error(`RE2 and RegExp disagree: ${a.matches} against ${b.matches} matches`);
    engineSeconds.re2.push(a.seconds);
    engineSeconds.regexp.push(b.seconds);
    out.regex_tests = a.tests;
    out.regex_matches = a.matches;
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const n of [10, 100, 1000]) out[`rules_${n}_spans_per_s`] = Math.round(out.spans! / median(seconds.get(n)!));
  out.rules_regex_100_spans_per_s = Math.round(out.rules_regex_spans! / median(seconds.get('regex')!));
  out.cost_ratio_1000_vs_10 = Number((median(seconds.get(1000)!) / median(seconds.get(10)!)).toFixed(2));
  out.regex_re2_ns_per_test = Math.round((median(engineSeconds.re2) / out.regex_tests!) * 1e9);
  out.regex_regexp_ns_per_test = Math.round((median(engineSeconds.regexp) / out.regex_tests!) * 1e9);
  out.regex_cost_ratio_re2_vs_regexp = Number((median(engineSeconds.re2) / median(engineSeconds.regexp)).toFixed(2));
  return out;
}

if (import.meta.main) {
  // With the node flags of the evaluation threads of `betrace run` (restarts this process once).
  restartWithNodeFlags(nodeFlagsFor('run', process.env));
  const r = await runRulesBench();
  const rows = [10, 100, 1000].map((n) => `| ${String(n).padStart(5)} | ${String(r[`rules_${n}_spans_per_s`]).padStart(12)} | ${String(r[`rules_${n}_violations`]).padStart(10)} |`);
  rows.push(`| 100 (30 regex) | ${String(r.rules_regex_100_spans_per_s).padStart(12)} | ${String(r.rules_regex_100_violations).padStart(10)} |`);
  console.log(`rules bench: ${TRACES} traces, ${r.spans} spans\n|  rules |     spans/s |  violations |\n|-------:|-----------:|-----------:|\n${rows.join('\n')}\ncost 1000 rules / 10 rules: ${r.cost_ratio_1000_vs_10}x`);
  console.log(`regex tests (${r.regex_tests} per pass, ${r.regex_matches} matches): RE2 ${r.regex_re2_ns_per_test} ns, RegExp ${r.regex_regexp_ns_per_test} ns per test; RE2 / RegExp: ${r.regex_cost_ratio_re2_vs_regexp}x`);
  console.log(JSON.stringify({ bench: 'rules', ...r }));
}
