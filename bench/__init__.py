"""Benchmarks of the Todo API: cold start, chat latency, round trips, overhead, scale out.

Run them all with ``make bench`` (``python -m bench.run_all``); each ``bench/<name>.py`` also runs
on its own (``python -m bench.<name> [--quick]``). They print tables and write JSON (and the plot)
under ``bench/results/``. Nothing here asserts on time: the machine is shared and noisy.
"""
