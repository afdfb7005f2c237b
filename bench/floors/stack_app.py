"""Floor (a): the stack alone. FastAPI + Mangum + SQLModel + psycopg + PyJWT, one route that reads
one task of the token's user: what ``get_task`` does, with nothing of ``todo_core``."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from mangum import Mangum
from sqlalchemy import Engine, create_engine
from sqlmodel import Field, Session, SQLModel, select

_engine: Engine | None = None
_bearer = HTTPBearer(auto_error=False)


class Task(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: str
    title: str
    description: str | None = None
    completed: bool = False
    created_at: datetime
    updated_at: datetime


class TaskPublic(SQLModel):
    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime


def session() -> Session:
    global _engine  # noqa: PLW0603
    if _engine is None:
        url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        _engine = create_engine(
            url,
            pool_size=1,
            isolation_level="AUTOCOMMIT",
            connect_args={"prepare_threshold": None},
        )
    return Session(_engine)


def user(
    user_id: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None:
        raise HTTPException(401)
    secret = os.environ["BETTER_AUTH_SECRET"]
    claims = jwt.decode(credentials.credentials, secret, algorithms=["HS256"])
    if claims["sub"] != user_id:
        raise HTTPException(403)
    return user_id


app = FastAPI()


@app.get("/api/{user_id}/tasks/{task_id}", response_model=TaskPublic)
def get_task(user_id: Annotated[str, Depends(user)], task_id: int) -> Task:
    with session() as db:
        task = db.exec(select(Task).where(Task.id == task_id, Task.user_id == user_id)).first()
    if task is None:
        raise HTTPException(404)
    return task


handler = Mangum(app, lifespan="off")
