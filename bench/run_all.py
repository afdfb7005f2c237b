"""Runs every benchmark in order, each in a fresh process: ``make bench`` (``--quick`` for a smoke
run). Each prints its table; results and the plot land in ``bench/results/``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

from bench.harness import machine, parse_args

BENCHMARKS = ("cold_start", "chat_latency", "round_trips", "overhead", "scale_out", "model_turns")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    info = machine()
    print(
        f"Todo API benchmarks, {info['date']}: {info['cpus']} CPUs ({info['cpu_model']}),"
        f" Python {info['python']}{' (quick)' if args.quick else ''}",
        flush=True,
    )
    started = time.perf_counter()
    for name in BENCHMARKS:
        command = [sys.executable, "-m", f"bench.{name}", "--results-dir", str(args.results_dir)]
        subprocess.run([*command, *(["--quick"] if args.quick else [])], check=True)
    print(f"\nall benchmarks done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
