"""Renders BENCHMARKS.md's tables and verdicts from ``bench/results/*.json``, so the document
shows what the last run measured and nothing copied by hand.

python -m bench.render [--check] [--results-dir DIR] [--document FILE]

Each generated block sits between ``<!-- bench:<name> -->`` and ``<!-- /bench:<name> -->``;
the prose around the blocks is written by hand. ``--check`` changes nothing and fails if the
document differs from what the results give (``make bench-docs`` rewrites it; ``make bench``
does so after a full run).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.harness import RESULTS_DIR, ROOT, format_table

DOCUMENT = ROOT / "BENCHMARKS.md"
FLOORS = ("floor (a) stack", "floor (b) bare")
RESULT_FILES = (
    "cold_start",
    "cold_start_target",
    "chat_latency",
    "round_trips",
    "overhead",
    "scale_out",
    "model_turns",
)

Results = dict[str, Any]
Table = tuple[list[str], list[list[Any]]]
"""A table's headers and rows, as the benchmark prints it and this file shows it."""


def _code(lines: Sequence[str]) -> str:
    return "\n".join(["```", *lines, "```"])


def _prose(text: str) -> str:
    return textwrap.fill(text, width=100, break_on_hyphens=False)


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _recorded_run(results: Results) -> str:
    dates = sorted(data["machine"]["date"] for data in results.values())
    first, last = dates[0], dates[-1]
    machine = results["cold_start"]["machine"]
    # Sections can be re-run on their own: then the span crosses days, and says so.
    if first[:10] == last[:10]:
        runs = f"**Recorded run:** `make bench`, results written {first[:10]} between"
        span = f"{first[11:16]} and {last[11:16]}"
    else:
        runs = "**Recorded runs:** `make bench` and sections re-run since, results written between"
        span = f"{first[:10]} {first[11:16]} and {last[:10]} {last[11:16]}"
    return (
        f"{runs} {span} UTC, {machine['cpus']} vCPUs ({machine['cpu_model']}),"
        f" Python {machine['python']}."
    )


def cold_start_table(data: Results) -> Table:
    """Section 1's table, from ``cold_start.json`` (printed by the benchmark too)."""
    headers = [
        "function",
        "total ms",
        "CPU ms",
        "x a (CPU)",
        "IQR of x a",
        "import ms",
        "1st event ms",
        "process ms",
        "x a (wall)",
        "x b (wall)",
        "peak RSS MB",
        "modules",
        "target",
    ]
    rows = [
        [
            r["name"],
            r["total_ms"],
            r["cpu_ms"],
            r["cpu_vs_floor_a"],
            "{:.2f}-{:.2f}".format(*r["cpu_vs_floor_a_iqr"]),
            r["import_ms"],
            r["first_event_ms"],
            r["process_wall_ms"],
            r["vs_floor_a"],
            r["vs_floor_b"],
            r["peak_rss_mb"],
            r["modules"],
            "-" if r["name"] in FLOORS else ("ok" if r["meets_targets"] else "MISSED"),
        ]
        for r in data["rows"]
    ]
    return headers, rows


def _cold_start_table(results: Results) -> str:
    return _code(format_table(*cold_start_table(results["cold_start"])))


def _cold_start_verdict(results: Results, name: str = "cold_start") -> str:
    data = results[name]
    functions = [r for r in data["rows"] if r["name"] not in FLOORS]
    target = data["target_ratio"]
    missed = sorted(
        (r for r in functions if r["cpu_vs_floor_a"] > target),
        key=lambda r: -r["cpu_vs_floor_a"],
    )
    held = len(functions) - len(missed)
    misses = ", ".join(f"{r['name']} {_ratio(r['cpu_vs_floor_a'])}" for r in missed)
    verdict = (
        f"**The CPU target ({_ratio(target)} floor (a)) holds for {held} of {len(functions)}"
        f" functions in this run{f': {misses} miss it' if missed else ''}.**"
    )
    rss = [r["peak_rss_mb"] for r in functions]
    fits = "fits" if max(rss) < data["target_rss_mb"] else "does NOT fit"
    modules = [r["modules"] for r in functions]
    floor_a = next(r for r in data["rows"] if r["name"] == FLOORS[0])
    return (
        f"{verdict} **Peak RSS: {min(rss):.0f}-{max(rss):.0f} MB, every function {fits}"
        f" {data['target_rss_mb']:.0f} MB.** Modules loaded after the first event:"
        f" {min(modules)}-{max(modules)} per function, {floor_a['modules']} for floor (a)."
    )


