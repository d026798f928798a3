/**
 * A conservative check for regular expressions that can backtrack catastrophically
 * (ReDoS). Rule regexes are matched against span data that nobody controls, so a
 * pattern is refused when it has any of:
 *
 * - a repeated group containing a variable repetition of its own (star height > 1):
 *   `(a+)+`, `(a*b)*`, `(\w+\s?)*`, `(.*a){10}`;
 * - a repeated group whose alternatives can start with the same character:
 *   `(a|a)*`, `(a|ab)+`, `(\d|1)*` (ambiguity under repetition);
 * - a back-reference (`\1`, `\k<name>`).
 *
 * This refuses some harmless patterns (`(ab*c)+`); rewrite them without nesting.
 * It does not catch polynomial cases such as `.*a.*b.*c` over very long values.
 */

interface Quant {
  readonly min: number;
  readonly max: number;
}
type Atom =
  | { kind: 'char'; ch: string; q: Quant }
  | { kind: 'class'; source: string; q: Quant }
  | { kind: 'group'; alts: Atom[][]; lookaround: boolean; q: Quant }
  | { kind: 'assert'; q: Quant }
  | { kind: 'backref'; q: Quant };

const ONE: Quant = { min: 1, max: 1 };

class RegexReader {
  readonly #src: string;
  #i = 0;
  constructor(src: string) {
    this.#src = src;
  }

  parse(): Atom[][] {
    return this.#alternatives();
  }

