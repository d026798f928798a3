/**
 * What a value should look like, in words, and the closest name to a misspelt one: shared by
 * the configuration loader, the admin API's rule validation and the rule language, so a bad
 * value is answered the same way everywhere ("must be a duration like "5s" or "500ms", got 5";
 * "unknown key x (did you mean y?)").
 */

/** The JSON Schema keywords a message is built from (the config schema's nodes and the API's OpenAPI schemas). */
export interface ExpectedSchema {
  readonly type?: string | readonly string[];
  readonly format?: string;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly maxItems?: number;
  readonly items?: ExpectedSchema;
  readonly oneOf?: readonly ExpectedSchema[];
  readonly anyOf?: readonly ExpectedSchema[];
  readonly default?: unknown;
}

/** The value forms of the config schema's `format`s, in words. */
export const FORMAT_WORDS: Readonly<Record<string, string>> = {
  duration: 'a duration with a unit, like "5s" or "500ms" (units ns, us, ms, s, m, h, d)',
  size: 'a size like "64MiB" (units B, KB, MB, GB, KiB, MiB, GiB) or a number of bytes',
  endpoint: 'host:port like "127.0.0.1:4317" (port 0-65535)',
};

function bounds(what: string, min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `${what} from ${min} to ${max}`;
  if (min !== undefined) return `${what} >= ${min}`;
  if (max !== undefined) return `${what} <= ${max}`;
  return what;
}

/** The form a value of `schema` takes, as a noun phrase: "an integer from 1 to 64", "one of "a", "b"". */
export function expectedForm(schema: ExpectedSchema): string {
  if (schema.format !== undefined && FORMAT_WORDS[schema.format] !== undefined) {
    const words = FORMAT_WORDS[schema.format]!;
    // An endpoint's example is its own default when it has one.
    return schema.format === 'endpoint' && typeof schema.default === 'string' && schema.default !== ''
      ? words.replace('"127.0.0.1:4317"', JSON.stringify(schema.default))
      : words;
  }
  if (schema.enum !== undefined) return `one of ${schema.enum.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives !== undefined) return alternatives.map(expectedForm).join(', or ');
  const type: readonly string[] = typeof schema.type === 'string' ? [schema.type] : (schema.type ?? []);
  if (type.length !== 1) return type.length === 0 ? 'a value' : type.map((t) => expectedForm({ type: t })).join(', or ');
  switch (type[0]) {
    case 'integer':
      return bounds('an integer', schema.minimum, schema.maximum);
    case 'number':
      return bounds('a number', schema.minimum, schema.maximum);
    case 'boolean':
      return 'true or false';
    case 'string': {
      const parts: string[] = [];
      if (schema.pattern !== undefined) parts.push(`matching ${schema.pattern}`);
      if (schema.maxLength !== undefined) parts.push(`of at most ${schema.maxLength} characters`);
      return `${schema.minLength !== undefined && schema.minLength > 0 ? 'a non-empty string' : 'a string'}${parts.length > 0 ? ` ${parts.join(', ')}` : ''}`;
    }
    case 'array': {
      // The items' example is the list's first default.
      const first: unknown = Array.isArray(schema.default) ? schema.default[0] : undefined;
      const item = schema.items === undefined ? 'values' : plural(expectedForm(first === undefined ? schema.items : { ...schema.items, default: first }));
      return `a list of ${item}${schema.maxItems !== undefined ? ` (at most ${schema.maxItems})` : ''}`;
    }
    case 'object':
      return 'a mapping (key: value)';
    case 'null':
      return 'null';
    default:
      return `a ${type[0]}`;
  }
}

/** "a non-empty string" → "non-empty strings", "host:port like …" → "host:port endpoints like …". */
function plural(form: string): string {
  if (form.startsWith('host:port')) return form.replace('host:port', 'host:port endpoints');
  const noun = /\b(string|integer|number|duration|size|list|mapping)\b/;
  return /^an? /.test(form) && noun.test(form) ? form.replace(/^an? /, '').replace(noun, '$1s') : `values: ${form}`;
}

/** JSON text of a value for "got …" (undefined and functions as their names). */
export function shown(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** The candidate closest to `word` by edit distance, when it is close enough to be the one meant. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  // One edit in a short word, up to three in a long one: "hsa" → "has", never "z" → "or".
  return bestDistance > 0 && bestDistance < word.length && bestDistance <= Math.max(1, Math.min(3, Math.floor(word.length / 3))) ? best : undefined;
}

/** " (did you mean x?)" for the closest candidate, else "". */
export function didYouMean(word: string, candidates: Iterable<string>, render: (c: string) => string = (c) => c): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean ${render(c)}?)`;
}

