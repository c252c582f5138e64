"""tests/template/filter_cases.py — random filter and method calls with random
arguments over strings (with tabs, newlines, non-ASCII), numbers, lists and
dicts, for the differential test in oracle_compare.py. Seeded."""
import json
import random

VALUES = ["s", "t", "ml", "n", "f", "l", "lm", "d", "nested", "none", "'  pad\\t'", "'a-b c(d'", "'ÉCOLE ß ǆ ﬁ'",
          "[3.5, 1, 2]", "['b','A','a','c']", "{'z': 1, 'Y': 2}", "''", "[]", "0", "-2.5", "true", "msgs",
          "'x,y,,z'", "'%s=%d'", "'{} {:>4}'", "1e16", "0.5", "123456789.125", "15", "-25"]
FILTERS = {
    "indent": ["", "(2)", "(2, true)", "(2, blank=true)", "('-> ')", "(0)", "(width=3, first=true, blank=true)"],
    "tojson": ["", "(indent=2)", "(indent=0)", "(sort_keys=true)", "(separators=(',', ':'))", "(ensure_ascii=true)",
               "(indent='\\t', sort_keys=true)"],
    "replace": ["('a','Z')", "('', '-')", "('a', 'Z', 1)", "(' ', '')"],
    "trim": ["", "('x')", "(' \\t')"],
    "join": ["", "(', ')", "(attribute='role')", "('|', 'content')"],
    "map": ["('upper')", "(attribute='role')", "(attribute='missing', default='?')", "('string')", "('length')",
            "('int')"],
    "selectattr": ["('role')", "('role', 'eq', 'user')", "('content', 'string')", "('missing', 'undefined')"],
    "rejectattr": ["('role', 'equalto', 'assistant')", "('content')"],
    "select": ["", "('odd')", "('string')", "('number')", "('gt', 1)", "('in', [1, 'a'])"],
    "reject": ["", "('even')", "('none')"],
    "sort": ["", "(reverse=true)", "(case_sensitive=true)", "(attribute='role')", "(attribute='1')",
             "(attribute='role,n')"],
    "dictsort": ["", "(by='value')", "(true)", "(reverse=true)", "(false, 'value', true)"],
    "unique": ["", "(case_sensitive=true)", "(attribute='role')"],
    "round": ["", "(1)", "(2, 'floor')", "(0, 'ceil')", "(-1)", "(3)"],
    "int": ["", "(5)", "(0, 16)"], "float": ["", "(1.5)"], "center": ["(9)", "(2)"],
    "format": ["('a', 1)", "(1, 2)", "(x=1)"], "default": ["('D')", "('D', true)"], "first": [""], "last": [""],
    "length": [""], "list": [""], "string": [""], "sum": ["", "(start=10)", "(attribute='n')"],
    "max": ["", "(case_sensitive=true)", "(attribute='role')"], "min": ["", "(attribute='role')"], "abs": [""],
    "title": [""], "capitalize": [""], "upper": [""], "lower": [""], "wordcount": [""],
    "batch": ["(2)", "(3, 'F')"], "items": [""], "reverse": [""], "e": [""], "count": [""],
}
LAZY = {"map", "select", "reject", "selectattr", "rejectattr", "unique", "batch", "items", "reverse"}
METHODS = [".split()", ".split(',')", ".split(',', 1)", ".rsplit(',', 1)", ".rsplit(None, 1)", ".strip('x,')",
           ".lstrip()", ".rstrip(' \\t')", ".startswith(('a','p'))", ".endswith('z')", ".title()", ".capitalize()",
           ".upper()", ".lower()", ".find(',')", ".rfind(',')", ".count(',')", ".replace(',', ';', 2)",
           ".splitlines()", ".splitlines(true)", ".partition(',')", ".rpartition(',')", ".zfill(8)",
           ".ljust(8, '*')", ".rjust(8)", ".center(9, '.')", ".removeprefix('x')", ".removesuffix('z')",
           ".isdigit()", ".isalpha()", ".isspace()", ".isupper()", ".islower()", ".format(1, 'b')", ".swapcase()"]
CONTEXT = {"s": "Hello, World", "t": "  tab\tline  ", "ml": "one\n\ntwo\r\nthree\n", "n": 7, "f": 2.675,
           "l": [3, 1, 2], "lm": [1, "a", None, 2.5], "d": {"b": 2, "a": 1, "C": 3},
           "nested": {"k": [1, {"z": "é\"\n"}], "e": {}},
           "msgs": [{"role": "user", "content": "Hi", "n": 1}, {"role": "assistant", "content": "Yo", "n": 2},
                    {"role": "user", "content": "ok", "n": 3}]}


def cases(seed=1, count=2000):
    rng = random.Random(seed)
    context = json.dumps(CONTEXT, ensure_ascii=False)
    out = []
    for _ in range(count):
        value = rng.choice(VALUES)
        if rng.random() < 0.7:
            name = rng.choice(list(FILTERS))
            expression = f"({value})|{name}{rng.choice(FILTERS[name])}"
            # Printing an unconsumed generator shows an address; list it (mostly).
            if name in LAZY and rng.random() < 0.9:
                expression += "|list"
        else:
            expression = f"({value}){rng.choice(METHODS)}"
        out.append(("{{ " + expression + " }}", context))
    return out
