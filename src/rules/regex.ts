/**
 * Rule regexes (`=~`, `!~`, `matches`). They are matched against span data that nobody
 * controls, so they run on RE2 (re2js, pure JavaScript): matching takes time linear in the
 * length of the value whatever the pattern, and no pattern can backtrack. The syntax is
 * RE2's; what RE2 cannot match in linear time — back-references, lookahead, lookbehind,
 * atomic groups, possessive quantifiers — is refused at load with the position of the
 * construct and the reason.
 *
 * Patterns keep the meaning they had as JavaScript RegExps where RE2 differs: `.` does not
 * match \r, U+2028, U+2029 (RE2's only excludes \n) unless the s flag is on; `\s`/`\S` are
 * JavaScript's whitespace (RE2's are ASCII); `\uXXXX` (surrogate pairs included) and
 * `\u{X…}` become `\x{…}`, `\cX` the control character, `[^]` any character. `[]` (never
 * matches in JavaScript, an unclosed class in RE2) is refused. Characters are code points,
 * not UTF-16 code units (`^.$` matches one emoji). Matching is an unanchored search, as
 * RegExp.test was.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

/** A compiled rule regex: `test` is true when the pattern matches somewhere in the value. */
export interface RuleRegex {
  test(value: string): boolean;
}

export type RegexResult =
  | { readonly ok: true; readonly regex: RuleRegex }
  /** `index` is the position in the pattern (UTF-16 code units) of the construct at fault. */
  | { readonly ok: false; readonly index: number; readonly message: string };

/**
 * The largest RE2 program a rule regex may compile to. Matching is linear in the value, but
 * where the DFA gives up (large counted repeats of classes) each character costs a step per
 * instruction: `.{1000}` is 1,002 instructions and about 0.1 s on a 4,096-character value,
 * `\p{L}{1000}` more. RE2 itself bounds its programs the same way (max_mem); typical rule
 * regexes are well under a hundred.
 */
export const MAX_REGEX_PROGRAM_SIZE = 5000;

const WHY = 'rule regexes run on RE2, which never backtracks and so matches in time linear in the length of the value';

const hex = (n: number): string => `\\x{${n.toString(16).toUpperCase()}}`;
const isHex4 = (s: string): boolean => /^[0-9a-fA-F]{4}$/.test(s);
const REPEAT = /\{\d+(?:,\d*)?\}/y;
const BRACED_U = /\\u\{([0-9a-fA-F]{1,6})\}/y;
/** A group that sets flags, `(?is-m:` or `(?s)`; `(?:` included. */
const FLAGS_GROUP = /\(\?([imsU]*)(?:-([imsU]*))?([:)])/y;
/** JavaScript's `\s` (WhiteSpace and LineTerminator), as class contents, and its complement. */
const JS_SPACE = '\\t\\n\\v\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}';
const JS_NON_SPACE =
  '\\x{0}-\\x{8}\\x{E}-\\x{1F}\\x{21}-\\x{9F}\\x{A1}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}\\x{3001}-\\x{FEFE}\\x{FF00}-\\x{10FFFF}';
/** JavaScript's `.` without the s flag: anything but a line terminator (RE2's excludes only \n). */
const JS_DOT = '[^\\n\\r\\x{2028}\\x{2029}]';

/** RE2's `[:alpha:]` inside a class (in JavaScript, characters of the class). */
const POSIX_CLASS = /\[:\^?[a-z]+:\]/y;

const matchAt = (re: RegExp, text: string, at: number): RegExpExecArray | null => {
  re.lastIndex = at;
  return re.exec(text);
};

