/**
 * The immutable per-trace index that compiled rules read. Built once per trace
 * evaluation; everything beyond the by-name lists is built lazily, on the first
 * rule that needs it.
 *
 * - Spans are de-duplicated by span id (client retries re-send them); of two
 *   records with one id the one with the later end, then higher status code, is
 *   kept, so the choice does not depend on arrival order.
 * - betrace's own `betrace.violation` spans are ignored.
 * - Times are numbers of nanoseconds relative to the earliest start (exact up to
 *   ~104 days of trace); the original bigints stay on the SpanRecords for output.
 * - Spans are found by their ids' two 32-bit words (NumericIds, or parsed hex).
 * - Walks up use `treeParent`: the parent links themselves when they have no
 *   cycle, else a DFS tree that breaks each cycle once (self links are dropped),
 *   so every walk terminates. Descendant questions use the DFS numbering
 *   (pre-order `tin`, subtree end `tout`), made only for them.
 */
import type { NumericIds, SpanRecord, SplitTimes } from './span.ts';

/** The name of betrace's own violation spans: rules never see them as a trace's spans. */
export const VIOLATION_SPAN_NAME = 'betrace.violation';

const EMPTY: readonly number[] = [];

export class TraceIndex {
  /** De-duplicated spans; a span's index in this array is its id everywhere else. */
  readonly spans: readonly SpanRecord[];
  readonly size: number;
  /** Records whose span id an earlier record of the trace had (re-sent spans), left out. */
  readonly repeated: number;
  /** Span indices by span name, in index order. */
  readonly byName: ReadonlyMap<string, readonly number[]>;
  #memo: Map<object, unknown> | undefined;

  #all: readonly number[] | undefined;
  #start: Float64Array | undefined;
  #end: Float64Array | undefined;
  /** Spans by id: the table of their ids' words, or (ids not all 16 lowercase hex digits, or repeated) a Map. */
  #ids: IdTable | undefined;
  #idOf: Map<string, number> | undefined;
  #parent: Int32Array | undefined;
  #treeParent: Int32Array | undefined;
  #childStart: Int32Array | undefined;
  #childList: Int32Array | undefined;
  #tin: Int32Array | undefined;
  #tout: Int32Array | undefined;
  #preorder: Int32Array | undefined;
  #root: { index: number; missing: boolean } | null | undefined;

  /** Where the index's typed arrays come from; compiled rules take theirs here too. */
  readonly arrays: ArraySource;

  /**
   * `arrays`: a Scratch that RuleSet#evaluate resets per trace (a typed array of more than
   * 64 bytes made with `new` allocates a backing store of its own, about 1.5 µs for 100
   * spans: more than the work done in most of them). Default: new arrays.
   */
  constructor(input: readonly SpanRecord[], arrays: ArraySource = NEW_ARRAYS) {
    this.arrays = arrays;
    // Spans are found by id in an open-addressing table over the ids' two 32-bit words
    // (a Map of id strings cost about ten times as much per span). The by-name lists are
    // made in the same pass: each span object is read once (reading it is most of the
    // cost: a cache miss per span). Span ids repeat only when a client re-sent spans; the
    // careful pass (which record of a repeated id to keep) runs only then, as does the
    // Map of ids for ids that are not 16 lowercase hex digits.
    // The input array itself is the spans unless one of betrace's own is left out.
    let kept: SpanRecord[] | undefined;
    const byName = new Map<string, number[]>();
    const ids = new IdTable(input.length, arrays);
    let numeric = true;
    for (let k = 0; k < input.length; k++) {
      const s = input[k] as SpanRecord;
      const name = s.name;
      if (name === VIOLATION_SPAN_NAME) {
        kept ??= input.slice(0, k);
        continue;
      }
      const i = kept === undefined ? k : kept.length;
      const wire = (s as Partial<NumericIds>).idLo;
      if (wire !== undefined) {
        idLo = wire;
        idHi = (s as SpanRecord & NumericIds).idHi;
      } else if (!parseId(s.spanId)) {
        numeric = false;
        break;
      }
      if (!ids.add(idLo, idHi, i)) {
        numeric = false;
        break;
      }
      kept?.push(s);
      addName(byName, name, i);
    }
    if (numeric) {
      this.repeated = 0;
      this.spans = kept ?? input;
      this.byName = byName;
      this.#ids = ids;
    } else {
      const d = deduplicate(input);
      this.repeated = d.repeated;
      this.spans = d.spans;
      this.byName = namesOf(d.spans);
      this.#idOf = d.seen;
    }
    this.size = this.spans.length;
  }

