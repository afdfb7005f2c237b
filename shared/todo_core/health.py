"""The health route: no auth, no database unless asked (a check that woke Neon every minute
would keep the compute from ever suspending)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text

from todo_core.api import PUBLIC_ROUTE_RESPONSES, Routes
from todo_core.db import get_engine

router = Routes(tags=["health"], responses=PUBLIC_ROUTE_RESPONSES)

_PING = text("SELECT 1")  # module-level: compiled at init with the other statements


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok", "not checked"]


@router.get("/health", response_model=Health)
async def health(check_database: bool = False) -> Health:
    """Liveness; with ``?check_database=true`` also one round trip to the database (503 if down)."""
    if check_database:
        with get_engine().connect() as connection:
            connection.execute(_PING)
        return Health(status="ok", database="ok")
    return Health(status="ok", database="not checked")
