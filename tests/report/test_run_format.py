"""docs/run-format.md's Candidate block lists exactly the keys `Candidate.to_json()` writes
(search.candidate.json_keys), so the schema a reader trusts cannot drift from the code."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from infertune.search.candidate import json_keys

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-format.md"


def jsonc_block(text: str, heading: str) -> str:
    """The first ```jsonc block after `heading`."""
    start = text.index(heading)
    match = re.search(r"```jsonc\n(.*?)```", text[start:], re.S)
    assert match, f"no jsonc block after {heading!r}"
    return match.group(1)


def top_level_keys(block: str) -> list[str]:
    """The keys of the outermost object of a jsonc sketch: strings followed by ':' at
    depth 1. The sketch is not JSON (alternatives with |, value lists like {"p50", "p90"}),
    so it is scanned, not parsed: // comments dropped, strings skipped as units."""
    keys, depth, i = [], 0, 0
    text = re.sub(r"//[^\n]*", "", block)
    while i < len(text):
        ch = text[i]
        if ch == '"':
            end = text.index('"', i + 1)
            if depth == 1 and re.match(r"\s*:", text[end + 1:]):
                keys.append(text[i + 1:end])
            i = end + 1
            continue
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        i += 1
    return keys


def test_the_scanner_on_a_small_sketch():
    sketch = '{\n  "a": {"x": 1, "y"}, // "c": 2\n  "b": [{"z": 1}] | null, "d": "e: f"\n}'
    assert top_level_keys(sketch) == ["a", "b", "d"]


def test_the_candidate_block_lists_exactly_json_keys():
    keys = top_level_keys(jsonc_block(DOC.read_text(encoding="utf-8"), "### Candidate"))
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    assert duplicated == []
    missing, extra = sorted(json_keys() - set(keys)), sorted(set(keys) - json_keys())
    assert (missing, extra) == ([], []), "docs/run-format.md's Candidate block differs"


@pytest.mark.parametrize("key", ["candidates", "final_comparison", "mixed_precision"])
def test_the_report_block_documents_the_sections_the_renderers_read(key):
    block = jsonc_block(DOC.read_text(encoding="utf-8"), "## report.json")
    assert key in top_level_keys(block)
