"""``make lambda-check`` fails a function whose init skipped a warm-up step: the warm-up never
raises (the first request does the work instead), so only its log says it did not work."""

from __future__ import annotations

import json

from lambda_check.__main__ import warm_up_skipped


def _line(level: str, message: str) -> str:
    return json.dumps({"level": level, "message": message, "service": "todo-api"})


def test_lambda_check_finds_each_skipped_warm_up_step_in_the_log() -> None:
    log = "\n".join(
        [
            "START RequestId: 1 Version: $LATEST",
            _line("WARNING", "warm-up skipped: OperationalError"),
            _line("INFO", "request"),
            _line("WARNING", "warm-up request path skipped: KeyError"),
            '{"not": "closed"',
            "[1, 2]",
        ]
    )
    assert warm_up_skipped(log) == [
        "warm-up skipped: OperationalError",
        "warm-up request path skipped: KeyError",
    ]


def test_lambda_check_passes_a_log_without_skipped_steps() -> None:
    log = "\n".join([_line("INFO", "request"), _line("WARNING", "database unavailable: X")])
    assert warm_up_skipped(log) == []
