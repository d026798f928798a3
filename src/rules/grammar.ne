# The rule language grammar (src/rules/README.md "Grammar"). Compiled by `npm run grammar` into
# grammar.generated.js (not committed). Tokens come from lexer.ts; parse.ts hands
# the parser an already-tokenized stream, so `lexer` here only answers `has`.
#
# Every postprocessor is a small named helper building a node of ast.ts with the
# location of its first token. The grammar must be unambiguous: parse.ts treats
# more than one parse as an internal error and a test asserts exactly one parse
# for every valid example.

@preprocessor esmodule

@{%
const lexer = { has: () => true };

const loc = (t) => ({ line: t.line, col: t.col, offset: t.offset });
const locOf = (x) => x.loc ?? loc(x);

// Expressions -------------------------------------------------------------
const first = (d) => d[0];
const paren = (d) => ({ ...d[1], parens: true });
const boolLit = (d) => ({ kind: 'bool', value: d[0].type === 'kw_true', loc: loc(d[0]) });
const notExpr = (d) => ({ kind: 'not', operand: d[1], loc: loc(d[0]) });
const implies = (d) => ({ kind: 'implies', left: d[0], right: d[2], loc: d[0].loc });
// n-ary and/or: extend the left operand unless the author parenthesised it
const nary = (kind) => (d) =>
  d[0].kind === kind && !d[0].parens
    ? { ...d[0], operands: [...d[0].operands, d[2]] }
    : { kind, operands: [d[0], d[2]], loc: d[0].loc };
const hasChain = (d) => ({ kind: 'has', selector: d[2], steps: d[4], shorthand: false, loc: loc(d[0]) });
const everyChain = (d) => ({ kind: 'every', selector: d[2], steps: d[4], loc: loc(d[0]) });
const hasShorthand = (d) => ({ kind: 'has', selector: { kind: 'name', name: d[0].value, loc: loc(d[0]) }, steps: d[1], shorthand: true, loc: loc(d[0]) });
const compare = (d) => ({ kind: 'compare', left: d[0], op: d[1], right: d[2], loc: d[0].loc });
const whenForm = (d, always, never) => ({ kind: 'when', when: d[2], always, never, loc: loc(d[0]) });
const whenAlways = (d) => whenForm(d, d[4], null);
const whenNever = (d) => whenForm(d, null, d[4]);
const whenBoth = (d) => whenForm(d, d[4], d[5]);

// Steps -------------------------------------------------------------------
const whereStep = (d) => ({ kind: 'where', pred: d[2], loc: loc(d[0]) });
const satisfiesStep = (d) => ({ kind: 'satisfies', pred: d[2], loc: loc(d[0]) });
const relationStep = (d) => ({ kind: 'relation', relation: d[0].value, selector: d[2], pred: null, modifiers: d[4], loc: loc(d[0]) });
const relationStepPred = (d) => ({ ...relationStep([d[0], d[1], d[2], d[5], d[6]]), pred: d[4] });
const withinMod = (d) => ({ kind: 'within', duration: d[2], loc: loc(d[0]) });
const onMod = (d) => ({ kind: 'on', attrs: d[2], loc: loc(d[0]) });

// Aggregates --------------------------------------------------------------
const countAgg = (d) => ({ kind: 'count', selector: d[2], wheres: d[4], distinct: d[5], shorthand: d[0].type === 'count_short', loc: loc(d[0]) });
const numericAgg = (d) => ({ kind: d[0].type, selector: d[2], attr: d[4], wheres: d[6], loc: loc(d[0]) });
const traceAgg = (d) => ({ kind: d[0].type, loc: loc(d[0]) });
const wherePred = (d) => d[2];
const distinctAttr = (d) => d[2];

// Predicates --------------------------------------------------------------
const pnot = (d) => ({ kind: 'pnot', operand: d[1], loc: loc(d[0]) });
const pexists = (d) => ({ kind: 'exists', attr: d[2], loc: loc(d[0]) });
const pcmp = (d) => ({ kind: 'cmp', attr: d[0], op: d[1], value: d[2], loc: d[0].loc });
const pregex = (d) => {
  const op = d[1].type === 're_match' ? '=~' : d[1].type === 'kw_matches' ? 'matches' : '!~';
  return { kind: 'regex', attr: d[0], negated: op === '!~', op, pattern: stringValue(d[2], false), loc: d[0].loc };
};
const pin = (d) => ({ kind: 'in', attr: d[0], negated: false, values: d[3], loc: d[0].loc });
const pnotIn = (d) => ({ kind: 'in', attr: d[0], negated: true, values: d[4], loc: d[0].loc });
const pcontains = (d) => ({ kind: 'contains', attr: d[0], value: d[2], loc: d[0].loc });

// Leaves ------------------------------------------------------------------
const list = (d) => [d[0], ...d[1].map((x) => x[1])];
const cmpOp = (d) => d[0].text;
const nameSel = (d) => ({ kind: 'name', name: d[0].value, loc: loc(d[0]) });
const anySel = (d) => ({ kind: 'any', loc: loc(d[0]) });
const splitAttr = (d) => {
  const t = d[0];
  const m = /^(span|resource)\.(.+)$/.exec(t.value);
  return m ? { kind: 'attr', scope: m[1], key: m[2], loc: loc(t) } : { kind: 'attr', scope: 'any', key: t.value, loc: loc(t) };
};
const quotedAttr = (d) => ({ kind: 'attr', scope: 'any', key: d[0].value, loc: loc(d[0]) });
const intrinsic = (d) => ({ kind: 'intrinsic', name: d[0].value.slice('span:'.length), loc: loc(d[0]) });
const UNIT_NS = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const duration = (d) => {
  const [, amount, unit] = /^([0-9.]+)([a-z]+)$/.exec(d[0].value);
  return { kind: 'duration', amount: Number(amount), unit, ns: Number(amount) * UNIT_NS[unit], loc: loc(d[0]) };
};
const number = (d) => ({ kind: 'number', value: Number(d[0].value), loc: loc(d[0]) });
const stringValue = (t, bare) => ({ kind: 'string', value: t.value, bare, loc: loc(t) });
const quoted = (d) => stringValue(d[0], false);
const bareword = (d) => stringValue(d[0], true);
%}

