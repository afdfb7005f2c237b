"""BENCHMARKS.md shows what bench/results/*.json hold: its tables and verdicts are rendered from
them (``make bench-docs``), never copied by hand."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from bench.harness import RESULTS_DIR
from bench.render import DOCUMENT, load_results, render


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return load_results(RESULTS_DIR)


def test_render_benchmarks_md_matches_the_results(results: dict[str, Any]) -> None:
    document = DOCUMENT.read_text(encoding="utf-8")
    assert render(document, results) == document, "run `make bench-docs`"


def test_render_a_changed_result_changes_the_document(results: dict[str, Any]) -> None:
    document = DOCUMENT.read_text(encoding="utf-8")
    changed = copy.deepcopy(results)
    changed["round_trips"]["rows"][1]["round_trips"] = 99
    assert render(document, changed) != document


def test_render_ignores_keys_it_does_not_show(results: dict[str, Any]) -> None:
    document = DOCUMENT.read_text(encoding="utf-8")
    extended = copy.deepcopy(results)
    for data in extended.values():
        data["a_new_figure"] = 1.0
        for row in data.get("rows", []):
            row["a_new_column"] = "x"
    assert render(document, extended) == document


def test_render_refuses_a_document_that_lost_a_marker(results: dict[str, Any]) -> None:
    document = DOCUMENT.read_text(encoding="utf-8").replace("<!-- /bench:scale_out -->", "")
    with pytest.raises(ValueError, match="'scale_out' appears 0 times"):
        render(document, results)