  /** Index of the parent of span s in the trace, or -1 (none, or not in the trace). */
  #parentOf(s: SpanRecord): number {
    if (this.#ids === undefined) {
      const id = s.parentSpanId;
      return id === '' ? -1 : (this.#idOf?.get(id) ?? -1);
    }
    const wire = (s as Partial<NumericIds>).parentLo;
    if (wire !== undefined) {
      // The words, and no hex string made (the decoder makes it only when read).
      return hasParent(s) ? this.#ids.find(wire, (s as SpanRecord & NumericIds).parentHi) : -1;
    }
    const id = s.parentSpanId;
    return id !== '' && parseId(id) ? this.#ids.find(idLo, idHi) : -1;
  }

  /** Per-trace memo for compiled rules (keyed by the compiled node); made on first use. */
  get memo(): Map<object, unknown> {
    return (this.#memo ??= new Map());
  }

  /** Indices of spans named `name` (empty if none). */
  named(name: string): readonly number[] {
    return this.byName.get(name) ?? EMPTY;
  }

  /** All span indices. */
  all(): readonly number[] {
    if (this.#all === undefined) {
      // A loop, not Array.from({ length }, fn): that takes V8's generic path, a call per element.
      const all: number[] = [];
      for (let i = 0; i < this.size; i++) all.push(i);
      this.#all = all;
    }
    return this.#all;
  }

  #times(): void {
    const start = this.arrays.float64(this.size);
    const end = this.arrays.float64(this.size);
    if (this.spans.every(hasSplitTimes)) {
      // Spans from the wire: no BigInt per time. hi·2^32 + lo, relative to the earliest
      // start: exact while the difference is below 2^53 ns.
      const spans = this.spans as readonly (SpanRecord & SplitTimes)[];
      let baseHi = Infinity;
      let baseLo = Infinity;
      for (const s of spans) {
        if (s.startHi < baseHi || (s.startHi === baseHi && s.startLo < baseLo)) {
          baseHi = s.startHi;
          baseLo = s.startLo;
        }
      }
      for (let i = 0; i < this.size; i++) {
        const s = spans[i]!;
        start[i] = (s.startHi - baseHi) * 4294967296 + (s.startLo - baseLo);
        end[i] = (s.endHi - baseHi) * 4294967296 + (s.endLo - baseLo);
      }
    } else {
      let base: bigint | undefined;
      for (const s of this.spans) if (base === undefined || s.startTimeUnixNano < base) base = s.startTimeUnixNano;
      const from = base ?? 0n;
      for (let i = 0; i < this.size; i++) {
        const s = this.spans[i] as SpanRecord;
        start[i] = Number(s.startTimeUnixNano - from);
        end[i] = Number(s.endTimeUnixNano - from);
      }
    }
    this.#start = start;
    this.#end = end;
  }

  /** Start times, ns relative to the earliest start. */
  get start(): Float64Array {
    if (this.#start === undefined) this.#times();
    return this.#start as Float64Array;
  }

  /** End times, ns relative to the earliest start. */
  get end(): Float64Array {
    if (this.#end === undefined) this.#times();
    return this.#end as Float64Array;
  }

  /** Latest end − earliest start, ns; undefined for an empty trace. */
  duration(): number | undefined {
    if (this.size === 0) return undefined;
    const end = this.end;
    let max = -Infinity;
    for (let i = 0; i < this.size; i++) if ((end[i] as number) > max) max = end[i] as number;
    return Math.max(0, max);
  }

  /** Parent links within the trace (self links dropped). */
  #links(): Int32Array {
    const n = this.size;
    const parent = this.arrays.int32(n);
    for (let i = 0; i < n; i++) {
      const j = this.#parentOf(this.spans[i] as SpanRecord);
      parent[i] = j === i ? -1 : j;
    }
    return parent;
  }

  /**
   * Whether the parent links are free of cycles (then they are the DFS tree's own):
   * each span's walk up stops at a span an earlier walk passed, or at a root; it
   * meets its own mark only in a cycle.
   */
  #acyclic(parent: Int32Array): boolean {
    const mark = this.arrays.int32(this.size).fill(0);
    for (let i = 0; i < this.size; i++) {
      let p = i;
      while (p >= 0 && mark[p] === 0) {
        mark[p] = i + 1;
        p = parent[p] as number;
      }
      if (p >= 0 && mark[p] === i + 1) return false;
    }
    return true;
  }

