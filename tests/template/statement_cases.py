"""tests/template/statement_cases.py — random templates of nested statements
for the differential test in oracle_compare.py: for/else, if/else, set and
set blocks, namespace updates, break/continue, filter blocks, macros and call
blocks, with blocks, comments, all with random whitespace and `-`/`+`
whitespace control around every tag. Seeded, so every run checks the same
cases; each stresses trim_blocks, lstrip_blocks and Jinja2's scoping."""
import json
import random

SPACES = ["", " ", "\n", "  \n", "\n  ", "\t", " \n\n "]
EXPRESSIONS = ["x", "y", "i", "ns.c", "m.role", "m.content|trim", "x ~ i", "(i * 2)", "m.content[:3]", "ns.c + 1",
               "txt", "greet(i)", "greet(x, p='?')", "varargs"]
LOOP_EXPRESSIONS = ["loop.index", "loop.first", "loop.last", "loop.length", "loop.revindex", "loop.cycle('a', 'b')",
                    "loop.previtem", "loop.index0"]
CONDITIONS = ["i is odd", "x", "not y", "m.role == 'user'", "ns.c > 1"]
LOOP_CONDITIONS = ["loop.first", "loop.changed(i)", "loop.last"]
TEXT = ["", "text", " t ", "\n", "a\n  b"]
CONTEXT = {"messages": [{"role": "user", "content": "  Hello there "}, {"role": "assistant", "content": "Hi!\n"}],
           "txt": "multi\nline"}


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def tag(self, body):
        r = self.rng
        return (r.choice(SPACES) + r.choice(["{%", "{%-", "{%+"]) + " " + body + " " +
                r.choice(["%}", "-%}", "+%}"]) + r.choice(SPACES))

    def output(self, expression):
        r = self.rng
        return r.choice(SPACES) + r.choice(["{{", "{{-"]) + " " + expression + " " + r.choice(["}}", "-}}"]) + r.choice(SPACES)

    def block(self, depth=0, in_loop=False):
        r = self.rng
        parts = []
        for _ in range(r.randint(1, 3)):
            roll = r.random()
            if depth < 3 and roll < 0.17:
                parts.append(self.tag("for i in range(3)") + self.block(depth + 1, True) + self.tag("endfor"))
            elif depth < 3 and roll < 0.30:
                parts.append(self.tag("for m in messages") + self.block(depth + 1, True) +
                             (self.tag("else") + self.block(depth + 1, in_loop) if r.random() < 0.3 else "") +
                             self.tag("endfor"))
            elif depth < 3 and roll < 0.44:
                parts.append(self.tag("if " + r.choice(CONDITIONS + (LOOP_CONDITIONS if in_loop else []))) + self.block(depth + 1, in_loop) +
                             (self.tag("else") + self.block(depth + 1, in_loop) if r.random() < 0.5 else "") +
                             self.tag("endif"))
            elif roll < 0.52:
                parts.append(self.tag("set x = " + r.choice(EXPRESSIONS + (LOOP_EXPRESSIONS if in_loop else []))))
            elif roll < 0.58:
                parts.append(self.tag("set ns.c = ns.c + 1"))
            elif roll < 0.62 and in_loop:
                parts.append(self.tag(r.choice(["break", "continue"])))
            elif roll < 0.67:
                parts.append(r.choice(SPACES) + r.choice(["{# c #}", "{#- c -#}", "{#+ c #}"]) + r.choice(SPACES))
            elif depth < 3 and roll < 0.73:
                parts.append(self.tag("set y") + self.block(depth + 1, in_loop) + self.tag("endset"))
            elif depth < 3 and roll < 0.78:
                parts.append(self.tag("filter upper") + self.block(depth + 1, in_loop) + self.tag("endfilter"))
            elif depth < 3 and roll < 0.82:
                parts.append(self.tag("with x = " + r.choice(EXPRESSIONS + (LOOP_EXPRESSIONS if in_loop else []))) + self.block(depth + 1, in_loop) +
                             self.tag("endwith"))
            elif depth < 3 and roll < 0.86:
                parts.append(self.tag("call(v) wrap(i)") + self.block(depth + 1) + self.output("v") + self.tag("endcall"))
            else:
                parts.append(self.output(r.choice(EXPRESSIONS + (LOOP_EXPRESSIONS if in_loop else []))))
            parts.append(r.choice(TEXT))
        return "".join(parts)

    def template(self):
        prelude = ("{% set ns = namespace(c=0) %}{% set x = 'X' %}{% set i = 9 %}{% set m = messages[1] %}"
                   "{% macro greet(n, p='!') %}<{{ n }}{{ p }}{{ x }}{{ varargs }}>{% endmacro %}"
                   "{% macro wrap(n) %}[{{ caller(n) }}]{% endmacro %}")
        return prelude + self.block()


def cases(seed=1, count=1000):
    generator = Generator(seed)
    context = json.dumps(CONTEXT, ensure_ascii=False)
    return [(generator.template(), context) for _ in range(count)]
