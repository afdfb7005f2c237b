"""Lambda SnapStart: runtime hooks so that nothing unique to one execution environment survives
into the many restored from its snapshot.

Lambda snapshots the memory of an initialised environment (after the module code ran) and
restores every new environment of that version from it. Whatever the snapshot holds is shared by
all of them, so:

* before the snapshot, the database connection is closed (warm-up opens none, but a connection
  made during init would be restored as a socket whose server side is long gone);
* after each restore, any connection the engine holds is dropped without a word to the server
  (the first request connects afresh; the engine and its compiled statements are kept), the
  ``random`` module is reseeded (otherwise each restored environment would draw the same
  numbers), and Powertools' secret cache is emptied, so the next request reads the secrets
  again: their cached age would otherwise count from the snapshot's time, not the restore's,
  and a rotation made meanwhile would be missed. Powertools Logger's per-request keys
  (correlation and request ids) are cleared too, and the restore publishes its ``ColdStart``
  metric (the snapshotted init published none).

The hooks are registered with ``snapshot-restore-py``, which the runtime interface client calls;
without SnapStart they are never called.
"""

from __future__ import annotations

import os
import random
import sys

from snapshot_restore_py import register_after_restore, register_before_snapshot

from todo_core.db import close_connections, forget_connections
from todo_core.observability import logger, publish_cold_start
from todo_core.settings import get_settings


def before_snapshot() -> None:
    """Close the database connection: it must not be part of the snapshot."""
    close_connections()


def after_restore() -> None:
    """Make this restored environment's state its own."""
    random.seed()  # from os.urandom
    forget_connections()
    publish_cold_start(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
    _clear_secret_cache()
    logger.clear_state()
    _read_settings()


def _read_settings() -> None:
    """Read the settings again now, in the restore phase, rather than in the first request: with
    a parameter store, the secrets just forgotten are fetched fresh. Best effort: a store that
    cannot be reached leaves the read to the first request, which answers for it."""
    try:
        get_settings()
    except Exception as error:  # the first request that reads them reports it
        logger.warning("settings not read after restore: %s", type(error).__name__)


def _clear_secret_cache() -> None:
    """Empty every Powertools provider's cache of values, keeping its client (creating one
    costs tens of milliseconds). Loaded only when a store holds the secrets."""
    constants = sys.modules.get("aws_lambda_powertools.utilities.parameters.constants")
    if constants is not None:
        for provider in constants.DEFAULT_PROVIDERS.values():
            provider.clear_cache()


_registered = False


def register_hooks() -> None:
    """Register the two hooks once per process (every function's app calls this at import)."""
    global _registered  # noqa: PLW0603  (one registration per process)
    if not _registered:
        register_before_snapshot(before_snapshot)
        register_after_restore(after_restore)
        _registered = True