@lexer lexer

condition -> when_form                                   {% first %}
           | expr                                        {% first %}

# when { A } always { B } never { C }: at least one of always/never
when_form -> %kw_when %lbrace expr %rbrace always_block                 {% whenAlways %}
           | %kw_when %lbrace expr %rbrace never_block                  {% whenNever %}
           | %kw_when %lbrace expr %rbrace always_block never_block     {% whenBoth %}
always_block -> %kw_always %lbrace expr %rbrace          {% (d) => d[2] %}
never_block -> %kw_never %lbrace expr %rbrace            {% (d) => d[2] %}

# Precedence, lowest first: implies (right-associative), or, and, not.
expr -> or_expr                                          {% first %}
      | or_expr implies_op expr                          {% implies %}
implies_op -> %kw_implies | %arrow
or_expr -> and_expr                                      {% first %}
         | or_expr %kw_or and_expr                       {% nary('or') %}
and_expr -> unary                                        {% first %}
          | and_expr %kw_and unary                       {% nary('and') %}
unary -> %kw_not unary                                   {% notExpr %}
       | primary                                         {% first %}

primary -> %lparen expr %rparen                          {% paren %}
         | %has %lparen selector %rparen step:*          {% hasChain %}
         | %every %lparen selector %rparen step:*        {% everyChain %}
         | %name step:*                                  {% hasShorthand %}
         | agg cmp_op agg                                {% compare %}
         | agg cmp_op value                              {% compare %}
         | %kw_true                                      {% boolLit %}
         | %kw_false                                     {% boolLit %}

step -> %where %lparen pred %rparen                      {% whereStep %}
      | %satisfies %lparen pred %rparen                  {% satisfiesStep %}
      | %relation %lparen selector %rparen modifier:*    {% relationStep %}
      | %relation %lparen selector %comma pred %rparen modifier:*   {% relationStepPred %}
modifier -> %within %lparen %duration %rparen            {% (d) => withinMod([d[0], d[1], duration([d[2]])]) %}
          | %on %lparen attr_list %rparen                {% onMod %}

agg -> %count %lparen selector %rparen agg_where:* distinct:?           {% countAgg %}
     | %count_short %lparen selector %rparen agg_where:* distinct:?     {% countAgg %}
     | agg_fn %lparen selector %comma attr %rparen agg_where:*          {% (d) => numericAgg([d[0][0], d[1], d[2], d[3], d[4], d[5], d[6]]) %}
     | %trace_duration                                   {% traceAgg %}
     | %span_count                                       {% traceAgg %}
agg_fn -> %sum | %min | %max | %avg
agg_where -> %where %lparen pred %rparen                 {% wherePred %}
distinct -> %distinct %lparen attr %rparen               {% distinctAttr %}

# Predicates on one span.
pred -> por                                              {% first %}
por -> pand                                              {% first %}
     | por %kw_or pand                                   {% nary('por') %}
pand -> pnot                                             {% first %}
      | pand %kw_and pnot                                {% nary('pand') %}
pnot -> %kw_not pnot                                     {% pnot %}
      | %lparen pred %rparen                             {% paren %}
      | %kw_exists %lparen attr %rparen                  {% pexists %}
      | attr cmp_op value                                {% pcmp %}
      | attr regex_op %string                            {% pregex %}
      | attr %kw_in %lbracket value_list %rbracket       {% pin %}
      | attr %kw_not %kw_in %lbracket value_list %rbracket   {% pnotIn %}
      | attr %kw_contains value                          {% pcontains %}
regex_op -> %re_match {% first %} | %re_not_match {% first %} | %kw_matches {% first %}

cmp_op -> %eq {% cmpOp %} | %ne {% cmpOp %} | %lt {% cmpOp %} | %le {% cmpOp %} | %gt {% cmpOp %} | %ge {% cmpOp %}

selector -> %name                                        {% nameSel %}
          | %string                                      {% nameSel %}
          | %star                                        {% anySel %}

attr -> %intrinsic                                       {% intrinsic %}
      | %name                                            {% splitAttr %}
      | %string                                          {% quotedAttr %}
attr_list -> attr (%comma attr):*                        {% list %}

value -> %number                                         {% number %}
       | %duration                                       {% duration %}
       | %string                                         {% quoted %}
       | %name                                           {% bareword %}
       | %kw_true                                        {% boolLit %}
       | %kw_false                                       {% boolLit %}
value_list -> value (%comma value):*                     {% list %}