/** Levenshtein distance, with a transposition counted as one edit ("hsa" → "has"). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The fields of an ajv error these messages are built from (ajv with `verbose: true`, for data and parentSchema). */
export interface SchemaError {
  readonly keyword: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly data?: unknown;
  readonly parentSchema?: unknown;
  readonly message?: string;
}

export interface SchemaErrorMessage {
  /** Keys from the root to the value (or to the unknown or missing key). */
  readonly parts: readonly string[];
  /** The key path as written in messages: a.b[1].c. */
  readonly path: string;
  readonly message: string;
  /** Names a key that should not be there (positioned at the key, not its value). */
  readonly unknownKey: boolean;
}

/** a.b[1].c: list items by index, keys dotted. */
export function displayPath(parts: readonly string[]): string {
  return parts.map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * One message per value from ajv's errors (`allErrors` gives several for one value: a oneOf
 * and its branches, a type and a format), each naming the key path and what the value must
 * be: "worker.trace_idle_timeout must be a duration with a unit, like "5s" or "500ms", got 5",
 * "unknown key log.levl (did you mean log.level?)". `nodeAt` gives the schema of a key path
 * when the error's own parentSchema is not the one to describe (a oneOf's branch).
 */
export function schemaErrorMessages(
  errors: readonly SchemaError[],
  nodeAt: (parts: readonly string[]) => ExpectedSchema | undefined = () => undefined,
): SchemaErrorMessage[] {
  const out = new Map<string, SchemaErrorMessage>();
  const at = (parts: readonly string[], what: (path: string) => string, unknownKey: boolean): void => {
    const key = parts.join('\u0000');
    if (!out.has(key)) out.set(key, { parts, path: displayPath(parts), message: what(displayPath(parts)), unknownKey });
  };
  for (const e of errors) {
    const parts = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const parent = e.parentSchema as { properties?: Record<string, ExpectedSchema> } | undefined;
    if (e.keyword === 'additionalProperties') {
      const key = String(e.params.additionalProperty);
      const known = Object.keys(parent?.properties ?? {});
      const hint = didYouMean(key, known, (k) => displayPath([...parts, k])) || (known.length > 0 ? ` (allowed: ${known.join(', ')})` : '');
      at([...parts, key], (path) => `unknown key ${path}${hint}`, true);
    } else if (e.keyword === 'required') {
      const key = String(e.params.missingProperty);
      const node = nodeAt([...parts, key]) ?? parent?.properties?.[key];
      at([...parts, key], (path) => `${path} is required${node === undefined ? '' : `: ${expectedForm(node)}`}`, false);
    } else {
      const node = nodeAt(parts) ?? (e.parentSchema as ExpectedSchema | undefined);
      const expected = node === undefined ? (e.message ?? 'valid') : expectedForm(node);
      const hint = node?.enum !== undefined && typeof e.data === 'string' ? didYouMean(e.data, node.enum.map(String)) : '';
      at(parts, (path) => `${path || 'the value'} must be ${expected}, got ${shown(e.data)}${hint}`, false);
    }
  }
  return [...out.values()];
}