def cold_path_table(data: Results) -> Table:
    """Section 1b's table, from ``cold_start.json``'s ``cold_path`` (printed by the benchmark)."""
    sizes = data["memory_sizes_mb"]
    headers = [
        "function",
        "init",
        "init, no .pyc",
        "ratio",
        "1st event",
        "its connection",
        "1st less it",
        "warm event",
        "connection",
        "budget",
        "restore 1st",
        *(f"1st @{mb} MB ms" for mb in sizes),
        "target",
    ]
    rows = [
        [
            r["name"],
            r["init_cpu_ms"],
            r["init_cpu_ms_no_bytecode"],
            r["init_bytecode_ratio"],
            r["first_event_cpu_ms"],
            r["first_event_connect_cpu_ms"],
            r["first_event_less_connect_cpu_ms"],
            r["warm_event_cpu_ms"],
            r["connection_cpu_ms"],
            r["first_event_budget_cpu_ms"],
            r["restore_first_event_cpu_ms"],
            *(r["first_event_ms_at_memory"][str(mb)] for mb in sizes),
            "-" if r["name"] in FLOORS else ("ok" if r["meets_cold_path_targets"] else "MISSED"),
        ]
        for r in data["cold_path"]
    ]
    return headers, rows


def _cold_path_table(results: Results, name: str = "cold_start") -> str:
    return _code(format_table(*cold_path_table(results[name])))