/** Rewrites the JavaScript spellings above, or says where the pattern uses what RE2 cannot do. */
function translate(pattern: string): { source: string } | { index: number; message: string } {
  let out = '';
  let inClass = false;
  let afterRepeat = false;
  /** Whether `.` matches line terminators here (the s flag), and its value outside each open group. */
  let dotAll = false;
  const groups: boolean[] = [];
  let i = 0;
  const fail = (index: number, what: string): { index: number; message: string } => ({ index, message: `${what} is not supported: ${WHY}` });
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined) {
        out += c;
        i++;
        continue;
      }
      if (!inClass && n >= '1' && n <= '9') return fail(i, `the back-reference \\${n}`);
      if (n === 'k' && pattern[i + 2] === '<') return fail(i, 'the named back-reference \\k<…>');
      if (n === 'u') {
        const braced = matchAt(BRACED_U, pattern, i);
        if (braced !== null) {
          out += `\\x{${braced[1] as string}}`;
          i += braced[0].length;
          afterRepeat = false;
          continue;
        }
        const four = pattern.slice(i + 2, i + 6);
        if (isHex4(four)) {
          const unit = parseInt(four, 16);
          const low = pattern.slice(i + 8, i + 12);
          if (unit >= 0xd800 && unit <= 0xdbff && pattern.startsWith('\\u', i + 6) && isHex4(low) && parseInt(low, 16) >= 0xdc00 && parseInt(low, 16) <= 0xdfff) {
            out += hex(0x10000 + ((unit - 0xd800) << 10) + (parseInt(low, 16) - 0xdc00));
            i += 12;
          } else if (unit >= 0xd800 && unit <= 0xdfff) {
            return { index: i, message: `\\u${four} is half of a surrogate pair, not a character; write the whole pair or \\x{…} with the code point` };
          } else {
            out += hex(unit);
            i += 6;
          }
          afterRepeat = false;
          continue;
        }
      }
      if (n === 's' || n === 'S') {
        out += inClass ? (n === 's' ? JS_SPACE : JS_NON_SPACE) : `[${n === 's' ? '' : '^'}${JS_SPACE}]`;
        i += 2;
        afterRepeat = false;
        continue;
      }
      if (n === 'c' && /^[A-Za-z]$/.test(pattern[i + 2] ?? '')) {
        out += hex(pattern.charCodeAt(i + 2) % 32);
        i += 3;
        afterRepeat = false;
        continue;
      }
      out += c + n;
      i += 2;
      afterRepeat = false;
      continue;
    }
    if (inClass) {
      const posix = c === '[' ? matchAt(POSIX_CLASS, pattern, i) : null;
      if (posix !== null) {
        out += posix[0];
        i += posix[0].length;
        continue;
      }
      if (c === ']') inClass = false;
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      if (pattern.startsWith('[^]', i)) {
        out += '(?s:.)';
        i += 3;
        afterRepeat = false;
        continue;
      }
      if (pattern.startsWith('[]', i)) return { index: i, message: '`[]` is an empty class, which never matches; remove it or write the characters it should hold' };
      inClass = true;
      out += c;
      i++;
      if (pattern[i] === '^') {
        out += '^';
        i++;
      }
      afterRepeat = false;
      continue;
    }
    if (c === '(') {
      if (pattern.startsWith('(?=', i) || pattern.startsWith('(?!', i)) return fail(i, `the lookahead ${pattern.slice(i, i + 3)}…)`);
      if (pattern.startsWith('(?<=', i) || pattern.startsWith('(?<!', i)) return fail(i, `the lookbehind ${pattern.slice(i, i + 4)}…)`);
      if (pattern.startsWith('(?>', i)) return fail(i, 'the atomic group (?>…)');
      const flags = matchAt(FLAGS_GROUP, pattern, i);
      const on = flags?.[1]?.includes('s') === true;
      const off = flags?.[2]?.includes('s') === true;
      const next: boolean = on ? true : off ? false : dotAll;
      if (flags?.[3] === ')') dotAll = next; // (?s): for the rest of the enclosing group
      else {
        groups.push(dotAll);
        dotAll = next;
      }
      const text = flags === null ? '(' : flags[0];
      out += text;
      i += text.length;
      afterRepeat = false;
      continue;
    }
    if (c === ')') {
      dotAll = groups.pop() ?? dotAll;
      out += c;
      i++;
      afterRepeat = false;
      continue;
    }
    if (c === '.') {
      out += dotAll ? '.' : JS_DOT;
      i++;
      afterRepeat = false;
      continue;
    }
    if (c === '*' || c === '+' || c === '?') {
      if (afterRepeat && c === '+') return fail(i - 1, `the possessive quantifier ${pattern.slice(i - 1, i + 1)}`);
      // `?` after a quantifier makes it lazy; anything after that is RE2's to judge.
      afterRepeat = !(afterRepeat && c === '?');
      out += c;
      i++;
      continue;
    }
    if (c === '{') {
      const m = matchAt(REPEAT, pattern, i);
      if (m !== null) {
        out += m[0];
        i += m[0].length;
        if (pattern[i] === '+') return fail(i - m[0].length, `the possessive quantifier ${m[0]}+`);
        afterRepeat = true;
        continue;
      }
    }
    afterRepeat = false;
    out += c;
    i++;
  }
  return { source: out };
}

/** Explains RE2's refusal in the words of the rule language. */
function explain(e: RE2JSSyntaxException): string {
  const what = e.getDescription();
  const frag = e.getPattern();
  if (what === 'invalid repeat count') return `invalid repeat count ${frag ?? ''}: RE2 allows counts up to 1000, nested counts included`;
  if (what === 'invalid or unsupported Perl syntax') return `unsupported group syntax ${frag ?? ''}: RE2 has (?:…), (?P<name>…), (?<name>…) and flags (?i) (?m) (?s) (?U), also as (?i:…)`;
  if (what === 'invalid escape sequence') return `invalid escape sequence ${frag ?? ''}: RE2 has no such escape (escape punctuation with \\, write code points as \\x{…})`;
  return frag === null || frag === '' ? what : `${what}: ${frag}`;
}

/** Compiles a rule regex; never throws. */
export function compileRegex(pattern: string): RegexResult {
  const t = translate(pattern);
  if ('index' in t) return { ok: false, index: t.index, message: t.message };
  try {
    const re = RE2JS.compile(t.source);
    const size = re.programSize();
    if (size > MAX_REGEX_PROGRAM_SIZE) {
      return { ok: false, index: 0, message: `the regular expression is too large: its RE2 program has ${size} instructions, at most ${MAX_REGEX_PROGRAM_SIZE} (a character of a value can cost a step per instruction); use smaller counted repeats` };
    }
    return { ok: true, regex: re };
  } catch (e) {
    if (e instanceof RE2JSSyntaxException) {
      const frag = e.getPattern();
      const at = frag === null ? -1 : pattern.indexOf(frag);
      return { ok: false, index: Math.max(0, at), message: explain(e) };
    }
    return { ok: false, index: 0, message: (e as Error).message };
  }
}
