"""The routes of template.yaml, and their paths filled in with a test's own ids."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from devserver.template import read_routes
from tests.api_client import Response
from tests.conftest import ROOT

TEMPLATE_ROUTES = read_routes(ROOT / "template.yaml")

SendTo = Callable[..., Response]
"""The ``send_to`` fixture: ``send_to(route, values=None, *, query=None, **request_kwargs)``."""


def filled_path(template: str, values: Mapping[str, str]) -> str:
    """``template`` (``/api/{user_id}/tasks/{task_id}``) with each parameter taken from
    ``values``, as the client would send it (nothing encoded)."""
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], template)