  #tree(): void {
    const n = this.size;
    // The children as compressed rows: the children of i are childList[childStart[i] .. childStart[i+1]).
    const take = (length: number): Int32Array => this.arrays.int32(length);
    const rawParent = this.parent;
    const childStart = take(n + 1).fill(0);
    for (let i = 0; i < n; i++) {
      const j = rawParent[i] as number;
      if (j >= 0) childStart[j + 1] = (childStart[j + 1] as number) + 1;
    }
    for (let i = 0; i < n; i++) childStart[i + 1] = (childStart[i + 1] as number) + (childStart[i] as number);
    const fill = take(n);
    fill.set(childStart.subarray(0, n));
    const childList = take(childStart[n] as number);
    for (let i = 0; i < n; i++) {
      const p = rawParent[i] as number;
      if (p >= 0) {
        const at = fill[p] as number;
        childList[at] = i;
        fill[p] = at + 1;
      }
    }
    // Iterative DFS from the spans without a parent in the trace, then from any
    // span left unvisited (only in a parent cycle), breaking the cycle there.
    const treeParent = take(n).fill(-1);
    const tin = take(n).fill(-1);
    const tout = take(n);
    const preorder = take(n);
    const next = take(n);
    next.set(childStart.subarray(0, n));
    const stack = take(n);
    let clock = 0;
    const dfs = (root: number): void => {
      let sp = 0;
      stack[sp++] = root;
      tin[root] = clock;
      preorder[clock++] = root;
      while (sp > 0) {
        const top = stack[sp - 1] as number;
        const k = next[top] as number;
        if (k < (childStart[top + 1] as number)) {
          next[top] = k + 1;
          const c = childList[k] as number;
          if ((tin[c] as number) >= 0) continue;
          treeParent[c] = top;
          tin[c] = clock;
          preorder[clock++] = c;
          stack[sp++] = c;
        } else {
          tout[top] = clock - 1;
          sp--;
        }
      }
    };
    for (let i = 0; i < n; i++) if (rawParent[i] === -1) dfs(i);
    for (let i = 0; i < n; i++) if ((tin[i] as number) < 0) dfs(i);
    this.#treeParent = treeParent;
    this.#childStart = childStart;
    this.#childList = childList;
    this.#tin = tin;
    this.#tout = tout;
    this.#preorder = preorder;
  }

  /** Parent index in the trace, -1 for none (a span whose parent is absent has none). */
  get parent(): Int32Array {
    return (this.#parent ??= this.#links());
  }
  /**
   * Parent in the DFS tree: `parent` with parent cycles broken; walks up it terminate.
   * Without a cycle (nearly always) that is `parent` itself, and no DFS is made.
   */
  get treeParent(): Int32Array {
    if (this.#treeParent === undefined) {
      if (this.#acyclic(this.parent)) this.#treeParent = this.parent;
      else this.#tree();
    }
    return this.#treeParent as Int32Array;
  }
  /** Children of i: childList[childStart[i] .. childStart[i + 1]). */
  get childStart(): Int32Array {
    if (this.#childStart === undefined) this.#tree();
    return this.#childStart as Int32Array;
  }
  get childList(): Int32Array {
    if (this.#childList === undefined) this.#tree();
    return this.#childList as Int32Array;
  }
  /** DFS pre-order number per span; a descendant d of a has tin[a] < tin[d] <= tout[a]. */
  get tin(): Int32Array {
    if (this.#tin === undefined) this.#tree();
    return this.#tin as Int32Array;
  }
  /** Largest pre-order number in the span's subtree. */
  get tout(): Int32Array {
    if (this.#tout === undefined) this.#tree();
    return this.#tout as Int32Array;
  }
  /** Span indices in DFS pre-order (parents before their descendants). */
  get preorder(): Int32Array {
    if (this.#preorder === undefined) this.#tree();
    return this.#preorder as Int32Array;
  }

  /**
   * The trace's root (src/rules/README.md "Evaluation"): the earliest-starting span without a parent id
   * (ties: lowest span id); failing that, the earliest span whose parent is not in
   * the trace (`missing: true`). Null for an empty trace.
   */
  root(): { index: number; missing: boolean } | null {
    if (this.#root !== undefined) return this.#root;
    let best = -1;
    for (let i = 0; i < this.size; i++) {
      if (!hasParent(this.spans[i] as SpanRecord) && (best < 0 || earlier(this.spans[i] as SpanRecord, this.spans[best] as SpanRecord))) best = i;
    }
    if (best >= 0) return (this.#root = { index: best, missing: false });
    for (let i = 0; i < this.size; i++) {
      const s = this.spans[i] as SpanRecord;
      if (this.#parentOf(s) < 0 && (best < 0 || earlier(s, this.spans[best] as SpanRecord))) best = i;
    }
    if (best < 0) {
      // Every span's parent is in the trace (a cycle): fall back to the earliest span.
      for (let i = 0; i < this.size; i++) if (best < 0 || earlier(this.spans[i] as SpanRecord, this.spans[best] as SpanRecord)) best = i;
    }
    return (this.#root = best < 0 ? null : { index: best, missing: true });
  }
}

/** Whether the span names a parent (without making its parent id's hex, for the decoder's spans). */
function hasParent(s: SpanRecord): boolean {
  const flag = (s as Partial<NumericIds>).hasParent;
  return flag ?? s.parentSpanId !== '';
}

/** Typed arrays of a given length; their contents are undefined until written. */
export interface ArraySource {
  int32(length: number): Int32Array;
  float64(length: number): Float64Array;
  uint8(length: number): Uint8Array;
}

const NEW_ARRAYS: ArraySource = {
  int32: (length) => new Int32Array(length),
  float64: (length) => new Float64Array(length),
  uint8: (length) => new Uint8Array(length),
};

/**
 * Typed arrays carved from one reused buffer: views, no backing store each.
 * `reset` makes every array handed out before it free to be overwritten, so it
 * may be called only once nothing reads them (RuleSet#evaluate: per trace, the
 * index and everything compiled rules made with it die with the evaluation).
 * A buffer too small is replaced by one twice the size; arrays already handed
 * out keep the old one. It never shrinks: it stays as large as the largest trace
 * evaluated needed (about 100 bytes a span; `worker.max_spans_per_trace` bounds it).
 */
export class Scratch implements ArraySource {
  #buffer = new ArrayBuffer(1 << 16);
  #used = 0;

  reset(): void {
    this.#used = 0;
  }

  #take(bytes: number): number {
    const at = (this.#used + 7) & ~7;
    if (at + bytes > this.#buffer.byteLength) {
      this.#buffer = new ArrayBuffer(Math.max(2 * this.#buffer.byteLength, bytes));
      this.#used = bytes;
      return 0;
    }
    this.#used = at + bytes;
    return at;
  }

  int32(length: number): Int32Array {
    const at = this.#take(4 * length); // first: it may replace the buffer
    return new Int32Array(this.#buffer, at, length);
  }

  float64(length: number): Float64Array {
    const at = this.#take(8 * length); // first: it may replace the buffer
    return new Float64Array(this.#buffer, at, length);
  }

  uint8(length: number): Uint8Array {
    const at = this.#take(length); // first: it may replace the buffer
    return new Uint8Array(this.#buffer, at, length);
  }
}

/** The words of the id parseId read last (module state: no object per id). */
let idLo = 0;
let idHi = 0;

/**
 * Reads a span id of 16 lowercase hex digits into idLo/idHi, as the wire decoder
 * makes them from its 8 bytes; false for any other text (no two different texts
 * give the same words, so equal words are equal ids).
 */
function parseId(id: string): boolean {
  if (id.length !== 16) return false;
  let lo = 0;
  let hi = 0;
  for (let k = 0; k < 8; k++) {
    const a = hexDigit(id.charCodeAt(2 * k));
    const b = hexDigit(id.charCodeAt(2 * k + 1));
    if ((a | b) < 0) return false;
    const byte = (a << 4) | b;
    if (k < 4) lo |= byte << (8 * k);
    else hi |= byte << (8 * (k - 4));
  }
  idLo = lo;
  idHi = hi;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * Span indices by id words, open addressing with linear probing in one Int32Array:
 * 2^k slots (at least twice the spans), then each index's two words.
 */
class IdTable {
  readonly #store: Int32Array;
  readonly #shift: number;
  readonly #mask: number;
  readonly #words: number;

  constructor(capacity: number, arrays: ArraySource) {
    let bits = 3;
    while (1 << bits < 2 * capacity) bits++;
    this.#store = arrays.int32((1 << bits) + 2 * capacity);
    this.#store.fill(-1, 0, 1 << bits);
    this.#shift = 32 - bits;
    this.#mask = (1 << bits) - 1;
    this.#words = 1 << bits;
  }

  /** Multiplicative hashing; the top bits (an id's low bytes may all be zero). */
  #slot(lo: number, hi: number): number {
    return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) >>> this.#shift;
  }

  /** Adds the id of span i; false if the table holds it already. */
  add(lo: number, hi: number, i: number): boolean {
    const store = this.#store;
    const words = this.#words;
    for (let slot = this.#slot(lo, hi); ; slot = (slot + 1) & this.#mask) {
      const j = store[slot] as number;
      if (j < 0) {
        store[slot] = i;
        store[words + 2 * i] = lo;
        store[words + 2 * i + 1] = hi;
        return true;
      }
      if (store[words + 2 * j] === lo && store[words + 2 * j + 1] === hi) return false;
    }
  }

  /** Index of the span with this id, or -1. */
  find(lo: number, hi: number): number {
    const store = this.#store;
    const words = this.#words;
    for (let slot = this.#slot(lo, hi); ; slot = (slot + 1) & this.#mask) {
      const j = store[slot] as number;
      if (j < 0 || (store[words + 2 * j] === lo && store[words + 2 * j + 1] === hi)) return j;
    }
  }
}

/** The spans without betrace's own, of each span id the preferred record, and their indices by id. */
function deduplicate(input: readonly SpanRecord[]): { spans: SpanRecord[]; seen: Map<string, number>; repeated: number } {
  const spans: SpanRecord[] = [];
  const seen = new Map<string, number>();
  let repeated = 0;
  for (const s of input) {
    if (s.name === VIOLATION_SPAN_NAME) continue;
    const prev = seen.get(s.spanId);
    if (prev === undefined) {
      seen.set(s.spanId, spans.length);
      spans.push(s);
      continue;
    }
    repeated++;
    if (preferred(s, spans[prev] as SpanRecord)) spans[prev] = s;
  }
  return { spans, seen, repeated };
}

function namesOf(spans: readonly SpanRecord[]): Map<string, number[]> {
  const byName = new Map<string, number[]>();
  for (let i = 0; i < spans.length; i++) addName(byName, (spans[i] as SpanRecord).name, i);
  return byName;
}

function addName(byName: Map<string, number[]>, name: string, i: number): void {
  const list = byName.get(name);
  if (list === undefined) byName.set(name, [i]);
  else list.push(i);
}

function earlier(a: SpanRecord, b: SpanRecord): boolean {
  return a.startTimeUnixNano < b.startTimeUnixNano || (a.startTimeUnixNano === b.startTimeUnixNano && a.spanId < b.spanId);
}

/** Which of two records with the same span id to keep, independent of arrival order. */
function preferred(a: SpanRecord, b: SpanRecord): boolean {
  if (a.endTimeUnixNano !== b.endTimeUnixNano) return a.endTimeUnixNano > b.endTimeUnixNano;
  if (a.statusCode !== b.statusCode) return a.statusCode > b.statusCode;
  if (a.startTimeUnixNano !== b.startTimeUnixNano) return a.startTimeUnixNano < b.startTimeUnixNano;
  if (a.name !== b.name) return a.name < b.name;
  return false;
}

function hasSplitTimes(s: SpanRecord): boolean {
  return (s as Partial<SplitTimes>).startHi !== undefined;
}
