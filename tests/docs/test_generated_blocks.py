"""README.md, docs/ and results/README.md quote numbers only through generated blocks (tools/docs_tables.py),
and those blocks are current: every figure traces to a committed reference run."""
from __future__ import annotations

from pathlib import Path

import pytest

from tools_loader import load_tool

ROOT = Path(__file__).resolve().parents[2]
docs_tables = load_tool("docs_tables")


def test_every_generated_block_matches_the_committed_reference_runs():
    assert docs_tables.main(["--check"]) == 0, "stale generated blocks: run `make docs` and commit the result"


def test_the_readme_shows_the_reference_table_and_names_its_source():
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- generated: reference-table ", 1)[1].split("<!-- end generated -->", 1)[0]
    assert "| involution.cpu |" in block and "| conv.depthwise |" in block
    assert "Source: `results/" in block


def test_a_block_is_rewritten_from_its_spec_and_text_around_it_is_kept():
    run = "results/amd-epyc-avx512-2c/cpu.jsonl"
    text = f"before\n<!-- generated: run-facts {run} -->\nstale figures\n<!-- end generated -->\nafter\n"
    new = docs_tables.rewrite(text)
    assert new.startswith("before\n") and new.endswith("<!-- end generated -->\nafter\n")
    assert "stale figures" not in new and "copy" in new and f"Source: `{run}`" in new
    assert docs_tables.rewrite(new) == new


def test_an_unknown_block_kind_is_named():
    with pytest.raises(ValueError, match="unknown generated block kind 'nonsense'"):
        docs_tables.rewrite("<!-- generated: nonsense x -->\n<!-- end generated -->\n")
