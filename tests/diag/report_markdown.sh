#!/bin/bash
# The Markdown report parses with cmark (CommonMark) into the expected
# headings, with no raw HTML and the log in a code block, even when the cache
# path and an environment value are crafted to break tables, fences and
# headings; with cmark-gfm's table extension (as GitHub renders issues) its
# sections are tables.
set -euo pipefail
tool=$1; main_tool=$2; source_dir=$3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
weird="$work/we\`\`\`\`ird|dir <b>x</b>"
/usr/bin/python3 "$source_dir/tests/diag/make_fixture_cache.py" "$weird" > /dev/null
export HF_HUB_CACHE="$weird" MLXE_LOG=debug
export MLXE_NOTE=$'| a | b |\n## not a heading\n<script>x</script> `code` *em* [link](http://x)'
"$tool" report --no-gpu > "$work/report.md" 2>/dev/null
"$main_tool" debug report --no-gpu > "$work/report2.md" 2>/dev/null
cmark --to xml "$work/report.md" > "$work/report.xml"
cmark-gfm -e table --to xml "$work/report.md" > "$work/report-gfm.xml"
/usr/bin/python3 - "$work/report.xml" "$work/report-gfm.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
NS = "{http://commonmark.org/xml/1.0}"
def text(node):
    return "".join(t.text or "" for t in node.iter(NS + "text")) + "".join(t.text or "" for t in node.iter(NS + "code"))
doc = ET.parse(sys.argv[1]).getroot()
headings = [(int(h.get("level")), text(h)) for h in doc.iter(NS + "heading")]
h1 = [t for level, t in headings if level == 1]
h2 = [t for level, t in headings if level == 2]
assert h1 == ["mlxengine debug report"], h1
expected = ["Library", "System", "CPU", "Memory", "GPUs", "Backends", "Environment", "Hugging Face cache",
            "Loaded models", "Errors returned to callers", "Recent errors", "Recent log"]
assert h2 == expected, h2
assert not list(doc.iter(NS + "html_block")) and not list(doc.iter(NS + "html_inline")), "raw HTML in the report"
assert not list(doc.iter(NS + "link")), "a link was injected"
blocks = [b.text for b in doc.iter(NS + "code_block")]
assert any("cache scan of" in (b or "") for b in blocks), "the log is not in a code block"
log_block = [b for b in blocks if "cache scan of" in (b or "")][0]
assert "we````ird|dir" in log_block, log_block
gfm = ET.parse(sys.argv[2]).getroot()
tables = list(gfm.iter(NS + "table"))
assert len(tables) >= 9, len(tables)
cells = ["".join(c.itertext()).strip() for c in gfm.iter(NS + "table_cell")]
assert any("we````ird|dir <b>x</b>" in c for c in cells), "the cache path was not kept whole in its cell"
assert any(c.startswith("| a | b | ## not a heading <script>") for c in cells), [c for c in cells if "heading" in c]
PY
# Both spellings of the tool print the same sections.
diff <(grep '^#' "$work/report.md") <(grep '^#' "$work/report2.md")
echo "1 passed, 0 failed"
