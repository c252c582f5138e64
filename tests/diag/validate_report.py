#!/usr/bin/python3
"""Validates debug reports against docs/debug-report.schema.json with python3-jsonschema.

Usage: validate_report.py SCHEMA REPORT.json [REPORT.json ...]
Exit 0 when every report is valid; prints each error otherwise. The schema itself is checked
against the 2020-12 meta-schema first.
"""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
failed = False
for path in sys.argv[2:]:
    report = json.load(open(path))
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.path))
    for error in errors:
        failed = True
        print(f"{path}: {'/'.join(map(str, error.path))}: {error.message}")
sys.exit(1 if failed else 0)
