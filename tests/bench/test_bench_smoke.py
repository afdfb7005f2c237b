"""The benchmarks in quick mode: they run to the end and write well-formed results. No timing
is asserted (the machine is shared and noisy); this only keeps them from rotting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.render import DOCUMENT, load_results, render

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
NUMBER = (int, float)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bench")
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT / "infra"), str(ROOT)]),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run_all", "--quick", "--results-dir", str(directory)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"the benchmarks exited with {completed.returncode}:\n"
            f"{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}",
            pytrace=False,
        )
    return directory


def _load(results: Path, name: str) -> Any:
    data = json.loads((results / f"{name}.json").read_text())
    assert set(data["machine"]) >= {"date", "cpus", "cpu_model", "python"}
    return data


def test_bench_cold_start_covers_every_function_and_both_floors(results: Path) -> None:
    data = _load(results, "cold_start")
    rows = data["rows"]
    names = {row["name"] for row in rows}
    functions = {path.name for path in (ROOT / "functions").iterdir() if path.is_dir()}
    assert names == functions | {"floor (a) stack", "floor (b) bare"}
    for row in rows:
        assert isinstance(row["total_ms"], NUMBER)
        assert row["total_ms"] > 0
        assert isinstance(row["peak_rss_mb"], NUMBER)
        assert row["peak_rss_mb"] > 0
        low, high = row["cpu_vs_floor_a_iqr"]
        assert low <= row["cpu_vs_floor_a"] <= high
        assert len(row["cpu_ms_samples"]) == data["runs"]
        assert isinstance(row["modules"], int)
        assert row["modules"] > 100
    floor = next(row for row in rows if row["name"] == "floor (a) stack")
    assert floor["cpu_vs_floor_a"] == 1.0


def test_bench_chat_latency_has_three_history_lengths_and_a_plot(results: Path) -> None:
    data = _load(results, "chat_latency")
    rows = data["rows"]
    assert [row["messages"] for row in rows] == [10, 1_000, 100_000]
    assert all(row["n"] > 0 and row["p99_ms"] >= row["p50_ms"] > 0 for row in rows)
    assert (results / str(data["plot"])).read_bytes().startswith(b"\x89PNG")


def test_bench_round_trips_counts_both_paths(results: Path) -> None:
    rows = _load(results, "round_trips")["rows"]
    no_tool = [r for r in rows if r["request"].startswith("chat turn, no tool")]
    assert {r["path"] for r in no_tool} == {"direct", "pgbouncer"}
    # Counts, not times: the floor the README promises.
    assert all(r["round_trips"] == 2 and r["connection_startups"] == 0 for r in no_tool)


def test_bench_overhead_compares_handler_and_bare_psycopg(results: Path) -> None:
    data = _load(results, "overhead")
    assert data["handler"]["n"] == data["bare_psycopg"]["n"] > 0
    assert data["profile_by_package_ms"]


def test_bench_scale_out_stores_every_message_once_without_errors(results: Path) -> None:
    rows = _load(results, "scale_out")["rows"]
    assert rows
    for row in rows:
        assert row["errors"] == 0, row["error_samples"]
        assert row["stored_exactly_once_with_one_reply"]
        assert row["turns"] > 0


def test_bench_results_render_into_benchmarks_md(results: Path) -> None:
    # Section 1c comes from `make bench-cold-target` (CPython 3.13 and a layer built for it),
    # which the quick run does not make: its results have section 1's shape, so the quick run's
    # stand in for them here.
    target = {**_load(results, "cold_start"), "python": "3.13.0"}
    (results / "cold_start_target.json").write_text(json.dumps(target), encoding="utf-8")
    document = render(DOCUMENT.read_text(encoding="utf-8"), load_results(results))
    assert "<!-- bench:round_trips -->\n```\npath" in document
    assert "<!-- bench:cold_path_target_verdict -->\nCPython 3.13.0, 1 round." in document


def test_bench_model_turns_cost_two_round_trips_plus_one_per_tool_call(results: Path) -> None:
    data = _load(results, "model_turns")
    by_case = {(row["assistant"], row["tool_calls"]): row for row in data["turns"]}
    assert set(by_case) == {
        ("builtin", 0),
        ("builtin", 1),
        ("openai", 0),
        ("openai", 1),
        ("openai", 3),
    }
    for (_, calls), row in by_case.items():
        # Durable tool calls add nothing: each write and its record are one statement.
        assert row["round_trips"] == 2 + calls
        assert row["p50_ms"] > 0
    assert {row["assistant"] for row in data["cold_start"]} == {"builtin", "openai"}