def _span(values: Sequence[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def _cold_path_verdict(results: Results, name: str = "cold_start") -> str:
    data = results[name]
    functions = [r for r in data["cold_path"] if r["name"] not in FLOORS]
    bytecode = [r["init_bytecode_ratio"] for r in functions]
    first = [r["first_event_cpu_ms"] / r["first_event_budget_cpu_ms"] for r in functions]
    restore = [r["restore_first_event_cpu_ms"] / r["first_event_budget_cpu_ms"] for r in functions]
    less = [r["first_event_less_connect_cpu_ms"] / r["warm_event_cpu_ms"] for r in functions]
    target_bytecode = data["target_bytecode_ratio"]
    held = sum(ratio <= target_bytecode for ratio in bytecode)
    first_held = sum(ratio <= 1 for ratio in first)
    restore_held = sum(ratio <= 1 for ratio in restore)
    total = len(functions)
    return (
        f"**Init with bytecode: {_span(bytecode, 2)}x of init without it, the target"
        f" ({_ratio(target_bytecode)}) holds for {held} of {total}. First event after init:"
        f" {_span([r['first_event_cpu_ms'] for r in functions])} ms of CPU,"
        f" {_span(first, 2)}x its budget, within it for {first_held} of {total}. After a"
        f" restore: {_span([r['restore_first_event_cpu_ms'] for r in functions])} ms,"
        f" {_span(restore, 2)}x the budget, within it for {restore_held} of {total}.**"
        f" Its own connection takes {_span([r['first_event_connect_cpu_ms'] for r in functions])}"
        f" ms of a first event (one more connection later:"
        f" {_span([r['connection_cpu_ms'] for r in functions])} ms); less that, the first event"
        f" is {_span(less, 2)}x the warm one. {db_primed_line(data)}"
    )


def db_primed_line(data: Results) -> str:
    """The reference variant of ``cold_start.json`` (``db_primed``) in one sentence."""
    primed = data["db_primed"]
    return (
        f"For reference, {primed['name']} after an init that also served its event"
        f" {primed['primed_events']} times against the database and then closed its connection"
        " (not something init does: it would have to connect) takes"
        f" {primed['first_event_cpu_ms']:.2f} ms in its first event,"
        f" {primed['first_event_vs_budget']:.2f}x its budget"
        f" ({primed['first_event_budget_cpu_ms']:.2f} ms); less its connection"
        f" ({primed['first_event_connect_cpu_ms']:.2f} ms),"
        f" {primed['first_event_less_connect_cpu_ms'] / primed['warm_event_cpu_ms']:.2f}x the"
        " warm event."
    )


def _cold_path_target_table(results: Results) -> str:
    return _cold_path_table(results, "cold_start_target")


def _cold_path_target_verdict(results: Results) -> str:
    data = results["cold_start_target"]
    return (
        f"CPython {data['python']}, {data['runs']} round{'' if data['runs'] == 1 else 's'}. "
        + _cold_path_verdict(results, "cold_start_target")
        + " Section 1's cold start in the same run: "
        + _cold_start_verdict(results, "cold_start_target")
    )


def chat_latency_table(data: Results) -> Table:
    """Section 2's table, from ``chat_latency.json`` (printed by the benchmark too)."""
    base = data["rows"][0]["p50_ms"]
    headers = ["stored messages", "turns", "p50 ms", "p99 ms", "mean ms", "p50 / p50(10)"]
    rows = [
        [f"{r['messages']:,}", r["n"], r["p50_ms"], r["p99_ms"], r["mean_ms"], r["p50_ms"] / base]
        for r in data["rows"]
    ]
    return headers, rows


def _chat_latency_table(results: Results) -> str:
    return _code(format_table(*chat_latency_table(results["chat_latency"])))


def _chat_latency_verdict(results: Results) -> str:
    data = results["chat_latency"]
    largest = data["rows"][-1]["messages"]
    smallest = data["rows"][0]["messages"]
    holds = "holds" if data["meets_target"] else "MISSED"
    return (
        f"**Target {holds}: p50 at {largest:,} messages is {_ratio(data['ratio_p50'])} p50 at"
        f" {smallest:,}** (target {_ratio(data['target_ratio'])})."
    )


ROUND_TRIPS_LABELS = 2
"""The round-trip table's first two columns are labels (path, request)."""


def round_trips_table(data: Results) -> Table:
    """Section 3's table, from ``round_trips.json`` (printed by the benchmark too)."""
    headers = ["path", "request", "round trips", "statements", "tx control", "startups"]
    rows = [
        [
            r["path"],
            r["request"],
            r["round_trips"],
            r["statements"],
            r["transaction_control"],
            r["connection_startups"],
        ]
        for r in data["rows"]
    ]
    return headers, rows


def _round_trips_table(results: Results) -> str:
    table = round_trips_table(results["round_trips"])
    return _code(format_table(*table, left_columns=ROUND_TRIPS_LABELS))


def _round_trips_verdict(results: Results) -> str:
    data = results["round_trips"]
    no_tool = sorted(
        {r["round_trips"] for r in data["rows"] if r["request"].startswith("chat turn, no tool")}
    )
    holds = "holds" if data["meets_target"] else "MISSED"
    counts = " or ".join(str(n) for n in no_tool)
    control = sum(r["transaction_control"] for r in data["rows"])
    return (
        f"**Target {holds}: {counts} round trips for a turn without tool calls** (target at most"
        f" {data['target_round_trips']}), directly and through PgBouncer; transaction control"
        f" round trips in all rows: {control}."
    )


def overhead_table(data: Results) -> Table:
    """Section 4's table, from ``overhead.json`` (printed by the benchmark too)."""

    def cell(value: Any) -> Any:
        return "-" if value is None else value

    headers = [
        "route",
        "p50 ms",
        "p99 ms",
        "CPU ms",
        "bare p50 ms",
        "bare CPU ms",
        "x bare (p50)",
        "x bare (CPU)",
        "HTTP p50 ms",
    ]
    rows: list[list[Any]] = []
    for route in data["routes"]:
        handler, bare = route["handler"], route.get("bare_psycopg") or {}
        rows.append(
            [
                route["route"],
                handler["p50_ms"],
                handler["p99_ms"],
                handler["cpu_ms"],
                cell(bare.get("p50_ms")),
                cell(bare.get("cpu_ms")),
                cell(route.get("ratio_p50")),
                cell(route.get("cpu_ratio")),
                cell((route.get("http") or {}).get("p50_ms")),
            ]
        )
    return headers, rows


def _overhead_table(results: Results) -> str:
    return _code(format_table(*overhead_table(results["overhead"])))


def _overhead_profile(results: Results) -> str:
    packages = ", ".join(
        f"{name} {ms:.1f} ms" for name, ms in results["overhead"]["profile_by_package_ms"]
    )
    return (
        "Profile of get_task (pyinstrument, self time per request by package; the"
        " profiler inflates every figure several-fold, the shares are what count): "
        f"{packages}."
    )


def scale_out_table(data: Results) -> Table:
    """Section 5's table, from ``scale_out.json`` (printed by the benchmark too)."""
    headers = ["workers", "turns", "turns/s", "p50 ms", "p99 ms", "errors", "stored once + 1 reply"]
    rows = [
        [
            r["workers"],
            r["turns"],
            r["turns_per_second"],
            r["p50_ms"],
            r["p99_ms"],
            r["errors"],
            "yes" if r["stored_exactly_once_with_one_reply"] else "NO",
        ]
        for r in data["rows"]
    ]
    return headers, rows


def _scale_out_table(results: Results) -> str:
    return _code(format_table(*scale_out_table(results["scale_out"])))


def _scale_out_verdict(results: Results) -> str:
    data = results["scale_out"]
    workers = [r["workers"] for r in data["rows"]]
    listed = " and ".join(filter(None, [", ".join(str(n) for n in workers[:-1]), str(workers[-1])]))
    errors = sum(r["errors"] for r in data["rows"])
    once = all(r["stored_exactly_once_with_one_reply"] for r in data["rows"])
    return (
        f"**{errors} errors, and every message stored exactly once with one reply:"
        f" {'yes' if once else 'NO'}, at {listed} workers** (pool {data['pool_size']})."
    )


def model_turns_table(data: Results) -> Table:
    """Section 6's table, from ``model_turns.json`` (printed by the benchmark too)."""
    headers = [
        "assistant",
        "tool calls",
        "p50 ms",
        "p99 ms",
        "CPU ms",
        "round trips",
        "model calls",
    ]
    rows = [
        [
            r["assistant"],
            r["tool_calls"],
            r["p50_ms"],
            r["p99_ms"],
            r["cpu_ms"],
            r["round_trips"],
            r["model_calls"],
        ]
        for r in data["turns"]
    ]
    return headers, rows


def _model_turns_table(results: Results) -> str:
    return _code(format_table(*model_turns_table(results["model_turns"])))


BLOCKS: dict[str, Callable[[Results], str]] = {
    "run": _recorded_run,
    "cold_start": _cold_start_table,
    "cold_start_verdict": _cold_start_verdict,
    "chat_latency": _chat_latency_table,
    "chat_latency_verdict": _chat_latency_verdict,
    "round_trips": _round_trips_table,
    "round_trips_verdict": _round_trips_verdict,
    "overhead": _overhead_table,
    "overhead_profile": _overhead_profile,
    "scale_out": _scale_out_table,
    "scale_out_verdict": _scale_out_verdict,
    "model_turns": _model_turns_table,
    "cold_path": _cold_path_table,
    "cold_path_verdict": _cold_path_verdict,
    "cold_path_target": _cold_path_target_table,
    "cold_path_target_verdict": _cold_path_target_verdict,
}


def load_results(results_dir: Path) -> Results:
    """Every benchmark's results, by name; a missing file is an error naming it."""
    results = {}
    for name in RESULT_FILES:
        path = results_dir / f"{name}.json"
        if not path.is_file():
            target = "make bench-cold-target" if name == "cold_start_target" else "make bench"
            raise FileNotFoundError(f"{path} is missing: run `{target}`")
        results[name] = json.loads(path.read_text(encoding="utf-8"))
    return results


def render(document: str, results: Results) -> str:
    """``document`` with every generated block replaced by what ``results`` give. Each block
    must appear exactly once: a marker lost while editing is an error, not a silent skip."""
    for name, build in BLOCKS.items():
        pattern = re.compile(
            rf"(<!-- bench:{name} -->\n).*?(\n<!-- /bench:{name} -->)", flags=re.DOTALL
        )
        found = len(pattern.findall(document))
        if found != 1:
            raise ValueError(f"block {name!r} appears {found} times in the document, not once")
        block = build(results)
        if not block.startswith("```"):
            block = _prose(block)
        document = pattern.sub(lambda match, b=block: match[1] + b + match[2], document)
    return document


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the document is stale")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--document", type=Path, default=DOCUMENT)
    args = parser.parse_args(argv)
    current = args.document.read_text(encoding="utf-8")
    rendered = render(current, load_results(args.results_dir))
    if args.check:
        if rendered != current:
            sys.exit(f"{args.document.name} does not match {args.results_dir}: run make bench-docs")
        return
    args.document.write_text(rendered, encoding="utf-8")


if __name__ == "__main__":
    main()