  #alternatives(): Atom[][] {
    const alts: Atom[][] = [[]];
    while (this.#i < this.#src.length) {
      const c = this.#src[this.#i];
      if (c === ')') break;
      if (c === '|') {
        this.#i++;
        alts.push([]);
        continue;
      }
      const atom = this.#atom();
      alts[alts.length - 1]?.push(atom);
    }
    return alts;
  }

  #atom(): Atom {
    const src = this.#src;
    const c = src[this.#i++] ?? '';
    let atom: Atom;
    if (c === '(') {
      let lookaround = false;
      if (src.startsWith('?:', this.#i)) this.#i += 2;
      else if (src.startsWith('?=', this.#i) || src.startsWith('?!', this.#i)) {
        lookaround = true;
        this.#i += 2;
      } else if (src.startsWith('?<=', this.#i) || src.startsWith('?<!', this.#i)) {
        lookaround = true;
        this.#i += 3;
      } else if (src.startsWith('?<', this.#i)) {
        const end = src.indexOf('>', this.#i);
        this.#i = end < 0 ? src.length : end + 1;
      } else if (src[this.#i] === '?') {
        // modifiers group (?i:…)
        const end = src.indexOf(':', this.#i);
        this.#i = end < 0 ? src.length : end + 1;
      }
      const alts = this.#alternatives();
      if (src[this.#i] === ')') this.#i++;
      atom = { kind: 'group', alts, lookaround, q: ONE };
    } else if (c === '[') {
      const start = this.#i - 1;
      if (src[this.#i] === '^') this.#i++;
      if (src[this.#i] === ']') this.#i++;
      while (this.#i < src.length && src[this.#i] !== ']') {
        if (src[this.#i] === '\\') this.#i++;
        this.#i++;
      }
      this.#i++;
      atom = { kind: 'class', source: src.slice(start, this.#i), q: ONE };
    } else if (c === '\\') {
      const e = src[this.#i++] ?? '';
      if (/[1-9]/.test(e) || (e === 'k' && src[this.#i] === '<')) atom = { kind: 'backref', q: ONE };
      else if (e === 'b' || e === 'B') atom = { kind: 'assert', q: ONE };
      else if (/[dDwWsS]/.test(e)) atom = { kind: 'class', source: `\\${e}`, q: ONE };
      else if (e === 'u' || e === 'x' || e === 'c' || e === 'p' || e === 'P') {
        const m = /^(?:u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|c[A-Za-z]|[pP]\{[^}]*\})/.exec(src.slice(this.#i - 1));
        const text = m?.[0] ?? e;
        this.#i += text.length - 1;
        atom = { kind: 'class', source: `\\${text}`, q: ONE };
      } else atom = { kind: 'char', ch: e, q: ONE };
    } else if (c === '.') {
      atom = { kind: 'class', source: '.', q: ONE };
    } else if (c === '^' || c === '$') {
      atom = { kind: 'assert', q: ONE };
    } else {
      atom = { kind: 'char', ch: c, q: ONE };
    }
    const q = this.#quantifier();
    return q === null ? atom : { ...atom, q };
  }

  #quantifier(): Quant | null {
    const src = this.#src;
    const c = src[this.#i];
    let q: Quant | null = null;
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(this.#i));
      if (m === null) return null;
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      this.#i += m[0].length - 1;
      q = { min, max };
    }
    if (q === null) return null;
    this.#i++;
    if (src[this.#i] === '?') this.#i++; // lazy
    return q;
  }
}

const repeats = (q: Quant): boolean => q.max > 1;
const varies = (q: Quant): boolean => q.max > 1 && q.max !== q.min;

function containsVariableRepetition(alts: readonly Atom[][]): boolean {
  for (const alt of alts) {
    for (const a of alt) {
      if (a.kind === 'assert' || (a.kind === 'group' && a.lookaround)) continue;
      if (varies(a.q)) return true;
      if (a.kind === 'group' && containsVariableRepetition(a.alts)) return true;
    }
  }
  return false;
}

/** What the first character an alternative consumes can be: a literal, or "many". */
function firstChar(alt: readonly Atom[]): { ch: string } | { tester: RegExp | null } {
  for (const a of alt) {
    if (a.kind === 'assert' || (a.kind === 'group' && a.lookaround)) continue;
    if (a.q.min === 0) return { tester: null };
    if (a.kind === 'char') return { ch: a.ch };
    if (a.kind === 'class') {
      try {
        return { tester: new RegExp(`^${a.source}$`) };
      } catch {
        return { tester: null };
      }
    }
    if (a.kind === 'group' && a.alts.length === 1 && a.alts[0] !== undefined) return firstChar(a.alts[0]);
    return { tester: null };
  }
  return { tester: null }; // matches the empty string
}

function overlaps(a: readonly Atom[], b: readonly Atom[]): boolean {
  const fa = firstChar(a);
  const fb = firstChar(b);
  if ('ch' in fa && 'ch' in fb) return fa.ch === fb.ch;
  if ('ch' in fa && 'tester' in fb) return fb.tester === null || fb.tester.test(fa.ch);
  if ('tester' in fa && 'ch' in fb) return fa.tester === null || fa.tester.test(fb.ch);
  return true;
}

function findUnsafe(alts: readonly Atom[][]): string | null {
  for (const alt of alts) {
    for (const a of alt) {
      if (a.kind === 'backref') return 'back-references can take exponential time';
      if (a.kind !== 'group') continue;
      if (repeats(a.q) && !a.lookaround) {
        if (containsVariableRepetition(a.alts)) {
          return 'a repeated group contains a repetition of its own (like (a+)+), which can take exponential time';
        }
        for (let i = 0; i < a.alts.length; i++) {
          for (let j = i + 1; j < a.alts.length; j++) {
            const x = a.alts[i];
            const y = a.alts[j];
            if (x !== undefined && y !== undefined && overlaps(x, y)) {
              return 'a repeated group has alternatives that can match the same text (like (a|ab)*), which can take exponential time';
            }
          }
        }
      }
      const inner = findUnsafe(a.alts);
      if (inner !== null) return inner;
    }
  }
  return null;
}

/** Returns why `pattern` is unsafe, or null if it passes the check. Assumes it compiles. */
export function unsafeRegexReason(pattern: string): string | null {
  return findUnsafe(new RegexReader(pattern).parse());
}
