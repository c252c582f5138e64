"""tests/template/expression_cases.py — random Jinja expressions for the
differential test in oracle_compare.py: nested operators, filters, tests,
str/dict/list methods, slicing and conditionals over a small context, drawn
from a seeded generator so every run checks the same few thousand cases."""
import json
import random

ATOMS = ["1", "0", "-3", "2.5", "0.1", "1e20", "1e-7", "'abc'", "'A b-c'", "''", "' x '", "'é中'", "none", "true",
         "false", "[1, 2, 3]", "[]", "(1, 'a')", "{'k': 1, 'a': [2]}", "{}", "s", "n", "f", "l", "d", "u", "missing",
         "d.k", "l[0]", "l[-1]", "s[1:]", "s[::-1]", "l[::2]", "d['a']", "u.k", "ns.v"]
BINARY = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "and", "or", "in", "not in"]
FILTERS = ["length", "first", "last", "upper", "lower", "title", "capitalize", "trim", "string", "int", "float", "abs",
           "round", "list", "sort", "unique|list", "reverse|list", "join(',')", "join", "tojson", "tojson(indent=1)",
           "default('D')", "d(0, true)", "items|list", "dictsort", "sum", "max", "min", "indent(2)",
           "replace('a','Z')", "center(7)", "wordcount", "select|list", "reject|list", "map('string')|list",
           "batch(2)|list", "e", "safe", "count", "escape"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence",
         "boolean", "true", "false", "odd", "even", "divisibleby(2)", "upper", "lower", "eq(1)", "in([1,2])",
         "sameas(none)"]
METHODS = [".upper()", ".lower()", ".strip()", ".split()", ".split(',')", ".startswith('a')", ".endswith('c')",
           ".replace('b','B')", ".title()", ".capitalize()", ".find('b')", ".count('a')", ".items()|list",
           ".keys()|list", ".values()|list", ".get('k')", ".get('z', 5)", ".index(2)"]
CONTEXT = {"s": "Hello, World", "n": 7, "f": -1.5, "l": [3, 1, 2], "d": {"b": 2, "a": 1, "k": "v"},
           "u": {"k": [1, {"z": None}]}}


def expression(rng, depth=0):
    r = rng.random()
    if depth > 2 or r < 0.3:
        return rng.choice(ATOMS)
    if r < 0.5:
        return f"({expression(rng, depth + 1)} {rng.choice(BINARY)} {expression(rng, depth + 1)})"
    if r < 0.7:
        return f"({expression(rng, depth + 1)})|{rng.choice(FILTERS)}"
    if r < 0.8:
        return f"({expression(rng, depth + 1)} is {rng.choice(['', 'not '])}{rng.choice(TESTS)})"
    if r < 0.9:
        return f"({expression(rng, depth + 1)}){rng.choice(METHODS)}"
    return f"({expression(rng, depth + 1)} if {expression(rng, depth + 1)} else {expression(rng, depth + 1)})"


def cases(seed=1, count=3000):
    rng = random.Random(seed)
    context = json.dumps(CONTEXT, ensure_ascii=False)
    return [("{% set ns = namespace(v=[1]) %}{{ " + expression(rng) + " }}", context) for _ in range(count)]
